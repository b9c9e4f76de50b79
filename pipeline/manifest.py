"""The run manifest (``manifest.json``): recipe, versions, and one record per stage, rewritten atomically."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.atomic import sha256_file, write_json
from pipeline.errors import UserError
from pipeline.run_files import run_path

MANIFEST_FORMAT = "compress-manifest/1"
MANIFEST_NAME = "manifest.json"
_VERSIONED = ("compress", "torch", "numpy", "onnx", "onnxruntime", "apache-tvm", "apache-tvm-ffi")


@dataclass(frozen=True)
class Artifact:
    """A file plus its record; ``path`` is relative to the run directory."""

    role: str
    path: str
    sha256: str
    bytes: int
    stage: str

    @classmethod
    def of(cls, role: str, path: Path, *, run_dir: Path, stage: str) -> "Artifact":
        path = Path(path)
        relative = path.relative_to(run_dir) if path.is_absolute() and path.is_relative_to(run_dir) else path
        absolute = run_dir / relative if not path.is_absolute() else path
        return cls(role, str(relative), sha256_file(absolute), absolute.stat().st_size, stage)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def resolve(self, run_dir: Path, *, must_exist: bool = False) -> Path:
        """The artifact's file, which must lie inside ``run_dir`` with no symbolic link on the way
        (``pipeline.run_files.run_path``: a manifest never points elsewhere)."""
        root = Path(run_dir).resolve()
        if Path(self.path).is_absolute() or ".." in Path(self.path).parts:
            raise UserError(f"manifest artifact {self.role!r} points outside the run directory: {self.path!r}")
        return run_path(root, self.path, must_exist=must_exist)

    def verified(self, run_dir: Path) -> Path:
        """:meth:`resolve`, and the file's sha256 must be the one recorded: what every command that
        reads a run uses, so a file changed after the run wrote it is refused, not loaded."""
        path = self.resolve(run_dir, must_exist=True)
        if sha256_file(path) != self.sha256:
            raise UserError(f"{path} does not match its sha256 in the manifest: it changed after the run wrote it "
                            "(`compress verify` lists every difference)")
        return path

    def is_intact(self, run_dir: Path) -> bool:
        try:
            path = self.resolve(run_dir)
        except UserError:
            return False
        return path.is_file() and sha256_file(path) == self.sha256


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def new_manifest(*, recipe: dict[str, Any], recipe_sha256: str, options: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "format": MANIFEST_FORMAT,
        "created": now,
        "updated": now,
        "recipe": recipe,
        "recipe_sha256": recipe_sha256,
        "options": options,
        "inputs": inputs,
        "versions": library_versions(),
        "stages": [],
    }


def read_manifest(run_dir: Path) -> dict[str, Any]:
    if not os.path.lexists(Path(run_dir) / MANIFEST_NAME):
        raise UserError(f"{run_dir} is not a run directory (no {MANIFEST_NAME})")
    path = run_path(run_dir, MANIFEST_NAME)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{run_dir} is not a run directory (no {MANIFEST_NAME})") from None
    except (OSError, ValueError) as error:
        raise UserError(f"{path} is unreadable: {error}") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise UserError(f"{path} is not a compress manifest")
    return data


STAGE_KEYS = ("index", "name", "status", "inputs", "outputs")
ARTIFACT_KEYS = ("role", "path", "sha256", "bytes", "stage")


def check_records(manifest: dict[str, Any]) -> None:
    """A manifest with missing or malformed records is refused with one line, never half-read."""
    if not isinstance(manifest.get("inputs"), dict) or not isinstance(manifest.get("stages"), list):
        raise UserError("manifest.json lacks its 'inputs' or 'stages' record")
    records = [("input", a) for a in manifest["inputs"].values()]
    for index, record in enumerate(manifest["stages"]):
        missing = [key for key in STAGE_KEYS if not isinstance(record, dict) or key not in record]
        if missing:
            raise UserError(f"manifest.json: stage record {index} lacks {', '.join(missing)}")
        if not isinstance(record["outputs"], dict) or not isinstance(record["inputs"], dict) or not isinstance(record["index"], int):
            raise UserError(f"manifest.json: stage record {index} has malformed index, inputs or outputs")
        records += [(record["name"], a) for a in list(record["outputs"].values()) + list(record["inputs"].values())]
    for where, artifact in records:
        if not isinstance(artifact, dict) or any(key not in artifact for key in ARTIFACT_KEYS) or set(artifact) - set(ARTIFACT_KEYS):
            raise UserError(f"manifest.json: an artifact record of {where} lacks one of {', '.join(ARTIFACT_KEYS)}")


def open_run(run_dir: Path) -> tuple[Path, dict[str, Any]]:
    """``(resolved run directory, checked manifest)``: how every command that reads a run starts."""
    manifest = read_manifest(run_dir)
    check_records(manifest)
    return Path(run_dir).resolve(), manifest


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    manifest["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_json(Path(run_dir) / MANIFEST_NAME, manifest)


def stage_record(manifest: dict[str, Any], index: int) -> dict[str, Any] | None:
    for record in manifest["stages"]:
        if record["index"] == index:
            return record
    return None


def put_stage_record(manifest: dict[str, Any], record: dict[str, Any]) -> None:
    manifest["stages"] = [r for r in manifest["stages"] if r["index"] != record["index"]] + [record]
    manifest["stages"].sort(key=lambda r: r["index"])
