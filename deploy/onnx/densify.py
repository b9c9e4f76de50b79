"""Replace every decode subgraph by a plain dense initializer (for TVM's importer)."""

from __future__ import annotations

import onnx
from onnx import numpy_helper

from deploy.onnx.decode_functions import DOMAIN
from deploy.onnx.metadata import LAYOUTS_KEY, read_layouts, set_metadata
from deploy.onnx.reader import read_compressed_weights


def densify(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose encoded weights are plain dense ``graph.initializer`` entries.

    Decode nodes, their arrays, the decode functions and their opset import are removed. The
    layout records keep ``fqn``, ``nnz``, ``block`` and ``bits``; ``format`` becomes ``"dense"``,
    ``arrays`` points at the dense initializer and ``encoded_format`` keeps the stored format.

    Raises:
        OnnxFormatError: when the stored arrays are malformed.
    """
    weights = read_compressed_weights(model)
    records = read_layouts(model)
    encoded = {r["initializer"]: r for r in records if r["format"] != "dense"}
    stored_arrays = {name for r in encoded.values() for name in r["arrays"].values()}
    result = onnx.ModelProto()
    result.CopyFrom(model)
    nodes = [n for n in result.graph.node if not (len(n.output) == 1 and n.output[0] in encoded)]
    del result.graph.node[:]
    result.graph.node.extend(nodes)
    kept = [init for init in result.graph.initializer if init.name not in stored_arrays]
    kept += [numpy_helper.from_array(weights[name], name) for name in encoded]
    del result.graph.initializer[:]
    result.graph.initializer.extend(kept)
    functions = [f for f in result.functions if f.domain != DOMAIN]
    del result.functions[:]
    result.functions.extend(functions)
    opsets = [o for o in result.opset_import if o.domain != DOMAIN]
    del result.opset_import[:]
    result.opset_import.extend(opsets)
    set_metadata(result, key=LAYOUTS_KEY, value=[_dense_record(r) for r in records])
    return result


def _dense_record(record: dict) -> dict:
    if record["format"] == "dense":
        return record
    return {**record, "format": "dense", "encoded_format": record["format"],
            "arrays": {"values": record["initializer"]}}
