"""Integrity and parity checks of a finished run (used by ``compress verify``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import sha256_file
from pipeline.errors import UserError
from pipeline.manifest import Artifact, read_manifest


STAGE_KEYS = ("index", "name", "status", "inputs", "outputs")
ARTIFACT_KEYS = ("role", "path", "sha256", "bytes", "stage")


def verify_run(run_dir: Path, *, atol: float, trusted_archs: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Digests of every artifact (and of every file of the arm64 bundle), then runtime parity.

    Only a registered architecture, or one in ``trusted_archs`` (``--arch``), is rebuilt in torch.
    """
    run_dir = Path(run_dir).resolve()
    manifest = read_manifest(run_dir)
    _check_fields(manifest)
    checks = _digest_checks(run_dir, manifest)
    if all(c["ok"] for c in checks):
        checks += _parity_checks(run_dir, manifest, atol=atol, trusted_archs=trusted_archs)
    return checks


def _check_fields(manifest: dict[str, Any]) -> None:
    """A manifest with missing records is a failure, never a stage silently skipped."""
    if not isinstance(manifest.get("inputs"), dict) or not isinstance(manifest.get("stages"), list):
        raise UserError("manifest.json lacks its 'inputs' or 'stages' record")
    records = [("input", a) for a in manifest["inputs"].values()]
    for index, record in enumerate(manifest["stages"]):
        missing = [key for key in STAGE_KEYS if not isinstance(record, dict) or key not in record]
        if missing:
            raise UserError(f"manifest.json: stage record {index} lacks {', '.join(missing)}")
        records += [(record["name"], a) for a in record["outputs"].values()]
    for where, artifact in records:
        if not isinstance(artifact, dict) or any(key not in artifact for key in ARTIFACT_KEYS):
            raise UserError(f"manifest.json: an artifact record of {where} lacks one of {', '.join(ARTIFACT_KEYS)}")


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
    """Every file the arm64 bundle's own manifest lists, against its sha256 (the bundle manifest's digest is in the run manifest)."""
    try:
        files = json.loads(bundle_manifest.read_text(encoding="utf-8"))["files"]
        entries = [(str(f["path"]), str(f["sha256"])) for f in files]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return [{"check": "arm64 bundle manifest", "ok": False, "detail": f"unreadable: {error}"}]
    checks = []
    for relative, digest in entries:
        path = (bundle_manifest.parent / relative).resolve()
        if not path.is_relative_to(run_dir):
            raise UserError(f"arm64 bundle manifest names a file outside the run directory: {relative!r}")
        checks.append(_digest_check(str(path.relative_to(run_dir)), path, digest, against="the bundle manifest"))
    return checks


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
    from deploy.runtimes import load_session

    onnx_path, host_library = _latest(run_dir, manifest, "onnx"), _latest(run_dir, manifest, "host-library")
    model_path = _export_source(run_dir, manifest)
    if onnx_path is None:
        return [{"check": "parity", "ok": True, "detail": "no ONNX model in this run; nothing to compare"}]
    from pipeline.onnx_input import onnx_sample_shape

    x = np.random.default_rng(0).random((1, *onnx_sample_shape(onnx_path)), dtype=np.float32)
    reference = load_session("onnxruntime", onnx_path).run_one(x)
    outputs = {}
    if model_path is not None:
        from pipeline.model_io import build_model, load_bundle

        outputs["torch"] = load_session("torch", build_model(load_bundle(model_path), trusted_archs=trusted_archs)).run_one(x)
    if host_library is not None:
        outputs["tvm-host"] = load_session("tvm", host_library).run_one(x)
    checks = [_compare(f"{name} vs onnxruntime", out, reference, atol) for name, out in outputs.items()]
    bundle = _latest(run_dir, manifest, "bundle-manifest")
    if bundle is not None and "tvm-host" in outputs:
        checks.append(_qemu_check(bundle.parent, x, outputs["tvm-host"], atol))
    return checks


def _export_source(run_dir: Path, manifest: dict[str, Any]) -> Path | None:
    for record in manifest["stages"]:
        if record["name"] == "export" and record["status"] == "done":
            return Artifact(**record["inputs"]["model"]).resolve(run_dir)
    return None


def _compare(name: str, actual: np.ndarray, expected: np.ndarray, atol: float) -> dict[str, Any]:
    error = float(np.max(np.abs(actual - expected))) if actual.shape == expected.shape else float("inf")
    return {"check": name, "ok": error <= atol, "detail": f"max abs difference {error:.3g} (atol {atol:g})"}


def _qemu_check(bundle_dir: Path, x: np.ndarray, expected: np.ndarray, atol: float) -> dict[str, Any]:
    if shutil.which("qemu-aarch64") is None:
        return {"check": "arm64 bundle under qemu", "ok": True, "detail": "skipped: qemu-aarch64 not installed"}
    from deploy.tvm.bundle import verify_arm64_bundle
    from deploy.tvm.errors import BundleError

    try:
        result = verify_arm64_bundle(bundle_dir, x, expected, atol=atol)
    except BundleError as error:
        return {"check": "arm64 bundle under qemu", "ok": False, "detail": str(error)}
    return {"check": "arm64 bundle under qemu", "ok": True, "detail": f"max abs difference {result.max_abs_error:.3g} vs the host build"}
