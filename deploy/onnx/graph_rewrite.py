"""Replace dense weight initializers by encoded arrays plus one decode node each."""

from __future__ import annotations

from dataclasses import dataclass

import onnx
from onnx import helper, numpy_helper

from deploy.onnx.decode_functions import DOMAIN
from deploy.onnx.encodings import WeightEncoding
from deploy.onnx.errors import OnnxFormatError
from deploy.onnx.formats import get_format


@dataclass(frozen=True)
class EncodedWeight:
    """One weight initializer of the graph and how it is stored.

    Attributes:
        initializer: name of the dense weight the graph consumes.
        fqn: torch parameter name (or the initializer name when unknown).
        op: consuming op type (``Conv``, ``Gemm``, ``MatMul``).
        encoding: the stored form.
    """

    initializer: str
    fqn: str
    op: str
    encoding: WeightEncoding

    def layout_record(self) -> dict:
        """The ``compress.layouts`` record of this weight (docs/contracts.md)."""
        enc = self.encoding
        return {
            "fqn": self.fqn,
            "initializer": self.initializer,
            "op": self.op,
            "shape": list(enc.shape),
            "format": enc.format,
            "block": list(enc.block),
            "nnz": enc.nnz,
            "bits": enc.bits,
            "arrays": array_names(self.initializer, enc),
        }


def array_names(initializer: str, encoding: WeightEncoding) -> dict[str, str]:
    """Initializer name of each stored array (a format stored in place keeps the original name)."""
    if get_format(encoding.format).in_place:
        return {"values": initializer}
    return {role: f"{initializer}.{role}" for role in encoding.arrays}


def _decode_node(weight: EncodedWeight, function: onnx.FunctionProto | None) -> onnx.NodeProto:
    names = array_names(weight.initializer, weight.encoding)
    record = get_format(weight.encoding.format)
    if record.decode_node is not None:
        return record.decode_node([names[role] for role in record.roles], weight.initializer)
    inputs = [names[role] for role in function.input]
    return helper.make_node(function.name, inputs, [weight.initializer], domain=DOMAIN)


def _default_opset(model: onnx.ModelProto) -> int:
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            return opset.version
    raise OnnxFormatError("model has no default-domain opset import")


def encode_graph(model: onnx.ModelProto, weights: list[EncodedWeight]) -> onnx.ModelProto:
    """A copy of ``model`` where each weight in ``weights`` is stored encoded and decoded in-graph.

    Decode nodes are prepended to the graph (their inputs are all initializers); the decode
    functions used are added once each, with an opset import for their domain.

    Raises:
        OnnxFormatError: a weight names an initializer the graph lacks.
    """
    result = onnx.ModelProto()
    result.CopyFrom(model)
    opset = _default_opset(result)
    existing = {init.name: i for i, init in enumerate(result.graph.initializer)}
    functions: dict[str, onnx.FunctionProto] = {}
    nodes, drop = [], set()
    for weight in weights:
        if weight.initializer not in existing:
            raise OnnxFormatError(f"graph has no initializer {weight.initializer!r}")
        fmt, record = weight.encoding.format, get_format(weight.encoding.format)
        if record.in_place:
            continue
        if record.decode_body is not None and fmt not in functions:
            functions[fmt] = record.decode_function(opset=opset)
        drop.add(weight.initializer)
        names = array_names(weight.initializer, weight.encoding)
        for role, array in weight.encoding.arrays.items():
            result.graph.initializer.append(numpy_helper.from_array(array, names[role]))
        nodes.append(_decode_node(weight, functions.get(fmt)))
    kept = [init for init in result.graph.initializer if init.name not in drop]
    del result.graph.initializer[:]
    result.graph.initializer.extend(kept)
    old_nodes = list(result.graph.node)
    del result.graph.node[:]
    result.graph.node.extend(nodes + old_nodes)
    if functions:
        result.functions.extend(functions.values())
        result.opset_import.append(helper.make_opsetid(DOMAIN, 1))
    return result
