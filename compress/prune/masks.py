"""Weight masks: attach (parametrization), bake, re-apply during fine-tuning, and layouts/stats.

A mask set is a plain ``dict[str, torch.Tensor]`` from a parameter's ``fqn`` (``"features.0.weight"``)
to a boolean tensor of the parameter's shape; ``True`` keeps the weight. Attaching registers a
``torch.nn.utils.parametrize`` parametrization so the forward pass sees ``w * m`` and the gradient
reaching the stored weight is ``m * dL/d(w*m)`` (masked weights stay dead under plain SGD). Masks
live in the state dict only while attached (``parametrizations.<name>.original`` / ``...0.mask``);
``bake_masks`` writes ``w * m`` into the plain weight and removes them — never implicitly.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from compress.types import BlockShape, SparsityLayout

Masks = dict[str, torch.Tensor]


class WeightMask(nn.Module):
    """Parametrization ``w -> w * mask`` with the mask stored as a (non-trainable) buffer."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.detach().to(torch.bool).clone())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask.to(weight.dtype)


def _split_fqn(model: nn.Module, fqn: str) -> tuple[nn.Module, str]:
    module_fqn, _, name = fqn.rpartition(".")
    try:
        module = model.get_submodule(module_fqn)
    except AttributeError:
        raise KeyError(f"mask fqn {fqn!r} names no module of the model") from None
    if not hasattr(module, name):
        raise KeyError(f"mask fqn {fqn!r}: module {module_fqn!r} has no parameter {name!r}")
    return module, name


def attach_masks(model: nn.Module, masks: Masks) -> nn.Module:
    """Register a ``WeightMask`` parametrization on every parameter named in ``masks`` (in place)."""
    for fqn, mask in masks.items():
        module, name = _split_fqn(model, fqn)
        if parametrize.is_parametrized(module, name):
            raise ValueError(f"parameter {fqn!r} already has a mask attached; bake or detach it first")
        if tuple(mask.shape) != tuple(getattr(module, name).shape):
            raise ValueError(f"mask for {fqn!r} has shape {tuple(mask.shape)}, weight has {tuple(getattr(module, name).shape)}")
        parametrize.register_parametrization(module, name, WeightMask(mask))
    return model


def attached_masks(model: nn.Module) -> Masks:
    """The masks currently attached to ``model``, keyed by parameter fqn."""
    found: Masks = {}
    for module_fqn, module in model.named_modules():
        for name, plist in getattr(module, "parametrizations", {}).items():
            for item in plist:
                if isinstance(item, WeightMask):
                    found[f"{module_fqn}.{name}" if module_fqn else name] = item.mask.clone()
    return found


def bake_masks(model: nn.Module) -> nn.Module:
    """Write ``w * m`` into every masked parameter and remove its ``WeightMask`` (in place); other
    parametrizations (a quantizer's, a user's) stay attached.

    Raises:
        ValueError: when a tensor stacks a ``WeightMask`` with another parametrization.
    """
    for module in list(model.modules()):
        for name, stack in list(getattr(module, "parametrizations", {}).items()):
            kinds = [isinstance(p, WeightMask) for p in stack]
            if any(kinds) and not all(kinds):
                raise ValueError(f"{name} of {type(module).__name__} stacks a mask with another parametrization; cannot bake it alone")
            if all(kinds):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return model


@torch.no_grad()
def apply_masks_(model: nn.Module, masks: Masks) -> None:
    """Zero the masked-out entries of plain (un-parametrized) weights in place.

    For masked fine-tuning without parametrizations call this after every ``optimizer.step()``
    (momentum and weight decay would otherwise revive pruned weights).
    """
    for fqn, mask in masks.items():
        module, name = _split_fqn(model, fqn)
        getattr(module, name).mul_(mask.to(getattr(module, name).dtype))


@torch.no_grad()
def mask_gradients_(model: nn.Module, masks: Masks) -> None:
    """Zero the gradients of masked-out weights in place (call between ``backward`` and ``step``)."""
    for fqn, mask in masks.items():
        module, name = _split_fqn(model, fqn)
        grad = getattr(module, name).grad
        if grad is not None:
            grad.mul_(mask.to(grad.dtype))


def masks_from_weights(model: nn.Module, *, fqns: list[str]) -> Masks:
    """Masks that keep exactly the currently non-zero entries of the named parameters."""
    masks: Masks = {}
    for fqn in fqns:
        module, name = _split_fqn(model, fqn)
        masks[fqn] = getattr(module, name).detach().ne(0)
    return masks


def mask_layouts(model: nn.Module, masks: Masks, *, pattern: str, block: BlockShape) -> list[SparsityLayout]:
    """One ``SparsityLayout`` per masked weight; ``nnz`` counts non-zeros of ``w * m``."""
    layouts = []
    for fqn, mask in masks.items():
        module, name = _split_fqn(model, fqn)
        weight = getattr(module, name).detach()
        nnz = int((weight.ne(0) & mask).sum())
        layouts.append(SparsityLayout(fqn=fqn, pattern=pattern, block=block, nnz=nnz, numel=mask.numel()))
    return layouts


def mask_sparsity(masks: Masks) -> float:
    """Fraction of masked-out entries over all masks (``1 - kept / total``)."""
    total = sum(mask.numel() for mask in masks.values())
    kept = sum(int(mask.sum()) for mask in masks.values())
    return 1.0 - kept / max(total, 1)
