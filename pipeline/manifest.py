"""The run manifest (``manifest.json``): recipe, versions, and one record per stage, rewritten atomically."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.atomic import sha256_file, write_json
from pipeline.errors import UserError

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

    def resolve(self, run_dir: Path) -> Path:
        """The artifact's file, which must lie inside ``run_dir`` (a manifest never points elsewhere)."""
        root = Path(run_dir).resolve()
        path = (root / self.path).resolve()
        if not path.is_relative_to(root):
            raise UserError(f"manifest artifact {self.role!r} points outside the run directory: {self.path!r}")
        return path

    def is_intact(self, run_dir: Path) -> bool:
        path = self.resolve(run_dir)
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
    path = Path(run_dir) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{run_dir} is not a run directory (no {MANIFEST_NAME})") from None
    except (OSError, ValueError) as error:
        raise UserError(f"{path} is unreadable: {error}") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise UserError(f"{path} is not a compress manifest")
    return data


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
