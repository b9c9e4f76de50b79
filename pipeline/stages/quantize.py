"""quantize: ternary / binary / TTQ / BinaryRelax / int8 weights with a short fine-tune; zeros stay zero.

A method that calibrates (int8: activation ranges) reads its ``calibration_batches`` training batches
(rank 0's order, no augmentation) before the fine-tune; a method with a step budget (int8) fine-tunes
at most that many steps per epoch unless ``steps`` says otherwise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.errors import UserError
from pipeline.stage import Stage, StageContext, StageResult
from pipeline.stages.fields import augment_field
from pipeline.training.adversarial import (
    AdversarialOptions,
    adversarial_loss_fn,
    check_training,
    natural_training_warnings,
)


def _quant_methods() -> list[str]:
    """The quantization methods (``compress.quant.QUANT_METHODS``, plugins included; loads torch)."""
    from compress.quant import list_quant_methods

    return list_quant_methods()


@dataclass(frozen=True)
class QuantizeConfig(AdversarialOptions):
    method: str = field(default="ternary", metadata={"choices": _quant_methods, "help": "quantization method"})
    epochs: int = field(default=1, metadata={"help": "fine-tuning epochs (0: project without fine-tuning)"})
    steps: int | None = field(default=None, metadata={"help": "at most this many fine-tuning steps per epoch (default: the method's own, 200 for int8, else whole epochs; 0: whole epochs)"})
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
    version = "3"  # 2: adversarial fine-tuning options; 3: calibration and step budgets (int8 activations)
    Config = QuantizeConfig
    summary = "ternary / binary / TTQ / BinaryRelax weights, or int8 weights and activations (calibrated, QAT), sparsity kept"

    def check(self, config: QuantizeConfig) -> None:
        check_training(config, what="quantize")
        if config.steps is not None and config.steps < 0:
            raise UserError(f"steps must be >= 0, got {config.steps}")
        _make_method(config)

    def run(self, ctx: StageContext, config: QuantizeConfig, inputs: dict) -> StageResult:
        from compress.quant import mean_bits_per_weight, quant_report
        from pipeline.stages.common import load_model, model_metrics, save_model, training_notes
        from pipeline.training.loop import run_training

        bundle, model = load_model(ctx, inputs["model"])
        data = ctx.load_data(bundle.input_shape)
        before = model_metrics(ctx, model, data)
        method = _make_method(config, lr_scale=ctx.options.lr_scale)
        notes = natural_training_warnings(ctx, config, model, data, label="quantize") if config.epochs > 0 else []
        loss_fn = adversarial_loss_fn(ctx, config, data)
        steps = config.steps if config.steps is not None else (method.fine_tune_steps or 0)
        try:
            if method.calibration_batches:
                method.calibrate(model, data.train_batches(batch_size=config.batch_size, seed=ctx.options.seed, epoch=0))
            if config.epochs > 0:
                run_training(_with_step_limit(ctx, steps), model, method, data, epochs=config.epochs, batch_size=config.batch_size,
                             label="quantize", loss_fn=loss_fn, augment=config.augment)
            method.finalize(model)
        except ValueError as error:
            raise UserError(f"quantize: {error}") from None
        records = method.records()
        rows = quant_report(model, records)
        after = model_metrics(ctx, model, data)
        path = save_model(ctx, bundle, model, quant=method.record_dicts())
        metrics = {
            **after,
            "method": config.method,
            "accuracy_before": before["test_accuracy"],
            "mean_bits_per_weight": mean_bits_per_weight(rows),
            "quantized_layers": [record.fqn for record in records],
            "per_layer": [_row(row) for row in rows],
            "notes": notes,
            **training_notes(ctx, data, config.augment),
            **_calibration_metrics(method, steps),
        }
        return StageResult(outputs={"model": path}, metrics=metrics)


def _with_step_limit(ctx: StageContext, steps: int) -> StageContext:
    """``ctx`` whose epochs stop after ``steps`` batches (the tighter of it and ``--epoch-steps``)."""
    if steps <= 0:
        return ctx
    limit = min(steps, ctx.options.epoch_steps) if ctx.options.epoch_steps else steps
    return dataclasses.replace(ctx, options=dataclasses.replace(ctx.options, epoch_steps=limit))


def _calibration_metrics(method, steps: int) -> dict[str, Any]:
    """What a calibrating method observed: its batch count, step budget and activation scales."""
    if not method.calibration_batches:
        return {}
    scales = method.activation_scales()
    return {"calibration_batches": method.calibration_batches, "fine_tune_steps_per_epoch": steps or None,
            "activation_scales": {name: value.to_dict() for name, value in scales.items()}}


def _make_method(config: QuantizeConfig, *, lr_scale: float = 1.0):
    from compress.quant import QUANT_METHODS
    from pipeline.stages.common import make_method

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
