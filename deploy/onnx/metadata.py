"""Read and write our ONNX ``metadata_props`` (``compress.layouts``, ``compress.preprocess``).

Schema (docs/contracts.md): ``compress.layouts`` is a JSON list, one record per conv / linear weight:
``{"fqn", "initializer", "op", "shape", "format", "block", "nnz", "bits", "arrays": {role: name}}``.
"""

from __future__ import annotations

import json
from typing import Any

import onnx

from deploy.onnx.errors import OnnxFormatError

LAYOUTS_KEY = "compress.layouts"
PREPROCESS_KEY = "compress.preprocess"
RECORD_KEYS = ("fqn", "initializer", "op", "shape", "format", "block", "nnz", "bits", "arrays")


def set_metadata(model: onnx.ModelProto, *, key: str, value: Any) -> None:
    """Set (or replace) ``metadata_props[key]`` to compact JSON of ``value``."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    for prop in model.metadata_props:
        if prop.key == key:
            prop.value = text
            return
    model.metadata_props.add(key=key, value=text)


def get_metadata(model: onnx.ModelProto, *, key: str) -> Any | None:
    """Parsed JSON of ``metadata_props[key]``, or ``None`` when absent.

    Raises:
        OnnxFormatError: when the value is not valid JSON.
    """
    for prop in model.metadata_props:
        if prop.key == key:
            try:
                return json.loads(prop.value)
            except json.JSONDecodeError as exc:
                raise OnnxFormatError(f"metadata {key!r} is not valid JSON: {prop.value[:80]!r}") from exc
    return None


def read_layouts(model: onnx.ModelProto) -> list[dict]:
    """The ``compress.layouts`` records of a model (empty list when absent), validated.

    Raises:
        OnnxFormatError: when the value is not a list of records with the schema's keys.
    """
    records = get_metadata(model, key=LAYOUTS_KEY)
    if records is None:
        return []
    if not isinstance(records, list):
        raise OnnxFormatError(f"{LAYOUTS_KEY} must be a JSON list, got {type(records).__name__}")
    for record in records:
        missing = [k for k in RECORD_KEYS if not isinstance(record, dict) or k not in record]
        if missing:
            raise OnnxFormatError(f"{LAYOUTS_KEY} record {str(record)[:80]} lacks keys {missing}")
        if not isinstance(record["arrays"], dict):
            raise OnnxFormatError(f"{LAYOUTS_KEY} record arrays must be a dict, got {record['arrays']!r}")
    return records


def read_preprocess(model: onnx.ModelProto) -> dict | None:
    """The ``compress.preprocess`` dict of a model, or ``None``."""
    return get_metadata(model, key=PREPROCESS_KEY)
