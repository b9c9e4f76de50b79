"""``"int8"``: calibrated, quantization-aware fine-tuned int8 weights and activations.

The scheme of Jacob et al., "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference", CVPR 2018, made symmetric as in Krishnamoorthi, "Quantizing deep
convolutional networks for efficient inference: A whitepaper", arXiv 1806.08342, 2018:

* weights: per output channel (default) ``s_w[c] = max_i |w[c, i]| / 127``,
  ``q_w = clamp(round(w / s_w), -127, 127)`` (``compress.quant.int8``); pruned zeros stay zero and out
  of ``max |w|``;
* activations: one scale per tensor, ``s = r / 127`` with ``r`` the largest ``|x|`` seen on
  ``calibration_batches`` training batches (``calibrate``; ``compress.quant.calibration``), at each
  int8 layer's input and output (the logits of a last int8 layer included, as in an all-integer model);
* quantization-aware training: ``steps`` SGD steps of the fake-quantized model; weights by the
  straight-through estimator ``w <- w - lr * dL/dw_hat`` (``compress.quant.ste``), activations by
  the clipped straight-through ``fq`` (``compress.quant.fake_quant``); scales fixed after calibration;
* biases: int32 codes at scale ``s_in * s_w[c]`` (Jacob et al. sec. 2.4), written by ``finalize``.

Without ``calibrate`` the method quantizes weights only (the activations stay float).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable

import torch
from torch import nn

from compress.quant.activation_quant import ActivationFakeQuant, ActivationScales
from compress.quant.calibration import observe_ranges
from compress.quant.fake_quant import quantize_bias, symmetric_scale
from compress.quant.method import QuantHyperparameters, QuantMethod
from compress.quant.ste import ProjectedWeight
from compress.types import QuantRecord


@dataclass(frozen=True)
class Int8Hyperparameters(QuantHyperparameters):
    """Attributes:
        per_channel: per-output-channel weight scales (default).
        calibration_batches: training batches whose activation ranges set the activation scales.
        steps: quantization-aware fine-tuning steps (the quantize stage stops there).
        lr: fine-tuning learning rate (small: the model is already trained).
    """

    lr: float = 0.001
    per_channel: bool = True
    calibration_batches: int = 16
    steps: int = 200

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.calibration_batches < 1:
            raise ValueError(f"calibration_batches must be >= 1, got {self.calibration_batches}")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")


class Int8Method(QuantMethod):
    """Symmetric int8 weights (per channel) and activations (per tensor), calibrated, then QAT."""

    name = "int8"
    Hyperparameters = Int8Hyperparameters

    def __init__(self, hp: Int8Hyperparameters | None = None) -> None:
        super().__init__(hp)
        self.activations: ActivationFakeQuant | None = None
        self._model: nn.Module | None = None

    @property
    def calibration_batches(self) -> int:
        return self.hp.calibration_batches

    @property
    def fine_tune_steps(self) -> int | None:
        return self.hp.steps

    def make_parametrization(self, weight: torch.Tensor, mask: torch.Tensor) -> nn.Module:
        return ProjectedWeight(projection="int8", mask=mask, per_channel=self.hp.per_channel)

    def prepare(self, model: nn.Module, *, total_steps: int) -> None:
        """Attach the weight parametrizations unless ``calibrate`` did already."""
        self.total_steps = max(int(total_steps), 1)
        self._model = model
        if not self.parametrizations(model):
            self.attach(model)

    def calibrate(self, model: nn.Module, batches: Iterable) -> dict[str, ActivationScales]:
        """Observe activation ranges on ``calibration_batches`` batches (int8 weights attached first),
        then fake-quantize the activations with the scales they give; returns them by module name."""
        self._model = model
        if not self.parametrizations(model):
            self.attach(model)
        ranges = observe_ranges(model, self._layers, batches, num_batches=self.hp.calibration_batches)
        scales = {name: ActivationScales(symmetric_scale(found.input_max), symmetric_scale(found.output_max))
                  for name, found in ranges.items()}
        self._set_scales(model, scales)
        return scales

    def _set_scales(self, model: nn.Module, scales: dict[str, ActivationScales]) -> None:
        if self.activations is not None:
            self.activations.remove()
        self.activations = ActivationFakeQuant(scales).attach(model)

    def activation_scales(self) -> dict[str, ActivationScales]:
        """``{module name: ActivationScales}`` (empty before ``calibrate``)."""
        return {} if self.activations is None else dict(self.activations.scales)

    @torch.no_grad()
    def finalize(self, model: nn.Module) -> None:
        """Exact int8 weights (all-zero channels get a usable scale) and int32-exact biases; the
        activation fake quantization stays attached, so the model computes what the int8 model does."""
        super().finalize(model)
        self._records = [_positive_scales(record) for record in self._records]
        scales = self.activation_scales()
        for record in self._records:
            name = record.fqn.removesuffix(".weight")
            bias = getattr(model.get_submodule(name), "bias", None)
            if name in scales and bias is not None:
                step = scales[name].input_scale * torch.tensor(record.scales, dtype=torch.float32)
                step = step.expand(bias.shape[0]).contiguous()
                bias.copy_(quantize_bias(bias, step).float() * step)

    def record_dicts(self) -> list[dict[str, Any]]:
        """The records as dicts, each int8 layer's ``ActivationScales`` keys added."""
        scales = self.activation_scales()
        result = []
        for record in self._records:
            found = scales.get(record.fqn.removesuffix(".weight"))
            result.append({**record.to_dict(), **(found.to_dict() if found is not None else {})})
        return result

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["activation_scales"] = {name: scales.to_dict() for name, scales in self.activation_scales().items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        saved = {name: ActivationScales.from_dict(data) for name, data in (state.get("activation_scales") or {}).items()}
        if saved and self._model is not None:
            self._set_scales(self._model, saved)


def _positive_scales(record: QuantRecord) -> QuantRecord:
    """A channel whose weights are all zero has scale 0; give it the layer's smallest positive scale
    (its codes stay 0, the weight is unchanged) so ``s_in * s_w`` can scale its bias."""
    positive = [value for value in record.scales if value > 0.0]
    if len(positive) == len(record.scales):
        return record
    fill = min(positive) if positive else 1.0
    return dataclasses.replace(record, scales=tuple(value if value > 0.0 else fill for value in record.scales))
