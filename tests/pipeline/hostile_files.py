"""Hostile model files for the security tests: each would run a payload that creates ``marker``."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import torch

from tests.pipeline.tiny import tiny_cnn


class Payload:
    """Unpickling this runs ``touch marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def exported_program_bytes() -> dict[str, bytes]:
    """The records of a plain ``torch.export`` archive of the tiny CNN (names without the top folder)."""
    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.export.save(torch.export.export(tiny_cnn().eval(), (torch.zeros(1, 1, 8, 8),)), buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        return {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist()}


def write_archive(path: Path, records: dict[str, bytes], *, folder: str = "archive") -> Path:
    """A zip of ``records`` under one top folder, stored uncompressed like torch's writer."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in records.items():
            archive.writestr(f"{folder}/{name}", data)
    return path


def pickled_weight_records(marker: Path) -> dict[str, bytes]:
    """Archive records whose first weight is marked ``use_pickle`` and holds the payload."""
    records = exported_program_bytes()
    config_name = "data/weights/model_weights_config.json"
    config = json.loads(records[config_name])
    fqn, meta = next(iter(config["config"].items()))
    meta["use_pickle"] = True
    meta["path_name"] = "weight_evil"
    records[config_name] = json.dumps(config).encode()
    evil = io.BytesIO()
    torch.save(Payload(marker), evil)
    records["data/weights/weight_evil"] = evil.getvalue()
    return records


def evil_pt2(path: Path, marker: Path) -> Path:
    """Issue item 1: a ``.pt2`` whose pickled weight runs the payload in ``torch.export.load``."""
    return write_archive(path, pickled_weight_records(marker))


def evil_sympy_pt2(path: Path, marker: Path) -> Path:
    """A ``.pt2`` whose shape expression runs the payload in ``sympy.sympify``."""
    records = exported_program_bytes()
    program = json.loads(records["models/model.json"])
    values = program["graph_module"]["graph"]["tensor_values"]
    values[next(iter(values))]["sizes"][0] = {"as_expr": {"expr_str": f"__import__('os').system('touch {marker}')", "hint": {"as_int": 1}}}
    records["models/model.json"] = json.dumps(program).encode()
    return write_archive(path, records)


def evil_target_pt2(path: Path, marker: Path) -> Path:
    """A ``.pt2`` whose first node calls ``torch.os.system`` (reachable from ``torch``)."""
    records = exported_program_bytes()
    program = json.loads(records["models/model.json"])
    nodes = program["graph_module"]["graph"]["nodes"]
    nodes[0]["target"] = "torch.os.system"
    nodes[0]["inputs"] = [{"name": "command", "arg": {"as_string": f"touch {marker}"}, "kind": 1}]
    records["models/model.json"] = json.dumps(program).encode()
    return write_archive(path, records)


def evil_checkpoint_naming_itself(path: Path, marker: Path) -> Path:
    """Issue item 2: a weights-only ``.pt`` checkpoint with ``arch: export:<its own path>`` whose
    zip also carries the records of ``evil_pt2`` (one top folder, as both loaders expect)."""
    buffer = io.BytesIO()
    torch.save({"state_dict": tiny_cnn().state_dict(), "arch": f"export:{Path(path).resolve()}", "input_shape": [1, 8, 8]}, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        records = {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist()}
    for name, data in pickled_weight_records(marker).items():
        records.setdefault(name, data)
    return write_archive(path, records, folder=Path(path).stem)
