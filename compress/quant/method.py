"""``QuantMethod``: the one base of the quantization methods.

A quantization method is a ``compress.optim.method.TrainingMethod``, so the pipeline's loop
(``compress.optim.loop.train_epoch``) drives it unchanged. Lifecycle:

* ``prepare(model, total_steps=)`` *attaches*: each selected conv / linear weight gets a
  ``torch.nn.utils.parametrize`` parametrization (latent float weight -> quantized surrogate);
  ``build_optimizer(model)`` then covers the latent weights (plus TTQ scales, in their own group).
  While attached, the model's ``state_dict`` holds ``<layer>.parametrizations.weight.original`` and
  the support ``mask`` buffers; to resume, prepare first, then load it.
* ``finalize(model)`` writes the exact projection into each weight, removes the parametrizations
  (the model is a plain module again) and keeps one ``QuantRecord`` per quantized weight, returned by
  ``records()``. ``finalize`` also works on a model that was never attached (post-training
  quantization without fine-tuning).

Sparsity preservation (``preserve_sparsity=True``): the support mask of a weight is ``w != 0`` at
attach time; pruned zeros stay exactly zero and are excluded from every scale statistic. The zeros of
the conv / linear layers left in float are re-imposed after every optimizer step as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from compress.optim.method import Hyperparameters, TrainingMethod
from compress.quant.quantized import QuantizedTensor
from compress.quant.support import nonzero_mask
from compress.selection import ALL_LAYERS, ParamSelector
from compress.types import QuantRecord


@dataclass(frozen=True)
class QuantHyperparameters(Hyperparameters):
    """Attributes:
        lr, momentum, weight_decay: SGD for the fine-tuning.
        per_channel: one scale per output channel instead of one per tensor.
        include: ``fnmatch`` patterns of module names to quantize (replaces the default rule).
        exclude: patterns of module names to leave in float.
        skip_first_last: without ``include``, keep the first and the last conv / linear layer in float.
        preserve_sparsity: keep existing zeros at zero and out of the scale statistics.
    """

    per_channel: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    skip_first_last: bool = True
    preserve_sparsity: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "include", tuple(self.include))
        object.__setattr__(self, "exclude", tuple(self.exclude))


class QuantMethod(TrainingMethod):
    """Base of the quantization methods: layer selection, attach, finalize and records.

    Subclasses implement ``make_parametrization(weight, mask)``, returning an ``nn.Module`` with
    ``forward(latent) -> surrogate`` and ``quantize(latent) -> QuantizedTensor``.
    """

    name = "quant"
    Hyperparameters = QuantHyperparameters

    def __init__(self, hp: QuantHyperparameters | None = None) -> None:
        super().__init__(hp)
        self.layers = ParamSelector(include=self.hp.include, exclude=self.hp.exclude, skip_first_last=self.hp.skip_first_last)
        self._layers: list[str] = []
        self._float_masks: dict[str, torch.Tensor] = {}
        self._records: list[QuantRecord] = []

    calibration_batches: int = 0  # training batches ``calibrate`` reads before fine-tuning (0: none)
    fine_tune_steps: int | None = None  # the most fine-tuning steps the method wants (None: whole epochs)

    def calibrate(self, model: nn.Module, batches: Any) -> Any:
        """Observe a few training batches before fine-tuning (activation ranges); weight-only methods need none."""
        return None

    def make_parametrization(self, weight: torch.Tensor, mask: torch.Tensor) -> nn.Module:
        """The parametrization of one weight; implemented by every concrete method."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_parametrization")

    def select_layers(self, model: nn.Module) -> list[str]:
        """Names of the modules this method quantizes (default: all but the first and last layer).

        Raises:
            ValueError: when a pattern matches no layer or nothing is left to quantize.
        """
        names = self.layers.names(model)
        if not names:
            raise ValueError(f"layer selection is empty (include={list(self.hp.include)}, exclude={list(self.hp.exclude)})")
        return names

    def support_mask(self, weight: torch.Tensor) -> torch.Tensor:
        """``w != 0`` with ``preserve_sparsity``, else all true."""
        if self.hp.preserve_sparsity:
            return nonzero_mask(weight)
        return torch.ones_like(weight, dtype=torch.bool)

    def prepare(self, model: nn.Module, *, total_steps: int) -> None:
        """Attach the parametrizations (see ``attach``)."""
        super().prepare(model, total_steps=total_steps)
        self.attach(model)

    def attach(self, model: nn.Module) -> list[str]:
        """Parametrize the selected weights; returns the module names.

        Raises:
            ValueError: if a selected weight is already parametrized (attached twice).
        """
        layers = self.select_layers(model)
        attached = [name for name in layers if parametrize.is_parametrized(model.get_submodule(name), "weight")]
        if attached:
            raise ValueError(f"layers {attached} are already parametrized; attach a quantization method only once")
        self._layers = layers
        for name in layers:
            module = model.get_submodule(name)
            weight = module.weight.detach()
            parametrization = self.make_parametrization(weight, self.support_mask(weight))
            parametrize.register_parametrization(module, "weight", parametrization)
        self._float_masks = self._float_layer_masks(model)
        return list(self._layers)

    def _float_layer_masks(self, model: nn.Module) -> dict[str, torch.Tensor]:
        if not self.hp.preserve_sparsity:
            return {}
        masks = {}
        for name, module in ALL_LAYERS.modules(model):
            if name not in self._layers and bool((module.weight == 0).any()):
                masks[name] = nonzero_mask(module.weight)
        return masks

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        """Keep the pruned zeros of the float (unquantized) layers at zero."""
        for name, mask in self._float_masks.items():
            model.get_submodule(name).weight.mul_(mask)

    def parametrizations(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        """``(module name, parametrization)`` of the attached layers."""
        found = []
        for name in self._layers:
            module = model.get_submodule(name)
            if parametrize.is_parametrized(module, "weight"):
                found.append((name, module.parametrizations.weight[0]))
        return found

    @torch.no_grad()
    def finalize(self, model: nn.Module) -> None:
        """Write the exact projections into the weights, detach, and store the ``QuantRecord`` list."""
        names = self._layers or self.select_layers(model)
        records = []
        for name in names:
            module = model.get_submodule(name)
            quantized = self._final_projection(module)
            module.weight.copy_(quantized.dequantize())
            records.append(quantized.to_record(fqn=f"{name}.weight"))
        self._layers = names
        self._records = records

    def _final_projection(self, module: nn.Module) -> QuantizedTensor:
        if parametrize.is_parametrized(module, "weight"):
            latent = module.parametrizations.weight.original.detach()
            quantized = module.parametrizations.weight[0].quantize(latent)
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
            return quantized
        weight = module.weight.detach()
        return self.make_parametrization(weight, self.support_mask(weight)).quantize(weight)

    def records(self) -> list[QuantRecord]:
        """One ``QuantRecord`` per quantized weight (empty before ``finalize``)."""
        return list(self._records)

    def record_dicts(self) -> list[dict[str, Any]]:
        """``records()`` as the dicts a model bundle stores (a method may add keys, e.g. activation scales)."""
        return [record.to_dict() for record in self._records]

    def state_dict(self) -> dict[str, Any]:
        return {"layers": list(self._layers), "records": [record.to_dict() for record in self._records]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._layers = list(state.get("layers", []))
        self._records = [QuantRecord.from_dict(data) for data in state.get("records", [])]

