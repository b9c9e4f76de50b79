"""Adversarial training and robust evaluation in the pipeline.

One set of attack options (``AdversarialOptions``) is shared by every stage that trains
(train-sparse, prune's masked fine-tune, quantize's QAT), so a recipe's run-level ``robust`` block
can set it once. Attacks act in the data's *pixel* units: ``eps`` is a radius in the scaled input
range (``[0, 1]`` for 8-bit images) and the clip to that range happens after the user's mean / std
standardisation is undone (``compress.robust.LinfAttack`` with ``mean`` / ``std``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from pipeline.errors import UserError
from pipeline.stage import StageContext

ADVERSARIAL = ("none", "fgsm", "ifgsm", "pgd")
GROUP = "adversarial"  # metadata group: the CLI lists these options after a stage's own
CHECK_SAMPLES = 256  # test images attacked (FGSM) to decide whether an input model is robust


@dataclass(frozen=True)
class AdversarialOptions:
    """Adversarial fine-tuning settings of a training stage (base of its config)."""

    adversarial: str = field(default="none", metadata={"choices": ADVERSARIAL, "group": GROUP, "help": "train on adversarial examples of this attack (none: natural training)"})
    adv_eps: float = field(default=0.3, metadata={"group": GROUP, "help": "L-inf radius of the training attack, in pixel units ([0, 1] images)"})
    adv_steps: int = field(default=10, metadata={"group": GROUP, "help": "attack iterations (ifgsm / pgd)"})
    adv_step_size: float | None = field(default=None, metadata={"group": GROUP, "help": "attack step size (default: 2.5 * adv-eps / adv-steps)"})
    adv_weight: float = field(default=1.0, metadata={"group": GROUP, "help": "weight of the adversarial loss (1: adversarial examples only)"})


def check_options(options: AdversarialOptions) -> None:
    """One line for a setting the attack would reject mid-training."""
    if not options.adv_eps >= 0:
        raise UserError(f"adv-eps must be >= 0, got {options.adv_eps}")
    if options.adv_steps < 1:
        raise UserError(f"adv-steps must be >= 1, got {options.adv_steps}")
    if options.adv_step_size is not None and not options.adv_step_size > 0:
        raise UserError(f"adv-step-size must be > 0, got {options.adv_step_size}")
    if not 0.0 <= options.adv_weight <= 1.0:
        raise UserError(f"adv-weight must be in [0, 1], got {options.adv_weight}")


def check_training(config: Any, *, what: str) -> None:
    """Settings of a training stage (epochs, batch size, adversarial options) the loop would reject
    mid-run, refused up front with one line."""
    if config.epochs < 0:
        raise UserError(f"{what}: epochs must be >= 0, got {config.epochs}")
    if config.batch_size < 1:
        raise UserError(f"{what}: batch-size must be >= 1, got {config.batch_size}")
    try:
        check_options(config)
    except UserError as error:
        raise UserError(f"{what}: {error}") from None


def make_attack(name: str, data: Any, *, eps: float, steps: int, step_size: float | None, seed: int):
    """The registered attack ``name`` in ``data``'s pixel units: valid range ``data.pixel_range``,
    standardisation ``data.preprocess`` mean / std undone before clipping."""
    from compress.robust import create_attack

    low, high = data.pixel_range
    kwargs: dict[str, Any] = {"eps": eps, "lo": low, "hi": high, "seed": seed, **_standardisation(data)}
    if name != "fgsm":
        kwargs.update(steps=steps, step_size=step_size if step_size is not None else default_step_size(eps, steps))
    return create_attack(name, **kwargs)


def default_step_size(eps: float, steps: int) -> float:
    """Madry et al.'s step for an iterative attack: ``2.5 * eps / steps`` (1 when ``eps`` is 0)."""
    return 2.5 * eps / steps if eps > 0 else 1.0


def _standardisation(data: Any) -> dict[str, tuple[float, ...]]:
    channels = int(data.test_x.shape[1])
    values = {}
    for key in ("mean", "std"):
        given = tuple(getattr(data.preprocess, key))
        if given:
            values[key] = given * channels if len(given) == 1 else given
    return values


def adversarial_loss_fn(ctx: StageContext, options: AdversarialOptions, data: Any) -> Callable | None:
    """The adversarial training loss of ``options`` (``None``: natural training)."""
    if options.adversarial == "none":
        return None
    from compress.robust import adversarial_loss

    attack = make_attack(options.adversarial, data, eps=options.adv_eps, steps=options.adv_steps, step_size=options.adv_step_size, seed=ctx.options.seed)
    return adversarial_loss(attack, trade_off=options.adv_weight)


def natural_training_warnings(ctx: StageContext, options: AdversarialOptions, model: torch.nn.Module, data: Any, *, label: str) -> list[str]:
    """A one-line warning when ``model`` is adversarially robust but the stage trains it naturally
    (natural fine-tuning wipes robustness out). Robust means: FGSM accuracy at ``adv-eps`` on the
    first ``CHECK_SAMPLES`` test images at least half the clean accuracy and above twice chance."""
    if options.adversarial != "none" or options.adv_eps <= 0 or not len(data.test_y):
        return []
    x, y = data.test_x[:CHECK_SAMPLES], data.test_y[:CHECK_SAMPLES]
    clean = _accuracy(model, x, y)
    if clean is None:  # labels the model cannot output: the training loop reports that
        return []
    attack = make_attack("fgsm", data, eps=options.adv_eps, steps=1, step_size=None, seed=ctx.options.seed)
    robust = _accuracy(model, attack(model, x, y), y)
    chance = 1.0 / max(data.num_classes, 2)
    if robust < max(0.5 * clean, 2 * chance):
        return []
    warning = (
        f"warning: {label}: the input model is adversarially robust (FGSM eps {options.adv_eps:g}: {robust:.1%} "
        f"of {len(y)} test images) but this stage trains without adversarial examples, which usually destroys "
        "robustness; set adversarial: pgd (or a recipe-level robust block)"
    )
    ctx.log(warning)
    return [warning]


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float | None:
    """Top-1 accuracy, or ``None`` when a label is beyond the model's outputs."""
    import torch

    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(x)
    model.train(was_training)
    if logits.dim() != 2 or int(y.max()) >= logits.shape[1]:
        return None
    return int((logits.argmax(1) == y).sum()) / max(len(y), 1)
