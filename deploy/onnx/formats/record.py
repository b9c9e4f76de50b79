"""``WeightFormat``: everything the export knows about one stored form of a conv / linear weight.

A format is one record: its numpy encoder (``weight -> {role: array}``, bit-exact or refused), its
numpy reader (``arrays -> weight``), how ONNX decodes it in-graph (the body of a model-local function
in the ``compress.decode`` domain built from standard ops, or one standard node such as
``DequantizeLinear``), its bits per stored value for the size accounting, and which ``--encoding``
value forces it. The list of formats is :data:`deploy.onnx.formats.FORMATS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import onnx

from deploy.onnx.codecs.common import gemm_shape
from deploy.onnx.decode_functions import DOMAIN
from deploy.onnx.errors import OnnxFormatError
from deploy.onnx.function_builder import FunctionBody

FAMILY_BLOCKS = ("any", "block", "no-block")


@dataclass(frozen=True)
class WeightFormat:
    """One weight format of the export.

    Attributes:
        name: the format's name in ``compress.layouts`` records.
        roles: names of the stored arrays, in storage order; also the decode function's inputs.
        bits: stored bits per weight value (32 float, 8 int8, 2 ternary, 1 binary / sign).
        encode: ``encode(weight, block=(r, c), scales=None | array) -> {role: array}`` for a float32
            weight; raises ``OnnxFormatError`` when the format cannot hold the weight exactly.
        decode: ``decode(arrays, shape) -> float32 weight``: the numpy reader.
        function_name: name of the ONNX decode function in ``DOMAIN`` (``None``: no function).
        decode_body: ``decode_body(body) -> output name``: the decode function's nodes over the inputs
            ``roles`` (:class:`~deploy.onnx.function_builder.FunctionBody`).
        decode_node: ``decode_node(input names, output) -> NodeProto`` for a format that one standard
            ONNX op decodes (int8's ``DequantizeLinear``); a format with neither this nor a function
            stays the plain initializer (dense).
        family: the ``--encoding`` value that forces this format (``"auto"`` tries every format).
        blocked: stores blocks of the layout's block shape; ``"auto"`` tries it only with a block
            other than 1x1.
        family_block: when a forced ``family`` tries it: ``"any"``, only with a block (``"block"``) or
            only without one (``"no-block"``).
    """

    name: str
    roles: tuple[str, ...]
    bits: int
    encode: Callable[..., dict[str, np.ndarray]]
    decode: Callable[[dict[str, np.ndarray], tuple[int, ...]], np.ndarray]
    function_name: str | None = None
    decode_body: Callable[[FunctionBody], str] | None = None
    decode_node: Callable[[list[str], str], onnx.NodeProto] | None = None
    family: str = ""
    blocked: bool = False
    family_block: str = "any"

    def __post_init__(self) -> None:
        if not self.family:
            object.__setattr__(self, "family", self.name)
        if self.family_block not in FAMILY_BLOCKS:
            raise ValueError(f"family_block must be one of {FAMILY_BLOCKS}, got {self.family_block!r}")
        if (self.function_name is None) != (self.decode_body is None):
            raise ValueError(f"format {self.name!r}: function_name and decode_body go together")

    @property
    def in_place(self) -> bool:
        """True when the weight stays the graph's own initializer (no decode node)."""
        return self.decode_body is None and self.decode_node is None

    def tried_for(self, encoding: str, *, has_block: bool) -> bool:
        """Whether ``encoding`` (``"auto"`` or a family) tries this format for a weight with or
        without a block shape other than 1x1."""
        if encoding == "auto":
            return has_block or not self.blocked
        if encoding != self.family:
            return False
        return self.family_block == "any" or (self.family_block == "block") == has_block

    def decode_function(self, *, opset: int) -> onnx.FunctionProto:
        """The decode ``FunctionProto`` for a model of default-domain ``opset``.

        Raises:
            OnnxFormatError: the format has no decode function.
        """
        if self.decode_body is None:
            raise OnnxFormatError(f"no decode function for format {self.name!r}")
        body = FunctionBody()
        output = self.decode_body(body)
        return body.function(self.function_name, domain=DOMAIN, inputs=list(self.roles), output=output, opset=opset)


def dims_array(shape: tuple[int, ...]) -> np.ndarray:
    """The ``dims`` array ``[rows, cols, *shape]`` (int64) of a weight's GEMM view and shape."""
    return np.asarray([*gemm_shape(shape), *shape], dtype=np.int64)


def block_of(arrays: dict[str, np.ndarray]) -> tuple[int, int] | None:
    """The ``(r, c)`` of a stored ``block`` array, ``None`` without one.

    Raises:
        OnnxFormatError: the array does not hold two entries.
    """
    block = arrays.get("block")
    if block is None:
        return None
    if block.shape != (2,):
        raise OnnxFormatError(f"block array must have 2 entries, got {block.tolist()}")
    return int(block[0]), int(block[1])
