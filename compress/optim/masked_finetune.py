"""``MaskedFinetune``: the step counter and the masked fine-tune phase that SGL, SSGD, ADMM and
network slimming end their runs with.

A method prunes during the run, then spends its last steps training the surviving weights under
frozen masks ``M`` (Han, Pool, Tran, Dally, "Learning both weights and connections for efficient
neural networks", NeurIPS 2015; ADMM's masked retraining, Zhang et al., ECCV 2018)::

    switch (once):  M <- the method's masks;  w <- w * M;  momentum buffers cleared
    every step:     g <- g * M   (before the optimizer step, once switched)
                    w <- w * M   (after it, whenever masks are held)

so a pruned weight stays exactly zero while the survivors train on the plain loss. The switch comes
after ``steps >= (1 - finetune_ratio) * total_steps`` optimizer steps, or when the method calls it
(ADMM after ``admm_epochs`` epochs, SSGD after ``ssgd_epochs``). ``steps`` is every method's name for
its optimizer-step counter.

A method holds one ``MaskedFinetune`` as ``self.phase`` and calls it from its verbs;
``docs/adding-a-method.md`` shows how.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from compress.optim.method import clone_tensors, load_steps, load_tensors
from compress.prune.masks import Masks, apply_masks_, mask_gradients_

MaskFunction = Callable[[nn.Module, Masks], None]

# The two read-only attributes every method with a ``phase`` exposes (``steps = PHASE_STEPS``).
PHASE_STEPS = property(lambda method: method.phase.steps, doc="Optimizer steps taken.")
PHASE_FINE_TUNING = property(lambda method: method.phase.active, doc="Whether the masked fine-tune has started.")


class MaskedFinetune:
    """Step counter, held masks and the switch to a masked fine-tune.

    Args:
        finetune_ratio: fraction of the run's steps left for the fine-tune; ``due`` never fires at 0
            (the method then switches itself, or never).
        apply: ``apply(model, masks)`` zeroes the pruned weights (``apply_masks_``: ``w <- w * M``).
        mask_gradients: ``mask_gradients(model, masks)`` before each fine-tune step
            (``mask_gradients_``: ``g <- g * M``); ``None`` leaves the gradients as they are.
        masks_key: the key of the masks in ``state_dict``.

    Attributes:
        steps: optimizer steps taken.
        masks: the held masks (empty until the method chooses them).
        active: whether the fine-tune has started.
    """

    def __init__(
        self,
        *,
        finetune_ratio: float = 0.0,
        apply: MaskFunction = apply_masks_,
        mask_gradients: MaskFunction | None = mask_gradients_,
        masks_key: str = "masks",
    ) -> None:
        self.finetune_ratio = finetune_ratio
        self._apply = apply
        self._mask_gradients = mask_gradients
        self.masks_key = masks_key
        self.steps = 0
        self.masks: Masks = {}
        self.active = False

    def switch_step(self, total_steps: int) -> float:
        """``(1 - finetune_ratio) * total_steps``: the step count at which the fine-tune starts."""
        return (1.0 - self.finetune_ratio) * total_steps

    def due(self, total_steps: int) -> bool:
        """``finetune_ratio > 0`` and ``steps >= (1 - finetune_ratio) * total_steps``."""
        return self.finetune_ratio > 0 and self.steps >= self.switch_step(total_steps)

    def hold(self, model: nn.Module, masks: Masks) -> None:
        """Keep ``masks`` (re-applied after every step from now on) and apply them to ``model``."""
        self.masks = masks
        self.apply(model)

    def start(self, model: nn.Module, masks: Masks, *, reset_momentum: Callable[[], None]) -> None:
        """The switch: hold and apply ``masks``, start the fine-tune, clear the optimizer's momentum."""
        self.hold(model, masks)
        self.active = True
        reset_momentum()

    def apply(self, model: nn.Module) -> None:
        """Zero the pruned weights of ``model`` under the held masks."""
        self._apply(model, self.masks)

    def before_step(self, model: nn.Module) -> bool:
        """Mask the gradients once fine-tuning; returns whether it is fine-tuning."""
        if self.active and self._mask_gradients is not None:
            self._mask_gradients(model, self.masks)
        return self.active

    def after_step(self, model: nn.Module) -> bool:
        """Count the step and re-apply the held masks; returns whether it is fine-tuning."""
        self.steps += 1
        if self.masks:
            self.apply(model)
        return self.active

    def finalize(self, model: nn.Module, choose: Callable[[nn.Module], Masks]) -> None:
        """Apply the held masks, first choosing them with ``choose(model)`` when no fine-tune ran."""
        if not self.active:
            self.masks = choose(model)
        self.apply(model)

    def state_dict(self) -> dict[str, Any]:
        return {self.masks_key: clone_tensors(self.masks), "steps": self.steps, "fine_tuning": self.active}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Read ``state_dict``'s keys or the earlier ones: ADMM's ``"step_count"`` and ``"retraining"``;
        a state without the flag (network slimming's) is fine-tuning when it holds masks."""
        self.masks = load_tensors(state, self.masks_key)
        self.steps = load_steps(state)
        self.active = bool(state.get("fine_tuning", state.get("retraining", bool(self.masks))))
