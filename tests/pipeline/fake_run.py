"""A hand-written finished run (manifest, tiny model bundles, a report, an arm64 bundle of stand-in
files): the commands that read a run can be attacked without training or compiling anything."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from deploy.report.sample import sample_report
from deploy.report.write import write_report
from pipeline.manifest import Artifact, new_manifest, write_manifest
from tests.pipeline.conftest import save_tiny_bundle

BUNDLE_FILES = {"model.so": b"\x7fELF stand-in", "runner": b"#!/bin/sh\necho runner\n", "lib/libtvm_runtime.so": b"\x7fELF lib"}


def write_bundle(folder: Path, *, input_shape=(1, 1, 8, 8)) -> Path:
    """A bundle folder whose manifest lists its stand-in files with their sha256."""
    for name, data in BUNDLE_FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    files = [{"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()} for name, data in BUNDLE_FILES.items()]
    manifest = {"format": "compress-tvm-bundle/1", "input_shape": list(input_shape), "files": files}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder / "manifest.json"


def _record(index: int, name: str, run: Path, inputs: dict, outputs: dict[str, Path]) -> dict:
    return {"index": index, "name": name, "version": "1", "id": f"id-{index}", "config": {}, "status": "done", "metrics": {},
            "inputs": inputs, "outputs": {role: Artifact.of(role, path, run_dir=run, stage=name).to_dict() for role, path in outputs.items()},
            "error": None, "seconds": 0.0}


def make_fake_run(run: Path) -> Path:
    """``run`` with 00-input, 01-train-sparse, 05-compile/bundle and 06-report, all recorded."""
    run.mkdir(parents=True)
    source = save_tiny_bundle(run / "00-input" / "model.pt")
    trained = save_tiny_bundle(run / "01-train-sparse" / "model.pt")
    (run / "05-compile" / "bundle").mkdir(parents=True)
    bundle = write_bundle(run / "05-compile" / "bundle")
    report = write_report(sample_report(), run / "06-report")
    source_record = Artifact.of("model", source, run_dir=run, stage="input").to_dict()
    manifest = new_manifest(recipe={}, recipe_sha256="x", options={"data": "digits", "seed": 0}, inputs={"model": source_record})
    trained_record = _record(0, "train-sparse", run, {"model": source_record}, {"model": trained})
    compile_record = _record(4, "compile", run, {}, {"bundle-manifest": bundle})
    report_outputs = {"report-json": report["json"], "report-md": report["md"], "report-html": report["html"]}
    report_record = _record(5, "report", run, {"model": trained_record["outputs"]["model"]}, report_outputs)
    manifest["stages"] = [trained_record, compile_record, report_record]
    write_manifest(run, manifest)
    return run


def edit_manifest(run: Path, edit) -> None:
    manifest = json.loads((run / "manifest.json").read_text())
    edit(manifest)
    (run / "manifest.json").write_text(json.dumps(manifest))
