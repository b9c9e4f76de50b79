"""Integrity and parity checks of a finished run (used by ``compress verify``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deploy.runtimes import load_session
from deploy.tvm.bundle import audit_bundle, bundle_target
from deploy.tvm.errors import BundleError, TargetError
from deploy.tvm.targets import bundle_kind
from pipeline.atomic import sha256_file
from pipeline.manifest import Artifact, open_run
from pipeline.model.bundle import build_model, load_bundle
from pipeline.model.onnx_input import onnx_sample_shape


def verify_run(run_dir: Path, *, atol: float, trusted_archs: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Digests of every artifact (and of every file of the device bundle), then runtime parity.

    Only a registered architecture, or one in ``trusted_archs`` (``--arch``), is rebuilt in torch.
    """
    run_dir, manifest = open_run(run_dir)
    checks = _digest_checks(run_dir, manifest)
    if all(c["ok"] for c in checks):
        checks += _parity_checks(run_dir, manifest, atol=atol, trusted_archs=trusted_archs)
    return checks


def _artifacts(manifest: dict[str, Any]) -> list[Artifact]:
    found = [Artifact(**a) for a in manifest["inputs"].values()]
    for record in manifest["stages"]:
        found += [Artifact(**a) for a in record["outputs"].values()]
    return found


def _digest_checks(run_dir: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []
    for artifact in _artifacts(manifest):
        path = artifact.resolve(run_dir)
        checks.append(_digest_check(artifact.path, path, artifact.sha256, against="the manifest"))
        if checks[-1]["ok"] and artifact.role == "bundle-manifest":
            checks += _bundle_file_checks(run_dir, path)
    incomplete = [r["name"] for r in manifest["stages"] if r["status"] != "done"]
    checks.append({"check": "stages finished", "ok": not incomplete, "detail": "all done" if not incomplete else f"not done: {', '.join(incomplete)}"})
    return checks


def _bundle_file_checks(run_dir: Path, bundle_manifest: Path) -> list[dict[str, Any]]:
    """Every file of the device bundle against its own manifest (whose digest is in the run manifest):
    listed files by sha256, and no unlisted file, link or special file (``deploy.tvm.bundle.audit_bundle``)."""
    try:
        _, findings = audit_bundle(bundle_manifest.parent)
    except BundleError as error:
        return [{"check": "bundle manifest", "ok": False, "detail": str(error)}]
    where = bundle_manifest.parent.relative_to(run_dir)
    return [{"check": f"sha256 {where / f.path}" if f.detail.startswith("sha256") or f.detail == "missing" else f"bundle file {where / f.path}",
             "ok": f.ok, "detail": f.detail} for f in findings]


def _digest_check(name: str, path: Path, digest: str, *, against: str) -> dict[str, Any]:
    ok = path.is_file() and sha256_file(path) == digest
    detail = "sha256 matches" if ok else ("missing" if not path.exists() else f"sha256 differs from {against}")
    return {"check": f"sha256 {name}", "ok": ok, "detail": detail}


def _latest(run_dir: Path, manifest: dict[str, Any], role: str) -> Path | None:
    for record in reversed(manifest["stages"]):
        if record["status"] == "done" and role in record["outputs"]:
            return Artifact(**record["outputs"][role]).resolve(run_dir)
    return None


def _parity_checks(run_dir: Path, manifest: dict[str, Any], *, atol: float, trusted_archs: tuple[str, ...]) -> list[dict[str, Any]]:
    onnx_path, host_library = _latest(run_dir, manifest, "onnx"), _latest(run_dir, manifest, "host-library")
    model_path = _export_source(run_dir, manifest)
    if onnx_path is None:
        return [{"check": "parity", "ok": True, "detail": "no ONNX model in this run; nothing to compare"}]

    x = np.random.default_rng(0).random((1, *onnx_sample_shape(onnx_path)), dtype=np.float32)
    reference = load_session("onnxruntime", onnx_path).run_one(x)
    outputs = {}
    if model_path is not None:
        outputs["torch"] = load_session("torch", build_model(load_bundle(model_path), trusted_archs=trusted_archs)).run_one(x)
    if host_library is not None:
        outputs["tvm-host"] = load_session("tvm", host_library).run_one(x)
    checks = [_compare(f"{name} vs onnxruntime", out, reference, atol) for name, out in outputs.items()]
    bundle = _latest(run_dir, manifest, "bundle-manifest")
    if bundle is not None and "tvm-host" in outputs:
        checks.append(_bundle_check(bundle.parent, x, outputs["tvm-host"], atol))
    return checks


def _export_source(run_dir: Path, manifest: dict[str, Any]) -> Path | None:
    for record in manifest["stages"]:
        if record["name"] == "export" and record["status"] == "done":
            return Artifact(**record["inputs"]["model"]).resolve(run_dir)
    return None


def _compare(name: str, actual: np.ndarray, expected: np.ndarray, atol: float) -> dict[str, Any]:
    error = float(np.max(np.abs(actual - expected))) if actual.shape == expected.shape else float("inf")
    return {"check": name, "ok": error <= atol, "detail": f"max abs difference {error:.3g} (atol {atol:g})"}


def _bundle_check(bundle_dir: Path, x: np.ndarray, expected: np.ndarray, atol: float) -> dict[str, Any]:
    """The bundle under its emulator (the bundle kind of the preset its manifest names) against the host build."""
    try:
        kind = bundle_kind(bundle_target(bundle_dir))
    except (BundleError, TargetError) as error:
        return {"check": "bundle under its emulator", "ok": False, "detail": str(error)}
    check = f"{kind.name} bundle under {kind.emulator}"
    if not kind.emulator_installed():
        return {"check": check, "ok": True, "detail": f"skipped: {kind.emulator} not installed"}
    try:
        result = kind.verify(bundle_dir, x, expected, atol=atol)
    except BundleError as error:
        return {"check": check, "ok": False, "detail": str(error)}
    return {"check": check, "ok": True, "detail": f"max abs difference {result.max_abs_error:.3g} vs the host build"}
