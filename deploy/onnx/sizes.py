"""Size table of an export: dense vs compressed ONNX bytes, raw and gzipped, plus per layer."""

from __future__ import annotations

import gzip
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class LayerSize:
    """Stored size of one weight.

    Attributes:
        fqn: torch parameter name.
        initializer: dense weight name in the graph.
        format: stored format.
        numel: weight entries.
        nnz: non-zero entries.
        dense_bytes: float32 bytes of the dense weight.
        stored_bytes: serialized bytes of the stored arrays (initializer protos, names excluded).
    """

    fqn: str
    initializer: str
    format: str
    numel: int
    nnz: int
    dense_bytes: int
    stored_bytes: int


@dataclass(frozen=True)
class SizeTable:
    """Whole-file sizes (bytes) and ratios, plus one ``LayerSize`` per weight."""

    dense_bytes: int
    compressed_bytes: int
    dense_gzip_bytes: int
    compressed_gzip_bytes: int
    layers: tuple[LayerSize, ...]

    @property
    def ratio(self) -> float:
        """Dense ONNX bytes over compressed ONNX bytes."""
        return self.dense_bytes / max(self.compressed_bytes, 1)

    @property
    def gzip_ratio(self) -> float:
        """Dense ONNX bytes over gzipped compressed ONNX bytes."""
        return self.dense_bytes / max(self.compressed_gzip_bytes, 1)

    @property
    def weight_ratio(self) -> float:
        """Dense float32 weight bytes over stored weight bytes (conv / linear weights only)."""
        dense = sum(layer.dense_bytes for layer in self.layers)
        return dense / max(sum(layer.stored_bytes for layer in self.layers), 1)

    def to_dict(self) -> dict:
        """JSON-ready dict, ratios included."""
        data = asdict(self)
        data.update(ratio=self.ratio, gzip_ratio=self.gzip_ratio, weight_ratio=self.weight_ratio)
        return data


def gzip_size(data: bytes) -> int:
    """Bytes of ``data`` after gzip level 9 (deterministic: mtime 0)."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def size_table(*, dense: bytes, compressed: bytes, layers: list[LayerSize]) -> SizeTable:
    """Build the size table of a dense and a compressed serialized model."""
    return SizeTable(
        dense_bytes=len(dense),
        compressed_bytes=len(compressed),
        dense_gzip_bytes=gzip_size(dense),
        compressed_gzip_bytes=gzip_size(compressed),
        layers=tuple(layers),
    )


def format_markdown(table: SizeTable) -> str:
    """The size table as markdown (whole file, then per layer)."""
    lines = [
        "| | dense fp32 | compressed | ratio |",
        "|---|---:|---:|---:|",
        f"| ONNX bytes | {table.dense_bytes} | {table.compressed_bytes} | {table.ratio:.1f}x |",
        f"| ONNX bytes, gzip -9 | {table.dense_gzip_bytes} | {table.compressed_gzip_bytes} | "
        f"{table.dense_gzip_bytes / max(table.compressed_gzip_bytes, 1):.1f}x |",
        f"| dense ONNX / compressed gzip | {table.dense_bytes} | {table.compressed_gzip_bytes} | "
        f"{table.gzip_ratio:.1f}x |",
        "",
        "| layer | format | numel | nnz | dense bytes | stored bytes | ratio |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for layer in table.layers:
        ratio = layer.dense_bytes / max(layer.stored_bytes, 1)
        lines.append(
            f"| {layer.fqn} | {layer.format} | {layer.numel} | {layer.nnz} | {layer.dense_bytes} | "
            f"{layer.stored_bytes} | {ratio:.1f}x |"
        )
    lines.append(f"| **all weights** | | | | {sum(l.dense_bytes for l in table.layers)} | "
                 f"{sum(l.stored_bytes for l in table.layers)} | {table.weight_ratio:.1f}x |")
    return "\n".join(lines)


def file_breakdown(model, layers: list[dict]) -> dict[str, int]:
    """Serialized bytes of the parts of a compressed ONNX file (protobuf framing not included).

    Args:
        model: the ``onnx.ModelProto``.
        layers: its ``compress.layouts`` records (``read_layouts(model)``); a weight kept dense counts
            as a weight array through its ``initializer``.
    """
    weight_arrays = {name for record in layers for name in (record.get("arrays") or {}).values()}
    weight_arrays |= {record["initializer"] for record in layers if record.get("format") == "dense"}
    inits = model.graph.initializer
    return {
        "weight arrays": sum(i.ByteSize() for i in inits if i.name in weight_arrays),
        "other initializers (biases)": sum(i.ByteSize() for i in inits if i.name not in weight_arrays),
        "graph nodes": sum(n.ByteSize() for n in model.graph.node),
        "decode functions": sum(f.ByteSize() for f in model.functions),
        "metadata_props": sum(p.ByteSize() for p in model.metadata_props),
    }
