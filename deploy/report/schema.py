"""The ``compress-report/2`` schema (see SCHEMA.md) and ``validate_report``."""

from __future__ import annotations

from datetime import datetime
from types import MappingProxyType
from typing import Any

from deploy.report.fields import Field, ReportSchemaError, check

SCHEMA_ID = "compress-report/2"
RUNTIMES = ("torch", "onnxruntime", "tvm-host", "tvm-rpc", "tvm-device")


def _text(**kw: Any) -> Field:
    return Field("str", **kw)


def _count(**kw: Any) -> Field:
    return Field("int", minimum=0, **kw)


def _ratio(**kw: Any) -> Field:
    return Field("number", minimum=0.0, maximum=1.0, **kw)


def _ms(**kw: Any) -> Field:
    return Field("number", minimum=0.0, **kw)


def _obj(fields: dict[str, Field], **kw: Any) -> Field:
    return Field("object", fields=MappingProxyType(dict(fields)), **kw)


def _list(items: Field, **kw: Any) -> Field:
    return Field("list", items=items, **kw)


MACHINE = _obj(
    {
        "cpu_model": _text(),
        "logical_cores": _count(),
        "arch": _text(required=False),
        "os": _text(required=False),
        "python": _text(required=False),
        "torch_threads": _count(required=False, nullable=True),
        "onnxruntime_threads": _count(required=False, nullable=True),
    },
    extra=True,
)
RUN = _obj(
    {
        "model": _text(),
        "target": _text(),
        "created": _text(),
        "machine": MACHINE,
        "versions": Field("map", values=_text()),
        "seed": Field("int", nullable=True),
        "data": _obj({"name": _text()}, extra=True),
        "baseline_variant": _text(required=False, nullable=True),
        "command": _text(required=False),
    }
)
LAYER = _obj(
    {
        "fqn": _text(),
        "shape": _list(_count()),
        "numel": _count(),
        "nnz": _count(),
        "sparsity_ratio": _ratio(),
    }
)
VARIANT = _obj(
    {
        "name": _text(),
        "stage": _text(),
        "accuracy": _ratio(nullable=True),
        "robust_accuracy": Field("map", values=_ratio(), required=False),
        "robust_accuracy_tvm": Field("map", values=_ratio(), required=False),
        "weight_sparsity": _ratio(),
        "nonzero_weights": _count(),
        "params": _count(),
        "size_bytes": Field("map", values=_count()),
        "layers": _list(LAYER),
        "description": _text(required=False),
    }
)
LATENCY = _obj(
    {
        "variant": _text(),
        "runtime": _text(choices=RUNTIMES),
        "median_ms": _ms(),
        "p90_ms": _ms(),
        "mean_ms": _ms(required=False),
        "min_ms": _ms(required=False),
        "runs": Field("int", minimum=1),
        "threads": Field("int", minimum=1, nullable=True),
        "ratio_vs_baseline": Field("number", minimum=0.0, nullable=True),
        "device": _text(required=False),
    }
)
KERNEL = _obj(
    {
        "variant": _text(),
        "fqn": _text(),
        "kernel": _text(),  # the kernel used: direct-conv, block-linear, ternary-linear, int8-conv, dense, ...
        "skips_zero_blocks": Field("bool"),  # whether the kernel skips the weight's zero blocks
        "sparsity_ratio": _ratio(),
        "reason": _text(),
        "library_bytes": _count(required=False, nullable=True),  # weight arrays stored in the compiled library
        "onnx_bytes": _count(required=False, nullable=True),  # the same weight's stored arrays in the ONNX
    }
)
ARTIFACT = _obj({"path": _text(), "sha256": _text(), "bytes": _count()})
REPORT = _obj(
    {
        "schema": _text(choices=(SCHEMA_ID,)),
        "run": RUN,
        "variants": _list(VARIANT, minimum=1),
        "latency": _list(LATENCY),
        "kernels": _list(KERNEL, required=False),
        "artifacts": Field("map", values=ARTIFACT, required=False),
        "notes": _list(_text(), required=False),
    }
)


def _fail(path: str, message: str) -> None:
    raise ReportSchemaError(f"{path}: {message}")


def _check_created(report: dict[str, Any]) -> None:
    created = report["run"]["created"]
    try:
        datetime.fromisoformat(created)
    except ValueError:
        _fail("report.run.created", f"expected an ISO 8601 time, got {created!r}")


def _check_variants(report: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for index, variant in enumerate(report["variants"]):
        path = f"report.variants[{index}]"
        if variant["name"] in names:
            _fail(path, f"duplicate variant name {variant['name']!r}")
        names.add(variant["name"])
        if variant["nonzero_weights"] > variant["params"]:
            _fail(path, f"nonzero_weights {variant['nonzero_weights']} > params {variant['params']}")
        for layer_index, layer in enumerate(variant["layers"]):
            if layer["nnz"] > layer["numel"]:
                _fail(f"{path}.layers[{layer_index}]", f"nnz {layer['nnz']} > numel {layer['numel']}")
    return names


def _check_references(report: dict[str, Any], names: set[str]) -> None:
    baseline = report["run"].get("baseline_variant")
    if baseline is not None and baseline not in names:
        _fail("report.run.baseline_variant", f"{baseline!r} is not a variant; have {sorted(names)}")
    for section in ("latency", "kernels"):
        for index, row in enumerate(report.get(section, [])):
            if row["variant"] not in names:
                message = f"{row['variant']!r} is not a variant; have {sorted(names)}"
                _fail(f"report.{section}[{index}].variant", message)
    for index, row in enumerate(report["latency"]):
        if row["p90_ms"] < row["median_ms"]:
            _fail(f"report.latency[{index}]", f"p90_ms {row['p90_ms']} < median_ms {row['median_ms']}")


def _check_artifacts(report: dict[str, Any]) -> None:
    for name, artifact in report.get("artifacts", {}).items():
        digest = artifact["sha256"]
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            _fail(f"report.artifacts.{name}.sha256", f"expected 64 lowercase hex digits, got {digest!r}")


def validate_report(report: Any) -> None:
    """Check ``report`` against ``compress-report/2``; unknown keys are errors (an older report is
    read through ``deploy.report.upgrade.upgrade_report`` first, as ``load_report`` does).

    Args:
        report: the report dict.

    Raises:
        ReportSchemaError: naming the first offending path, what was expected and what was found.
    """
    if isinstance(report, dict) and report.get("schema") not in (None, SCHEMA_ID):
        _fail("report.schema", f"unsupported schema {report.get('schema')!r}; this code reads {SCHEMA_ID!r}")
    check(report, REPORT, path="report")
    _check_created(report)
    names = _check_variants(report)
    _check_references(report, names)
    _check_artifacts(report)
