"""prune: weight patterns (unstructured, block, N:M, BCR) with masked fine-tuning, and physical channel removal."""

from __future__ import annotations

from dataclasses import dataclass, field

from compress.types import BlockShape
from pipeline.atomic import write_json
from pipeline.errors import StageError, UserError
from pipeline.stage import Stage, StageContext, StageResult
from pipeline.stages.fields import LazyChoices, augment_field
from pipeline.training.adversarial import (
    AdversarialOptions,
    adversarial_loss_fn,
    check_training,
    natural_training_warnings,
)

SCHEDULES = ("one-shot", "agp")
LAYER_RATIOS = ("uniform", "from-model")


# the allowed values kept in compress.prune, which loads torch: read when first needed (LazyChoices)
def _patterns() -> tuple[str, ...]:
    from compress.prune import PATTERNS

    return PATTERNS


def _scopes() -> tuple[str, ...]:
    from compress.prune import SCOPES

    return SCOPES


def _importances() -> tuple[str, ...]:
    from compress.prune.channel_importance import IMPORTANCES

    return tuple(IMPORTANCES)


@dataclass(frozen=True)
class PruneConfig(AdversarialOptions):
    pattern: str = field(default="unstructured", metadata={"choices": LazyChoices(_patterns), "help": "weight sparsity pattern"})
    sparsity_ratio: float = field(default=0.9, metadata={"help": "target fraction of zero weights (0: no weight pruning)"})
    layer_ratios: str = field(default="uniform", metadata={"choices": LAYER_RATIOS, "help": "uniform: every layer to sparsity-ratio; from-model: each layer to the zeros it already has (left by train-sparse), at least sparsity-ratio"})
    layer_sparsity: dict[str, float] = field(default_factory=dict, metadata={"help": "each named weight's own sparsity ratio (FQN=RATIO; e.g. the goal search's allocation); the others get sparsity-ratio"})
    block: tuple[int, ...] = field(default=(1, 1), metadata={"help": "block rows,cols for block / bcr (e.g. 16,1)"})
    n: int = field(default=2, metadata={"help": "kept weights per group for n:m"})
    m: int = field(default=4, metadata={"help": "group size for n:m"})
    scope: str = field(default="layer", metadata={"choices": LazyChoices(_scopes), "help": "per layer or global thresholds"})
    exclude: tuple[str, ...] = field(default=(), metadata={"help": "fnmatch patterns of layers to keep dense"})
    schedule: str = field(default="one-shot", metadata={"choices": SCHEDULES, "help": "one-shot, or gradual cubic (AGP) over the epochs"})
    epochs: int = field(default=1, metadata={"help": "masked fine-tuning epochs"})
    lr: float = field(default=0.01, metadata={"help": "fine-tuning learning rate"})
    batch_size: int = field(default=64, metadata={"help": "fine-tuning batch size"})
    channel_ratio: float = field(default=0.0, metadata={"help": "fraction of channels to remove by importance (0: only all-zero channels)"})
    importance: str = field(default="l1", metadata={"choices": LazyChoices(_importances), "help": "channel importance"})
    channel_multiple: int = field(default=8, metadata={"help": "with channel-ratio: keep channel counts at multiples of this (CPU kernels prefer 8)"})
    remove_channels: bool = field(default=True, metadata={"help": "physically remove all-zero channels (checked for identical outputs)"})
    augment: str = augment_field()


class PruneStage(Stage):
    name = "prune"
    version = "3"  # 3: adversarial fine-tuning options
    Config = PruneConfig
    summary = "unstructured / block / N:M / BCR pruning with masked fine-tuning, and physical channel removal"

    def check(self, config: PruneConfig) -> None:
        _validate(config)
        check_training(config, what="prune")

    def run(self, ctx: StageContext, config: PruneConfig, inputs: dict) -> StageResult:
        from compress.stats import channel_sparsity, output_channels
        from pipeline.stages.common import load_model, model_metrics, save_model, training_notes

        bundle, model = load_model(ctx, inputs["model"])
        data = ctx.load_data(bundle.input_shape)
        example = (data.test_x[:16],)
        before = {**model_metrics(ctx, model, data), **_compute(model, example)}
        channels_before = output_channels(model)
        plans, notes, differences, removed = list(bundle.channel_plans), [], [], 0
        if config.channel_ratio > 0:
            model, plan, difference = _remove_channels(model, example, ratio=config.channel_ratio, config=config, exact=False)
            plans.append(plan.to_dict())
            notes += plan.notes
            differences.append(difference)
            removed += plan.removed_output_channels()
        if config.epochs > 0:
            notes += natural_training_warnings(ctx, config, model, data, label="prune")
        if config.epochs > 0 or _prunes(config):
            _prune_and_fine_tune(ctx, config, model, data)
        if config.remove_channels:
            model, plan, difference = _remove_channels(model, example, ratio=None, config=config, exact=True)
            if plan.modules:
                plans.append(plan.to_dict())
                differences.append(difference)
                removed += plan.removed_output_channels()
            notes += plan.notes
        layouts = _layouts(model, config)
        notes += _empty_layer_warnings(ctx, layouts)
        zero_rows = round(channel_sparsity(model) * output_channels(model))
        after = {**model_metrics(ctx, model, data), **_compute(model, example),
                 "channel_sparsity": (removed + zero_rows) / max(channels_before, 1)}  # removed channels count
        plan_path = write_json(ctx.stage_dir / "channel-plans.json", plans)
        path = save_model(ctx, bundle, model, channel_plans=plans, layouts=[layout.to_dict() for layout in layouts])
        metrics = {**after, "before": before, "notes": notes, **training_notes(ctx, data, config.augment), "pattern": config.pattern, "block": list(config.block),
                   "channel_removal_max_abs_difference": max(differences, default=0.0),
                   "removed_channels": removed, "removed_channel_sparsity": removed / max(channels_before, 1)}
        return StageResult(outputs={"model": path, "channel-plan": plan_path}, metrics=metrics)


def _validate(config: PruneConfig) -> None:
    if not 0.0 <= config.sparsity_ratio < 1.0:
        raise UserError(f"sparsity-ratio must be in [0, 1), got {config.sparsity_ratio}")
    if not 0.0 <= config.channel_ratio < 1.0:
        raise UserError(f"channel-ratio must be in [0, 1), got {config.channel_ratio}")
    if any(not isinstance(v, (int, float)) or not 0.0 <= v < 1.0 for v in config.layer_sparsity.values()):
        raise UserError(f"layer-sparsity ratios must be numbers in [0, 1), got {dict(config.layer_sparsity)}")
    if len(config.block) != 2 or min(config.block) < 1:
        raise UserError(f"block must be two positive integers rows,cols, got {list(config.block)}")
    if config.layer_ratios == "from-model" and config.schedule != "one-shot":
        raise UserError("layer-ratios from-model prunes in one shot; use schedule one-shot")


def _prune_and_fine_tune(ctx: StageContext, config: PruneConfig, model, data) -> None:
    from compress.optim.method import TrainingMethod
    from compress.prune import attach_masks, bake_masks
    from pipeline.stages.common import make_method
    from pipeline.training.loop import run_training

    rounds = max(config.epochs, 1) if config.schedule == "agp" else 1
    loss_fn = adversarial_loss_fn(ctx, config, data)
    for index in range(rounds):
        ratio = _round_ratio(config, index, rounds)
        masks = _masks(model, config, ratio)
        attach_masks(model, masks)
        epochs = 1 if config.schedule == "agp" else config.epochs
        if epochs > 0:
            label = f"prune-round{index + 1}" if rounds > 1 else "prune"
            method = make_method(TrainingMethod, {"lr": config.lr}, what="prune", lr_scale=ctx.options.lr_scale)
            run_training(ctx, model, method, data, epochs=epochs, batch_size=config.batch_size, label=label, loss_fn=loss_fn, augment=config.augment)
        bake_masks(model)


def _prunes(config: PruneConfig) -> bool:
    """Whether the block / pattern masks act (a ratio, per-layer ratios, or the zeros train-sparse left)."""
    return config.sparsity_ratio > 0 or config.layer_ratios == "from-model" or bool(config.layer_sparsity)


def _round_ratio(config: PruneConfig, index: int, rounds: int) -> float:
    from compress.prune import agp_sparsity

    if rounds == 1:
        return config.sparsity_ratio
    return agp_sparsity(index + 1, initial_ratio=0.0, final_ratio=config.sparsity_ratio, start_step=0, num_updates=rounds, update_every=1)


def _masks(model, config: PruneConfig, ratio: float):
    from compress.prune import prune_weights
    from compress.selection import ParamSelector

    layers = ParamSelector(exclude=config.exclude)
    try:
        ratios = _layer_ratios(model, layers, floor=ratio) if config.layer_ratios == "from-model" else (dict(config.layer_sparsity) or None)
        result = prune_weights(
            model, pattern=config.pattern, sparsity_ratio=ratio, block=BlockShape(*config.block),
            n=config.n, m=config.m, scope=config.scope, layers=layers, layer_sparsity=ratios,
        )
    except ValueError as error:
        raise UserError(f"prune: {error}") from None
    return result.masks


def _layer_ratios(model, layers, *, floor: float) -> dict[str, float]:
    """Each layer's fraction of exact zeros (at least ``floor``): the pattern then finishes, layer by
    layer, the sparsity a training method started instead of imposing one ratio on every layer."""
    return {fqn: max(floor, float((weight == 0).float().mean())) for fqn, weight in layers.weights(model)}


def _remove_channels(model, example, *, ratio, config: PruneConfig, exact: bool):
    """Remove channels by importance (``ratio``, widths rounded to ``channel-multiple``), or the dead
    channels (``ratio=None``: all of them, so the channels train-sparse reported as removable are the
    ones removed; after a block pattern, widths keep to ``channel-multiple`` as with a ratio)."""
    from compress.prune import ChannelRemovalMismatch, check_channel_equivalence, prune_channels

    blocked = config.pattern in ("block", "bcr") and _prunes(config)
    multiple = config.channel_multiple if ratio is not None or blocked else 1
    try:
        result = prune_channels(
            model, example_inputs=example, channel_ratio=ratio, importance=config.importance, channel_multiple=multiple
        )
    except ValueError as error:
        raise UserError(f"prune: {error}") from None
    reference = model if exact else result.masked_model
    try:
        difference = check_channel_equivalence(reference, result.model, inputs=example, atol=1e-5)
    except ChannelRemovalMismatch as error:
        raise StageError(f"prune: channel removal changed the outputs: {error}") from None
    return result.model, result.plan, difference


def _layouts(model, config: PruneConfig):
    from compress.prune import mask_layouts, masks_from_weights
    from compress.selection import ParamSelector

    fqns = [fqn for fqn, _ in ParamSelector(exclude=config.exclude).weights(model)]
    pattern = config.pattern if _prunes(config) else "unstructured"
    block = BlockShape(*config.block) if pattern in ("block", "bcr") else BlockShape(1, 1)
    return mask_layouts(model, masks_from_weights(model, fqns=fqns), pattern=pattern, block=block)


def _empty_layer_warnings(ctx: StageContext, layouts) -> list[str]:
    """A layer pruned to zero weights cuts the network: say so loudly (exclude it or lower the ratio)."""
    warnings = [f"warning: {layout.fqn} has no non-zero weight left; exclude it (--exclude) or lower the ratio" for layout in layouts if layout.nnz == 0]
    for warning in warnings:
        ctx.log(f"prune: {warning}")
    return warnings


def _compute(model, example) -> dict:
    import torch

    from compress.prune import count_compute

    with torch.no_grad():
        count = count_compute(model, example)
    return {"macs": count.macs, "nonzero_macs": count.nonzero_macs, "parameters": count.params, "nonzero_parameters": count.nonzero_params}
