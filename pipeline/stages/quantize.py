"""quantize: ternary / binary / TTQ / BinaryRelax / int8 weights with a short fine-tune; zeros stay zero."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from compress.quant import (
    QUANT_METHODS,
    list_quant_methods,
    mean_bits_per_weight,
    quant_report,
)
from pipeline.errors import UserError
from pipeline.stage import Stage, StageContext, StageResult
from pipeline.stages.common import augment_field, load_model, make_method, model_metrics, save_model, training_notes
from pipeline.training.adversarial import (
    AdversarialOptions,
    adversarial_loss_fn,
    check_training,
    natural_training_warnings,
)
from pipeline.training.loop import run_training


@dataclass(frozen=True)
class QuantizeConfig(AdversarialOptions):
    method: str = field(default="ternary", metadata={"choices": list_quant_methods, "help": "quantization method"})
    epochs: int = field(default=1, metadata={"help": "fine-tuning epochs (0: project without fine-tuning)"})
    lr: float | None = field(default=None, metadata={"help": "fine-tuning learning rate (default: the method's own)"})
    batch_size: int = field(default=64, metadata={"help": "fine-tuning batch size"})
    per_channel: bool | None = field(default=None, metadata={"help": "one scale per output channel (default: the method's own, per channel for int8)"})
    skip_first_last: bool = field(default=True, metadata={"help": "keep the first and last conv / linear layers in float"})
    include: tuple[str, ...] = field(default=(), metadata={"help": "fnmatch patterns of layers to quantize (overrides skip-first-last)"})
    exclude: tuple[str, ...] = field(default=(), metadata={"help": "fnmatch patterns of layers to keep in float"})
    params: dict[str, Any] = field(default_factory=dict, metadata={"help": "method hyperparameters, KEY=VALUE"})
    augment: str = augment_field()


class QuantizeStage(Stage):
    name = "quantize"
    version = "2"  # 2: adversarial fine-tuning options
    Config = QuantizeConfig
    summary = "ternary / binary / TTQ / BinaryRelax / int8 weight quantization, sparsity kept"

    def check(self, config: QuantizeConfig) -> None:
        check_training(config, what="quantize")
        _make_method(config)

    def run(self, ctx: StageContext, config: QuantizeConfig, inputs: dict) -> StageResult:
        bundle, model = load_model(ctx, inputs["model"])
        data = ctx.load_data(bundle.input_shape)
        before = model_metrics(ctx, model, data)
        method = _make_method(config, lr_scale=ctx.options.lr_scale)
        notes = natural_training_warnings(ctx, config, model, data, label="quantize") if config.epochs > 0 else []
        loss_fn = adversarial_loss_fn(ctx, config, data)
        try:
            if config.epochs > 0:
                run_training(ctx, model, method, data, epochs=config.epochs, batch_size=config.batch_size, label="quantize", loss_fn=loss_fn, augment=config.augment)
            method.finalize(model)
        except ValueError as error:
            raise UserError(f"quantize: {error}") from None
        records = method.records()
        rows = quant_report(model, records)
        after = model_metrics(ctx, model, data)
        path = save_model(ctx, bundle, model, quant=[record.to_dict() for record in records])
        metrics = {
            **after,
            "method": config.method,
            "accuracy_before": before["test_accuracy"],
            "mean_bits_per_weight": mean_bits_per_weight(rows),
            "quantized_layers": [record.fqn for record in records],
            "per_layer": [_row(row) for row in rows],
            "notes": notes,
            **training_notes(ctx, data, config.augment),
        }
        return StageResult(outputs={"model": path}, metrics=metrics)


def _make_method(config: QuantizeConfig, *, lr_scale: float = 1.0):
    values: dict[str, Any] = {"skip_first_last": config.skip_first_last, **config.params}
    if config.lr is not None:
        values["lr"] = config.lr
    if config.per_channel is not None:
        values["per_channel"] = config.per_channel
    if config.include:
        values["include"] = config.include
    if config.exclude:
        values["exclude"] = config.exclude
    return make_method(QUANT_METHODS.get(config.method), values, what=f"quantize: method {config.method}", lr_scale=lr_scale)


def _row(row) -> dict[str, Any]:
    data = asdict(row)
    return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}
