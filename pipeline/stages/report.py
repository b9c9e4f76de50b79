"""report: accuracy, size and batch-1 latency of every variant of the run, as JSON, Markdown and HTML.

Latency is measured in one interleaved run (``deploy.bench.measure_interleaved``): the dense
original and the compressed model under PyTorch eager, onnxruntime and the TVM host build, so
machine drift hits every candidate alike. Ratios are speed-ups against the dense model on onnxruntime.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from deploy.bench import machine_info
from deploy.report import SCHEMA_ID, write_report
from pipeline.errors import UserError
from pipeline.manifest import library_versions
from pipeline.stage import Stage, StageContext, StageResult

ATTACKS = ("fgsm", "ifgsm", "pgd")


@dataclass(frozen=True)
class ReportConfig:
    runs: int = field(default=50, metadata={"help": "timed runs per candidate (median and p90 reported)"})
    warmup: int = field(default=10, metadata={"help": "untimed warm-up runs per candidate"})
    tvm_dense: bool = field(default=True, metadata={"help": "also build and time the dense original with TVM"})
    robust: tuple[str, ...] = field(default=(), metadata={"help": "attacks for robust accuracy (fgsm, ifgsm, pgd)"})
    robust_eps: float = field(default=0.3, metadata={"help": "L-inf radius of the evaluation attacks, in pixel units ([0, 1] images)"})
    robust_steps: int = field(default=20, metadata={"help": "iterations of ifgsm / pgd (step 2.5 * robust-eps / robust-steps)"})
    robust_samples: int = field(default=500, metadata={"help": "test samples attacked"})
    device_images: int = field(default=500, metadata={"help": "test images run through the device bundle under its emulator (0: off)"})


class ReportStage(Stage):
    name = "report"
    version = "3"  # 3: robust accuracy of the shipped ONNX and TVM build, attacks in pixel units
    Config = ReportConfig
    consumes = ("*",)
    produces = ("report-json", "report-md", "report-html")
    summary = "latency / size / accuracy report of the run (JSON, Markdown, HTML with plots)"

    def check(self, config: ReportConfig) -> None:
        _validate(config)

    def run(self, ctx: StageContext, config: ReportConfig, inputs: dict) -> StageResult:
        from pipeline.report.data import artifact_rows, collect_variants, kernel_rows
        from pipeline.report.device import bundle_check
        from pipeline.report.latency import measure_latency
        from pipeline.report.robust import add_robust_accuracy

        variants, models = collect_variants(ctx, inputs, config)
        robust_notes = add_robust_accuracy(ctx, config, variants, models)
        latency, notes = measure_latency(ctx, config, inputs, models)
        notes += robust_notes
        device_check, device_notes = bundle_check(ctx, models, images=config.device_images)
        notes += device_notes
        report = {
            "schema": SCHEMA_ID,
            "run": {
                "model": ctx.options.model_source or str(models["dense"].source),
                "target": ctx.options.target,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                "machine": machine_info(torch_threads=_threads(ctx), onnxruntime_threads=None),
                "versions": _versions(),
                "seed": ctx.options.seed,
                "data": _data_facts(ctx, config, models),
                "baseline_variant": "dense" if any(v["name"] == "dense" for v in variants) else None,
            },
            "variants": variants,
            "latency": latency,
            "kernels": kernel_rows(ctx.history, next((v["layers"] for v in reversed(variants) if v["layers"]), [])),
            "artifacts": artifact_rows(ctx),
            "notes": notes,
        }
        paths = write_report(report, ctx.stage_dir)
        metrics = _headline_metrics(report)
        if device_check is not None:
            metrics["bundle_test_images"] = device_check
        return StageResult(outputs={"report-json": paths["json"], "report-md": paths["md"], "report-html": paths["html"]}, metrics=metrics)


def _validate(config: ReportConfig) -> None:
    if config.device_images < 0:
        raise UserError(f"device-images must be >= 0, got {config.device_images}")
    if config.runs < 1 or config.warmup < 0:
        raise UserError(f"report needs runs >= 1 and warmup >= 0, got runs={config.runs}, warmup={config.warmup}")
    unknown = [a for a in config.robust if a not in ATTACKS]
    if unknown:
        raise UserError(f"unknown attack {unknown[0]!r}; allowed: {', '.join(ATTACKS)}")
    if not config.robust_eps >= 0 or config.robust_steps < 1 or config.robust_samples < 1:
        raise UserError(f"report needs robust-eps >= 0, robust-steps >= 1 and robust-samples >= 1, got {config.robust_eps}, {config.robust_steps}, {config.robust_samples}")


def _data_facts(ctx: StageContext, config: ReportConfig, models) -> dict[str, Any]:
    """The evaluation data, with the limits that make numbers partial (the headline warns on them)."""
    facts: dict[str, Any] = {"name": ctx.options.data, "split": "test", "samples": models["dense"].test_samples,
                             "train_limit": ctx.options.train_limit, "test_limit": ctx.options.test_limit}
    if config.robust:
        facts["robust_samples"] = min(config.robust_samples, models["dense"].test_samples or config.robust_samples)
    return facts


def _threads(ctx: StageContext) -> int | None:
    return ctx.options.threads or None


def _versions() -> dict[str, str]:
    return library_versions()


def robust_headline(variants: list[dict[str, Any]]) -> dict[str, Any]:
    """Robust accuracy of the dense input and of what ships (the last variant), per attack, and the
    largest drop between them (what ``--max-robust-drop`` checks)."""
    dense = next((v for v in variants if v["name"] == "dense"), None)
    final = variants[-1] if variants else None
    if dense is None or final is None or "robust_accuracy" not in dense or "robust_accuracy" not in final:
        return {}
    drops = [dense["robust_accuracy"][a] - final["robust_accuracy"][a] for a in dense["robust_accuracy"] if a in final["robust_accuracy"]]
    return {"robust_accuracy_dense": dense["robust_accuracy"], "robust_accuracy_final": final["robust_accuracy"], "robust_drop": max(drops, default=0.0)}


def _headline_metrics(report: dict[str, Any]) -> dict[str, Any]:
    by_name = {v["name"]: v for v in report["variants"]}
    final = report["variants"][-1]
    metrics: dict[str, Any] = {
        "accuracy_dense": by_name.get("dense", final)["accuracy"],
        "test_accuracy": final["accuracy"],
        "latency": report["latency"],
    }
    metrics.update(robust_headline(report["variants"]))
    best = max((row for row in report["latency"] if row["variant"] != "dense" and row["ratio_vs_baseline"]), key=lambda r: r["ratio_vs_baseline"], default=None)
    if best:
        metrics["headline"] = f"best {best['variant']} on {best['runtime']}: {best['ratio_vs_baseline']:.2f}x vs dense onnxruntime"
    return metrics
