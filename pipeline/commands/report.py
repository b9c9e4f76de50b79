"""``compress report RUN_DIR [--compare RUN_B] [--robust ATTACK]``: re-render a run's report, add robust
accuracy to it, or show two runs side by side."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.errors import UserError


def make_command(name: str) -> click.Command:
    @click.command(name=name)
    @click.argument("run_dir", type=click.Path(path_type=Path))
    @click.option("--compare", "other", default=None, type=click.Path(path_type=Path), help="second run directory to compare with")
    @click.option("--out", "out_dir", default=None, type=click.Path(path_type=Path), help="where to write compare.md / compare.html")
    @click.option("--robust", "attacks", multiple=True, type=click.Choice(["fgsm", "ifgsm", "pgd"]), help="add robust accuracy under this attack to every variant, the shipped ONNX and TVM build included (repeatable)")
    @click.option("--robust-eps", default=0.3, show_default=True, type=float, metavar="FLOAT", help="L-inf radius, in pixel units ([0, 1] images)")
    @click.option("--robust-steps", default=20, show_default=True, type=int, metavar="INTEGER", help="iterations of ifgsm / pgd (step 2.5 * eps / steps)")
    @click.option("--robust-samples", default=500, show_default=True, type=int, metavar="INTEGER", help="test images attacked")
    @click.option("--arch", default=None, help="with --robust: the package.module:factory the run was started with (code is named only on the command line)")
    def command(run_dir: Path, other: Path | None, out_dir: Path | None, attacks: tuple[str, ...], robust_eps: float, robust_steps: int, robust_samples: int, arch: str | None) -> None:
        """Re-render RUN_DIR's report (report.json -> .md / .html), add robust accuracy to it, or compare it with another run."""
        from deploy.report import (
            ReportSchemaError,
            compare_reports,
            load_report,
            write_report,
        )

        try:
            if attacks:
                if other is not None:
                    raise UserError("--robust adds to one run; run it before --compare")
                add_robust_to_run(run_dir, attacks, eps=robust_eps, steps=robust_steps, samples=robust_samples, arch=arch)
            report_a = load_report(find_report(run_dir))
            if other is None:
                paths = write_report(report_a, find_report(run_dir).parent)
            else:
                report_b = load_report(find_report(other))
                paths = compare_reports(report_a, report_b, out_dir or run_dir, labels=_labels(run_dir, other))
        except ReportSchemaError as error:
            raise UserError(f"report: {error}") from None
        for kind, path in paths.items():
            if not kind.startswith("plot:"):
                click.echo(f"{kind}: {path}")

    return command


def _labels(run_a: Path, run_b: Path) -> tuple[str, str]:
    names = (run_a.name or str(run_a), run_b.name or str(run_b))
    return names if names[0] != names[1] else (f"A: {names[0]}", f"B: {names[1]}")


def find_report(run_dir: Path) -> Path:
    """The ``report.json`` of a run directory (written by its report stage)."""
    from pipeline.manifest import read_manifest
    from pipeline.report_update import finished_report_record

    record = finished_report_record(read_manifest(run_dir), Path(run_dir))
    return Path(run_dir) / record["outputs"]["report-json"]["path"]


def add_robust_to_run(run_dir: Path, attacks: tuple[str, ...], *, eps: float, steps: int, samples: int, arch: str | None = None) -> None:
    """Measure robust accuracy of every variant of a finished run (as its report stage would with
    ``robust: attacks``), write it into the run's report and its manifest record."""
    from dataclasses import replace

    from pipeline.report_data import collect_variants
    from pipeline.report_robust import add_robust_accuracy
    from pipeline.report_update import update_run_report
    from pipeline.runner import data_loader
    from pipeline.stage import RunOptions, StageContext
    from pipeline.stages.report import ReportConfig, ReportStage, robust_headline

    config = replace(ReportConfig(), robust=tuple(attacks), robust_eps=eps, robust_steps=steps, robust_samples=samples)
    ReportStage().check(config)

    def change(report, manifest, record) -> None:
        saved = manifest["options"]
        options = RunOptions(**{key: saved[key] for key in ("data", "seed", "train_limit", "test_limit", "preprocess", "target", "threads") if key in saved},
                             progress=False, trusted_archs=(arch,) if arch else ())
        ctx = StageContext(run_dir=Path(run_dir), stage_dir=find_report(run_dir).parent, stage_id=record["id"], options=options,
                           history=manifest["stages"], load_data=data_loader(options), log=click.echo)
        inputs = {role: Path(run_dir) / artifact["path"] for role, artifact in record["inputs"].items()}
        variants, models = collect_variants(ctx, inputs, config)
        notes = add_robust_accuracy(ctx, config, variants, models)
        measured = {v["name"]: v for v in variants}
        for variant in report["variants"]:
            for key in ("robust_accuracy", "robust_accuracy_tvm"):
                if key in measured.get(variant["name"], {}):
                    variant[key] = measured[variant["name"]][key]
        report["notes"] = [n for n in report.get("notes", []) if not n.startswith("Robust accuracy")] + notes
        record["metrics"].update(robust_headline(report["variants"]))

    report = update_run_report(run_dir, change)
    for variant in report["variants"]:
        if "robust_accuracy" in variant:
            values = ", ".join(f"{name} {value:.4f}" for name, value in variant["robust_accuracy"].items())
            click.echo(f"{variant['name']:<15} robust accuracy {values}")
