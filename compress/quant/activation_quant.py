"""Per-tensor activation fake quantization around the int8 layers, and the scales it uses.

An int8 layer ``L`` computes (Jacob et al., CVPR 2018, sec. 2.2-2.4, zero points 0)::

    x_hat = fq(x, s_in)                       the input, on the int8 grid of step s_in
    y     = L(x_hat; w_hat, b_hat)            w_hat = s_w[c] q_w  (int8),  b_hat = s_in s_w[c] q_b  (int32)
    y_hat = fq(y, s_out)                      the output, on the int8 grid of step s_out (optional)

with ``fq`` of ``compress.quant.fake_quant``. The two ``fq`` are a forward pre-hook and a forward hook on
the module, so the model's ``state_dict`` is unchanged and the plain module is rebuilt from its weights;
the scales travel as data (``ActivationScales.to_dict``), in the int8 weight's record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from compress.quant.fake_quant import fake_quantize

INPUT_SCALE_KEY, OUTPUT_SCALE_KEY = "input_scale", "output_scale"


@dataclass(frozen=True)
class ActivationScales:
    """Scales of one int8 layer's activations: ``input_scale`` (> 0) and ``output_scale`` (> 0, or ``None``
    when the output stays float)."""

    input_scale: float
    output_scale: float | None = None

    def __post_init__(self) -> None:
        if not self.input_scale > 0.0:
            raise ValueError(f"input_scale must be > 0, got {self.input_scale!r}")
        if self.output_scale is not None and not self.output_scale > 0.0:
            raise ValueError(f"output_scale must be > 0 or None, got {self.output_scale!r}")

    def to_dict(self) -> dict[str, Any]:
        return {INPUT_SCALE_KEY: float(self.input_scale),
                OUTPUT_SCALE_KEY: None if self.output_scale is None else float(self.output_scale)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ActivationScales | None":
        """The scales stored in ``data`` (a record dict), or ``None`` when it holds none."""
        if data.get(INPUT_SCALE_KEY) is None:
            return None
        output = data.get(OUTPUT_SCALE_KEY)
        return cls(float(data[INPUT_SCALE_KEY]), None if output is None else float(output))


class ActivationFakeQuant:
    """The hooks that fake-quantize the activations of a set of layers.

    Args:
        scales: ``{module name: ActivationScales}``.
    """

    def __init__(self, scales: dict[str, ActivationScales]) -> None:
        self.scales = dict(scales)
        self._handles: list[Any] = []

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def attach(self, model: nn.Module) -> "ActivationFakeQuant":
        """Register the hooks on ``model`` (once); returns ``self``.

        Raises:
            ValueError: when attached already or a name is not a module of ``model``.
        """
        if self._handles:
            raise ValueError("activation fake quantization is attached already")
        for name, scales in self.scales.items():
            module = model.get_submodule(name)
            self._handles.append(module.register_forward_pre_hook(_input_hook(scales.input_scale)))
            if scales.output_scale is not None:
                self._handles.append(module.register_forward_hook(_output_hook(scales.output_scale)))
        return self

    def remove(self) -> None:
        """Remove the hooks (the model computes in float again)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


def _input_hook(scale: float):
    def hook(_module, args):
        return (fake_quantize(args[0], scale), *args[1:])

    return hook


def _output_hook(scale: float):
    def hook(_module, _args, output):
        return fake_quantize(output, scale)

    return hook


def attach_activation_quant(model: nn.Module, records: list[dict[str, Any]]) -> ActivationFakeQuant:
    """Fake-quantize the activations named by weight records (dicts with ``fqn`` = ``<module>.weight``
    and the ``ActivationScales`` keys), as the int8 method left them; records without scales are skipped."""
    scales = {}
    for record in records:
        found = ActivationScales.from_dict(record)
        if found is not None:
            scales[str(record["fqn"]).removesuffix(".weight")] = found
    return ActivationFakeQuant(scales).attach(model)
