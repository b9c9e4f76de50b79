"""``dense``: the float32 weight kept as the graph's own initializer (no decode node)."""

from __future__ import annotations

import numpy as np

from deploy.onnx.formats.record import WeightFormat


def encode(weight: np.ndarray, *, block=(1, 1), scales=None) -> dict[str, np.ndarray]:
    return {"values": weight}


def decode(arrays: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    return arrays["values"]


FORMAT = WeightFormat(name="dense", roles=("values",), bits=32, encode=encode, decode=decode)
