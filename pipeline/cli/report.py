"""``compress report RUN_DIR [--compare RUN_B] [--robust ATTACK]``: re-render a run's report, add robust
accuracy to it, or show two runs side by side."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import click

from deploy.report import ReportSchemaError, compare_reports, load_report
from pipeline.errors import UserError
from pipeline.manifest import Artifact, open_run
from pipeline.report.data import collect_variants
from pipeline.report.robust import add_robust_accuracy
from pipeline.report.update import finished_report_record, report_json_path, update_run_report
from pipeline.run_files import run_path
from pipeline.run_lock import run_lock
from pipeline.runner import data_loader
from pipeline.stage import RunOptions, StageContext
from pipeline.stages.report import ReportConfig, ReportStage, robust_headline


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
        try:
            if attacks:
                if other is not None:
                    raise UserError("--robust adds to one run; run it before --compare")
                add_robust_to_run(run_dir, attacks, eps=robust_eps, steps=robust_steps, samples=robust_samples, arch=arch)
            if other is None:
                update_run_report(run_dir)  # re-rendered under the lock, digests recorded
                paths = {kind: find_report(run_dir).with_name(f"report.{kind}") for kind in ("json", "md", "html")}
            else:
                report_a, report_b = load_report(find_report(run_dir)), load_report(find_report(other))
                with run_lock(Path(run_dir), create=False) if out_dir is None else nullcontext():
                    paths = compare_reports(report_a, report_b, _compare_dir(run_dir, out_dir), labels=_labels(run_dir, other))
        except ReportSchemaError as error:
            raise UserError(f"report: {error}") from None
        for kind, path in paths.items():
            if not kind.startswith("plot:"):
                click.echo(f"{kind}: {path}")

    return command


def _labels(run_a: Path, run_b: Path) -> tuple[str, str]:
    names = (run_a.name or str(run_a), run_b.name or str(run_b))
    return names if names[0] != names[1] else (f"A: {names[0]}", f"B: {names[1]}")


def _compare_dir(run_dir: Path, out_dir: Path | None) -> Path:
    """``--out``, or the run directory itself (its compare.md / .html checked like any run file)."""
    if out_dir is not None:
        return out_dir

    for name in ("compare.md", "compare.html"):
        run_path(run_dir, name, must_exist=False)
    return Path(run_dir)


def find_report(run_dir: Path) -> Path:
    """The ``report.json`` of a run directory (written by its report stage), confined to the run and
    matching its recorded sha256."""
    run_dir, manifest = open_run(run_dir)
    return report_json_path(run_dir, finished_report_record(manifest, run_dir))


def add_robust_to_run(run_dir: Path, attacks: tuple[str, ...], *, eps: float, steps: int, samples: int, arch: str | None = None) -> None:
    """Measure robust accuracy of every variant of a finished run (as its report stage would with
    ``robust: attacks``), write it into the run's report and its manifest record."""
    from dataclasses import replace

    config = replace(ReportConfig(), robust=tuple(attacks), robust_eps=eps, robust_steps=steps, robust_samples=samples)
    ReportStage().check(config)

    def change(report, manifest, record) -> None:
        saved = manifest["options"]
        options = RunOptions(**{key: saved[key] for key in ("data", "seed", "train_limit", "test_limit", "preprocess", "target", "threads") if key in saved},
                             progress=False, trusted_archs=(arch,) if arch else ())
        ctx = StageContext(run_dir=Path(run_dir), stage_dir=find_report(run_dir).parent, stage_id=record["id"], options=options,
                           history=manifest["stages"], load_data=data_loader(options), log=click.echo)
        inputs = {role: Artifact(**artifact).verified(Path(run_dir).resolve()) for role, artifact in record["inputs"].items()}
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
