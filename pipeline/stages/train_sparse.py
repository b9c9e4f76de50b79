"""train-sparse: fine-tune (or train from scratch) with a sparsity-promoting method of the papers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.stage import Stage, StageContext, StageResult
from pipeline.stages.fields import augment_field
from pipeline.training.adversarial import (
    AdversarialOptions,
    adversarial_loss_fn,
    check_training,
    natural_training_warnings,
)


def _methods() -> list[str]:
    """The training methods (``compress.optim.METHODS``, plugins included; loads torch)."""
    from compress.optim import list_methods

    return list_methods()


@dataclass(frozen=True)
class TrainSparseConfig(AdversarialOptions):
    method: str = field(default="l1-prox", metadata={"choices": _methods, "help": "sparse training method"})
    epochs: int = field(default=1, metadata={"help": "training epochs"})
    batch_size: int = field(default=64, metadata={"help": "mini-batch size"})
    lr: float | None = field(default=None, metadata={"help": "step size of the method's update (xrda: its initial step s; default: the method's own, see compress methods -v)"})
    params: dict[str, Any] = field(default_factory=dict, metadata={"help": "method hyperparameters, KEY=VALUE"})
    from_scratch: bool = field(default=False, metadata={"help": "re-initialise the weights before training"})
    silence_dead_channels: bool = field(default=True, metadata={"help": "zero the bias / batch-norm shift of filters whose weights are all zero, so prune removes them"})
    augment: str = augment_field()


class TrainSparseStage(Stage):
    name = "train-sparse"
    version = "3"  # 3: adversarial attacks in pixel units, step 2.5 eps / steps by default
    Config = TrainSparseConfig
    summary = "sparsity-promoting training (SSGD, RVSM/RGSM, SGL, xRDA, ADMM, L1, group lasso, slimming)"

    def check(self, config: TrainSparseConfig) -> None:
        check_training(config, what="train-sparse")
        _make_method(config)

    def run(self, ctx: StageContext, config: TrainSparseConfig, inputs: dict) -> StageResult:
        import torch

        from compress.prune.dead_channels import silence_dead_channels_
        from compress.stats import channel_sparsity
        from pipeline.stages.common import load_model, model_metrics, save_model, training_notes

        bundle, model = load_model(ctx, inputs["model"])
        data = ctx.load_data(bundle.input_shape)
        torch.manual_seed(ctx.options.seed)
        if config.from_scratch:
            _reinitialise(model)
        before = model_metrics(ctx, model, data)
        method = _make_method(config, lr_scale=ctx.options.lr_scale)
        notes = _schedule_warnings(ctx, config, method) + natural_training_warnings(ctx, config, model, data, label="train-sparse")
        history = _train(ctx, config, model, method, data)
        method.finalize(model)
        silenced = silence_dead_channels_(model) if config.silence_dead_channels else 0
        after = model_metrics(ctx, model, data)
        after["channel_sparsity"] = channel_sparsity(model)
        after["removable_channel_sparsity"] = removable_channel_sparsity(model, (data.test_x[:16],))
        after["silenced_channels"] = silenced
        path = save_model(ctx, bundle, model, metrics={**bundle.metrics, "train-sparse": after["test_accuracy"]})
        metrics = {
            "method": config.method,
            "accuracy_before": before["test_accuracy"],
            "history": history,
            "notes": notes,
            **training_notes(ctx, data, config.augment),
            **after,
        }
        return StageResult(outputs={"model": path}, metrics=metrics)


def removable_channel_sparsity(model: torch.nn.Module, example: tuple) -> float:
    """Fraction of conv / linear output channels that the prune stage's channel removal would take
    out of ``model`` as it is (dead or unread channels): the structured sparsity the method reached."""
    from compress.prune import removable_channel_ratio

    try:
        return removable_channel_ratio(model, example_inputs=example)
    except (ValueError, RuntimeError, TypeError):  # a model the planner cannot handle: nothing it would remove
        return 0.0


def _make_method(config: TrainSparseConfig, *, lr_scale: float = 1.0):
    from compress.optim import METHODS
    from pipeline.stages.common import make_method

    values = dict(config.params)
    if config.lr is not None:
        values["lr"] = config.lr
    return make_method(METHODS.get(config.method), values, what=f"method {config.method}", lr_scale=lr_scale)


def _schedule_warnings(ctx: StageContext, config: TrainSparseConfig, method) -> list[str]:
    """Say so when the epochs end before a two-phase method (ADMM) reaches its masked retraining."""
    phase_epochs = getattr(method.hp, "admm_epochs", None)
    if phase_epochs is None or config.epochs > phase_epochs:
        return []
    warning = (
        f"warning: {config.method} hard-prunes after {phase_epochs} epochs and then retrains with the mask; "
        f"with --epochs {config.epochs} the retraining never runs (use more epochs or --params admm_epochs=N)"
    )
    ctx.log(f"train-sparse: {warning}")
    return [warning]


def _train(ctx: StageContext, config: TrainSparseConfig, model, method, data) -> list[dict[str, float]]:
    from pipeline.training.loop import run_training

    loss_fn = adversarial_loss_fn(ctx, config, data)
    return run_training(ctx, model, method, data, epochs=config.epochs, batch_size=config.batch_size, label="train",
                        loss_fn=loss_fn, augment=config.augment)


def _reinitialise(model: torch.nn.Module) -> None:
    import torch

    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "reset_parameters") and module is not model:
                module.reset_parameters()
