"""xRDA: adaptively weighted (log-penalty) L1 with generalized regularized dual averaging.

Siegel, Chen, Zhang, Xu, "Training sparse neural networks using compressed sensing", arXiv 2008.09661.
Objective ``E[l(w)] + wd/2 ||w||^2 + lambda sum_i log(eps + |w_i|)``, realised as a reweighted
L1. Per iteration t, with step ``s_t`` (cosine decay lr -> 0), averaging ``a_t`` (cosine ramp 0 -> 1)::

    g      = grad l(w) + wd w
    r      = e^{-s/tau_b} r + (1 - e^{-s/tau_b}) A(w)      A = |w| | kernel- | channel- | block-mean
    c      = M / (1 + (M - 1) r / max(r))  (* sqrt(group size) in the group modes)
    B      = a B + s c
    p      = a p + (1 - a) w
    v      = e^{-s/tau} v + (1 - e^{-s/tau}) g
    p      = p - s v
    w      = S_{lambda B}(p)       (penalised weights; other parameters: w = p)

``a_t = 0`` is prox-SGD with momentum, ``a_t = 1`` is RDA. Works from random init or a pretrained model.

Block mode (ours, for the block-sparse kernels): the groups are ``block_rows`` consecutive output rows
at one input position (``W[o:o+b, i, kh, kw]``), the 16x1 blocks the compiled kernels skip.

Default strength from the step budget (ours): the accumulated threshold ``lambda * B`` grows about
linearly with the number of steps ``T``, so a fixed ``lambda`` means nothing across 400 or 400,000
steps. Unless ``lam`` is given, ``lambda = lam_steps / T`` (``lam_steps = 0.01``: on LeNet-5 / MNIST,
400 steps of a trained model gave about 96% sparsity at unchanged accuracy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from compress.optim.method import (
    LAYER_KINDS,
    Hyperparameters,
    TrainingMethod,
    clone_tensors,
    load_steps,
    load_tensors,
)
from compress.regularizers import L1
from compress.regularizers.schedules import Constant, CosineDecay, CosineRamp
from compress.selection import ParamSelector

XRDA_MODES = ("normal", "kernel", "channel", "block")
XRDA_SCHEDULES = ("cosine", "constant")


class _DelegatingOptimizer(torch.optim.Optimizer):
    """An optimizer whose ``step`` runs the owning method's update (the state lives in the method)."""

    def __init__(self, params, update: Callable[[], None]) -> None:
        super().__init__(params, {})
        self._update = update

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D401 - torch API
        loss = None if closure is None else closure()
        self._update()
        return loss


def group_average(weight: torch.Tensor, *, mode: str, block_rows: int = 16) -> tuple[torch.Tensor, float]:
    """``A(w)`` broadcast to ``w``'s shape, and the sqrt(group size) factor of the weights ``c``."""
    magnitude = weight.abs()
    if mode == "normal" or (mode == "kernel" and weight.dim() < 3):
        return magnitude, 1.0
    if mode == "block":
        return _block_mean(magnitude, block_rows), math.sqrt(block_rows)
    dims = tuple(range(2, weight.dim())) if mode == "kernel" else tuple(range(1, weight.dim()))
    size = math.prod(weight.shape[d] for d in dims)
    return magnitude.mean(dim=dims, keepdim=True).expand_as(weight), math.sqrt(size)


def _block_mean(magnitude: torch.Tensor, rows: int) -> torch.Tensor:
    """Mean of ``|w|`` over each block of ``rows`` consecutive output rows at one input position
    (the last block may be shorter), broadcast back to ``magnitude``'s shape."""
    flat = magnitude.reshape(magnitude.shape[0], -1)
    blocks = -(-flat.shape[0] // rows)
    padded = torch.nn.functional.pad(flat, (0, 0, 0, blocks * rows - flat.shape[0]))
    counts = torch.full((blocks, 1), float(rows), dtype=flat.dtype, device=flat.device)
    counts[-1] = flat.shape[0] - (blocks - 1) * rows
    means = padded.reshape(blocks, rows, -1).sum(dim=1) / counts
    return means.repeat_interleave(rows, dim=0)[: flat.shape[0]].reshape(magnitude.shape)


@dataclass(frozen=True)
class XRDAHyperparameters(Hyperparameters):
    """Attributes:
        lr: the initial step ``s`` (the reference's ``s0``, 1.0: with ``tau = 9.5`` it equals SGD lr 0.1
            with momentum 0.9, because the update applies ``(1 - e^{-s/tau}) g``).
        momentum: not used (``tau`` sets the momentum).
        weight_decay: ``wd`` added to every gradient (5e-4 in the reference).
        lam: ``lambda`` (1e-6 in the reference's 200,000-step CIFAR runs); ``None``: ``lam_steps / T``.
        lam_steps: ``lambda * T`` when ``lam`` is not given.
        tau: momentum time-scale.
        tau_b: time-scale of the running average ``r`` of ``A(w)``.
        max_factor: ``M``, the largest adaptive weight (500).
        mode: ``"normal"``, ``"kernel"``, ``"channel"`` or ``"block"``.
        block_rows: rows of a block in ``"block"`` mode (16: the compiled kernels' block height).
        schedule: ``"cosine"`` (``s`` decays, ``a`` ramps over the run's steps) or ``"constant"`` (``a = 0``).
        layers: penalised weights: ``"all"``, ``"conv"`` or ``"linear"``.
    """

    lr: float = 1.0
    weight_decay: float = 5e-4
    lam: float | None = None
    lam_steps: float = 0.01
    block_rows: int = 16
    tau: float = 9.5
    tau_b: float = 9.5
    max_factor: float = 500.0
    mode: str = field(default="normal", metadata={"choices": XRDA_MODES})
    schedule: str = field(default="cosine", metadata={"choices": XRDA_SCHEDULES})
    layers: str = field(default="all", metadata={"choices": LAYER_KINDS})

    def __post_init__(self) -> None:
        super().__post_init__()
        lam = self.lam_steps if self.lam is None else self.lam
        if not (lam >= 0 and self.tau > 0 and self.tau_b > 0 and self.max_factor >= 1 and self.block_rows >= 1):
            raise ValueError(
                f"need lam, lam_steps >= 0, tau, tau_b > 0, max_factor >= 1, block_rows >= 1; got "
                f"{lam}, {self.tau}, {self.tau_b}, {self.max_factor}, {self.block_rows}"
            )


class XRDA(TrainingMethod):
    """Generalized RDA with adaptive log-weighted L1 (Siegel et al., 2020); xRDA is its own optimizer."""

    name = "xrda"
    Hyperparameters = XRDAHyperparameters

    def __init__(self, hp: XRDAHyperparameters | None = None) -> None:
        super().__init__(hp)
        self.layers = ParamSelector(kinds=self.hp.layers)
        self.lam = self.hp.lam
        self.steps = 0
        self.state: dict[str, dict[str, torch.Tensor]] = {"p": {}, "v": {}, "r": {}, "b": {}}
        self._params: list[tuple[str, nn.Parameter, bool]] = []

    def prepare(self, model: nn.Module, *, total_steps: int) -> None:
        super().prepare(model, total_steps=total_steps)
        self.lam = self.hp.lam_steps / self.total_steps if self.hp.lam is None else self.hp.lam
        self.l1 = L1(strength=self.lam, layers=self.layers)
        penalised = {fqn for fqn, _ in self.layers.weights(model)}
        self._params = [(fqn, p, fqn in penalised) for fqn, p in model.named_parameters() if p.requires_grad]

    def build_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        """Not ``make_optimizer``: the xRDA update below is the optimizer (its state lives here)."""
        self.optimizer = _DelegatingOptimizer([p for _, p, _ in self._params], self._step)
        return self.optimizer

    def _schedules(self) -> tuple[float, float]:
        if self.hp.schedule == "constant":
            return Constant(self.hp.lr)(self.steps), 0.0
        return CosineDecay(self.hp.lr, self.total_steps)(self.steps), CosineRamp(self.total_steps)(self.steps)

    @torch.no_grad()
    def _step(self) -> None:
        s, a = self._schedules()
        for fqn, param, penalised in self._params:
            if param.grad is not None:
                self._update_one(fqn, param, penalised, s=s, a=a)
        self.steps += 1

    def _update_one(self, fqn: str, param: nn.Parameter, penalised: bool, *, s: float, a: float) -> None:
        st = self.state
        if fqn not in st["p"]:
            st["p"][fqn], st["v"][fqn] = param.detach().clone(), torch.zeros_like(param)
            if penalised:
                st["r"][fqn], st["b"][fqn] = torch.zeros_like(param), torch.zeros_like(param)
        grad = param.grad + self.hp.weight_decay * param
        if penalised:
            average, scale = group_average(param, mode=self.hp.mode, block_rows=self.hp.block_rows)
            decay_b = math.exp(-s / self.hp.tau_b)
            st["r"][fqn] = decay_b * st["r"][fqn] + (1.0 - decay_b) * average
            st["b"][fqn] = a * st["b"][fqn] + s * self._weights(st["r"][fqn]) * scale
        decay = math.exp(-s / self.hp.tau)
        st["p"][fqn] = a * st["p"][fqn] + (1.0 - a) * param
        st["v"][fqn] = decay * st["v"][fqn] + (1.0 - decay) * grad
        st["p"][fqn] = st["p"][fqn] - s * st["v"][fqn]
        param.copy_(self.l1.prox(st["p"][fqn], self.lam * st["b"][fqn]) if penalised else st["p"][fqn])

    def _weights(self, running: torch.Tensor) -> torch.Tensor:
        """``c = M / (1 + (M - 1) r / max(r))`` in ``[1, M]`` (``M`` everywhere while ``r`` is all zero)."""
        top = running.max()
        if top <= 0:
            return torch.full_like(running, self.hp.max_factor)
        return self.hp.max_factor / (1.0 + (self.hp.max_factor - 1.0) * running / top)

    def state_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "total_steps": self.total_steps,
            **{key: clone_tensors(value) for key, value in self.state.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = load_steps(state)
        self.total_steps = int(state["total_steps"])
        self.state = {key: load_tensors(state, key) for key in ("p", "v", "r", "b")}
