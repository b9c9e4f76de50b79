"""``export_onnx``: torch model -> compact ONNX file with in-graph weight decoding, checked for parity."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from onnx import numpy_helper

from compress.types import QuantRecord, SparsityLayout
from deploy.onnx.encodings import encode_candidates
from deploy.onnx.errors import OnnxFormatError
from deploy.onnx.graph_rewrite import EncodedWeight, encode_graph
from deploy.onnx.metadata import LAYOUTS_KEY, PREPROCESS_KEY, set_metadata
from deploy.onnx.parity import max_abs_error
from deploy.onnx.selection import select_encodings
from deploy.onnx.sizes import LayerSize, SizeTable, size_table
from deploy.onnx.torch_export import export_folded, weight_initializers


@dataclass(frozen=True)
class ExportResult:
    """What ``export_onnx`` wrote and measured.

    Attributes:
        path: the compressed ONNX file.
        sizes: dense vs compressed bytes (raw and gzip) and per-layer bytes.
        layers: the ``compress.layouts`` records written into the model.
        max_abs_error: ``max |onnxruntime - torch|`` on the example batch.
    """

    path: Path
    sizes: SizeTable
    layers: list[dict]
    max_abs_error: float


def _by_fqn(records, *, kind: str) -> dict:
    result = {}
    for record in records or ():
        if record.fqn in result:
            raise OnnxFormatError(f"duplicate {kind} for fqn {record.fqn!r}")
        result[record.fqn] = record
    return result


def _encode_all(model_proto, module, *, encoding, layouts, quant, opset) -> list[EncodedWeight]:
    layout_by_fqn = _by_fqn(layouts, kind="SparsityLayout")
    quant_by_fqn = _by_fqn(quant, kind="QuantRecord")
    arrays = {init.name: init for init in model_proto.graph.initializer}
    weights, candidates = weight_initializers(model_proto, module), []
    for initializer, fqn, _ in weights:
        layout, record = layout_by_fqn.get(fqn), quant_by_fqn.get(fqn)
        block = None if layout is None else (layout.block.rows, layout.block.cols)
        scales = record.scales if record is not None and record.scheme == "int8" else None
        weight = numpy_helper.to_array(arrays[initializer])
        try:
            candidates.append(encode_candidates(weight, encoding=encoding, block=block, scales=scales))
        except OnnxFormatError as exc:
            raise OnnxFormatError(f"weight {fqn!r} (initializer {initializer!r}): {exc}") from exc
    chosen = select_encodings(candidates, opset=opset)
    return [EncodedWeight(name, fqn, op, enc) for (name, fqn, op), enc in zip(weights, chosen)]


def _layer_sizes(encoded: list[EncodedWeight]) -> list[LayerSize]:
    return [
        LayerSize(
            fqn=w.fqn, initializer=w.initializer, format=w.encoding.format,
            numel=int(torch.Size(w.encoding.shape).numel()), nnz=w.encoding.nnz,
            dense_bytes=4 * int(torch.Size(w.encoding.shape).numel()), stored_bytes=w.encoding.stored_bytes,
        )
        for w in encoded
    ]


def export_onnx(
    model: torch.nn.Module,
    example_input: torch.Tensor,
    path: str | Path,
    *,
    opset: int = 17,
    layouts: list[SparsityLayout] | None = None,
    quant: list[QuantRecord] | None = None,
    encoding: str = "auto",
    preprocess: dict | None = None,
) -> ExportResult:
    """Export ``model`` to a compact ONNX file whose weights are decoded in-graph at load time.

    Steps: TorchScript export in eval mode (BN folded, dynamic batch), encode every conv / linear
    weight exactly (``"auto"``: the formats that make the whole file smallest, decode functions
    included; otherwise the forced ``encoding``), add decode functions and the
    ``compress.layouts`` / ``compress.preprocess`` metadata, ``onnx.checker`` with ``full_check``,
    write ``path``, then measure sizes and onnxruntime-vs-torch parity on ``example_input``.

    Args:
        model: the trained module (its training flag is restored afterwards).
        example_input: a batch ``[N, C, H, W]``; also the parity batch.
        path: output file.
        opset: default-domain opset (>= 17).
        layouts: sparsity layouts from the prune stage (their block shapes enable BSR).
        quant: quantization records (int8 scales are used when exact).
        encoding: ``"auto"`` or a format family (``deploy.onnx.formats.encoding_names()``: ``"dense"``,
            ``"int8"``, ``"csr"``, ``"bsr"``, ``"delta"``, ``"ternary"``, ``"binary"``).
        preprocess: input preprocessing, stored as JSON metadata.

    Raises:
        OnnxFormatError: bad arguments, or a forced encoding that cannot hold a weight exactly.
    """
    dense_proto, _ = export_folded(model, example_input, opset=opset)
    encoded = _encode_all(dense_proto, model, encoding=encoding, layouts=layouts, quant=quant, opset=opset)
    compressed = encode_graph(dense_proto, encoded)
    records = [w.layout_record() for w in encoded]
    set_metadata(compressed, key=LAYOUTS_KEY, value=records)
    set_metadata(compressed, key=PREPROCESS_KEY, value=preprocess or {})
    onnx.checker.check_model(compressed, full_check=True)
    data = compressed.SerializeToString()
    path = Path(path)
    path.write_bytes(data)
    sizes = size_table(dense=dense_proto.SerializeToString(), compressed=data, layers=_layer_sizes(encoded))
    return ExportResult(path, sizes, records, max_abs_error(compressed, model, example_input))
