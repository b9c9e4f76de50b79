"""export: ONNX with compact CSR / BSR / packed ternary / int8 weights, checked against torch."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from compress.types import QuantRecord, SparsityLayout
from pipeline.atomic import atomic_path, write_text
from pipeline.errors import StageError, UserError
from pipeline.stage import Stage, StageContext, StageResult

PARITY_ATOL = 1e-4


def _encoding_names() -> tuple[str, ...]:
    """``auto`` and every weight format family of ``deploy.onnx.formats.FORMATS`` (loads onnx)."""
    from deploy.onnx.formats import encoding_names

    return encoding_names()


@dataclass(frozen=True)
class ExportConfig:
    encoding: str = field(default="auto", metadata={"choices": _encoding_names, "help": "weight encoding: auto (the smallest exact one per weight) or a format family"})
    opset: int = field(default=17, metadata={"help": "ONNX opset (>= 17)"})
    parity_batch: int = field(default=64, metadata={"help": "test samples for the torch vs onnxruntime parity check"})


class ExportStage(Stage):
    name = "export"
    version = "2"
    Config = ExportConfig
    produces = ("onnx",)
    summary = "ONNX export with compact CSR / BSR / packed ternary / int8 weights, lossless"

    def check(self, config: ExportConfig) -> None:
        if config.opset < 17:
            raise UserError(f"opset must be >= 17, got {config.opset}")
        if config.parity_batch < 1:
            raise UserError(f"parity-batch must be >= 1, got {config.parity_batch}")

    def run(self, ctx: StageContext, config: ExportConfig, inputs: dict) -> StageResult:
        from compress.models.enresnet import set_noise_mode
        from deploy.onnx import OnnxFormatError, format_markdown
        from pipeline.stages.common import load_model
        from pipeline.stages.export_qdq import export_kind, export_qdq_model

        bundle, model = load_model(ctx, inputs["model"])
        set_noise_mode(model, "train")  # EnResNet's test-time noise would export as random ops
        data = ctx.load_data(bundle.input_shape)
        example = data.test_x[: max(config.parity_batch, 1)]
        path = ctx.stage_dir / "model.onnx"
        try:
            with atomic_path(path) as tmp:
                exporter = export_qdq_model if export_kind(bundle.quant) == "qdq" else _export_compact
                result = exporter(
                    model, example, tmp, opset=config.opset, encoding=config.encoding,
                    layouts=[SparsityLayout.from_dict(d) for d in bundle.layouts],
                    quant=bundle.quant,
                    preprocess=bundle.preprocess or data.preprocessing_record(),
                )
                tolerance = getattr(result, "parity_tolerance", PARITY_ATOL)
                if not result.max_abs_error <= tolerance:
                    raise StageError(f"export: onnxruntime differs from torch by {result.max_abs_error:.3g} > {tolerance:.3g}")
        except OnnxFormatError as error:
            raise UserError(f"export: {error}") from None
        table = result.sizes
        size_table = format_markdown(table)
        stored_weights = sum(layer.stored_bytes for layer in table.layers)
        dense_weights = sum(layer.dense_bytes for layer in table.layers)
        original, original_gzip, original_weights = (
            _original_dense_sizes(ctx, bundle, example, opset=config.opset) or (table.dense_bytes, table.dense_gzip_bytes, dense_weights)
        )
        ratio = original / max(table.compressed_bytes, 1)
        weight_ratio = original_weights / max(stored_weights, 1)
        if bundle.channel_plans:
            size_table += (
                f"\nThe dense fp32 ONNX of the original architecture (before channel removal): {original} bytes, "
                f"gzip -9 {original_gzip} bytes; the compressed ONNX is {ratio:.1f}x "
                f"smaller, {original_gzip / max(table.compressed_gzip_bytes, 1):.1f}x smaller gzipped. "
                f"Its fp32 conv / linear weights: {original_weights} bytes; the stored weights are {weight_ratio:.1f}x smaller.\n"
            )
        write_text(ctx.stage_dir / "sizes.md", size_table)
        ctx.log(f"{size_table}\nexport: {ratio:.1f}x smaller than the original dense fp32 ONNX, parity {result.max_abs_error:.2e}")
        metrics = {
            "max_abs_error": result.max_abs_error,
            "onnx_test_accuracy": onnx_accuracy(path, data),
            "compression_ratio": ratio,
            "weight_compression_ratio": weight_ratio,
            "original_dense_weight_bytes": original_weights,
            "original_dense_bytes": original,
            "original_dense_gzip_bytes": original_gzip,
            "sizes": table.to_dict(),
            "layers": result.layers,
            **({"onnxruntime_int8_ops": result.int8_ops} if hasattr(result, "int8_ops") else {}),
        }
        return StageResult(outputs={"onnx": path, "size-table": ctx.stage_dir / "sizes.md"}, metrics=metrics)


def _export_compact(model, example, path, *, quant: list[dict], **options):
    """The compact-weights ONNX (``deploy.onnx.export_onnx``) of a bundle's quantization records."""
    from deploy.onnx import export_onnx

    return export_onnx(model, example, path, quant=[QuantRecord.from_dict(d) for d in quant], **options)


def _original_dense_sizes(ctx: StageContext, bundle, example, *, opset: int) -> tuple[int, int, int] | None:
    """Bytes and gzip -9 bytes of the dense fp32 ONNX of the architecture before channel removal, and
    the fp32 bytes of its conv / linear weights (``None`` without removal): the size table compares
    layers of the slimmer network, the headline ratios compare against what the user brought."""
    if not bundle.channel_plans:
        return None
    from torch import nn

    from deploy.onnx.sizes import gzip_size
    from deploy.onnx.torch_export import export_dense
    from pipeline.model.bundle import build_architecture

    original = build_architecture(bundle.arch, bundle.arch_kwargs, trust_pickle=ctx.options.trust_pickle,
                                  trusted_archs=ctx.options.trusted_archs, input_shape=bundle.input_shape)
    data = export_dense(original, example, opset=opset).SerializeToString()
    weights = sum(4 * module.weight.numel() for module in original.modules() if isinstance(module, (nn.Conv2d, nn.Linear)))
    return len(data), gzip_size(data), weights


def onnx_accuracy(path, data, *, batch_size: int = 500) -> float:
    """Top-1 accuracy of the ONNX model under onnxruntime on the held-out split."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    correct = 0
    for start in range(0, len(data.test_y), batch_size):
        x = data.test_x[start : start + batch_size].numpy()
        logits = session.run(None, {name: x})[0]
        correct += int((np.argmax(logits, axis=1) == data.test_y[start : start + batch_size].numpy()).sum())
    return correct / max(len(data.test_y), 1)
