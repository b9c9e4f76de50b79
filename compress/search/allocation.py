"""Allocation of per-layer sparsity to latency / size goals at the least predicted accuracy loss.

A platform-aware greedy over per-layer curves, after NetAdapt (Yang et al., "NetAdapt: Platform-Aware
Neural Network Adaptation for Mobile Applications", ECCV 2018): each layer ``l`` offers levels
``k = 0..K_l`` (ascending sparsity) with a measured kernel time ``t_l(k)``, a stored size ``b_l(k)``
and a predicted accuracy loss ``d_l(k)`` (one-shot sensitivity). The network's prediction is additive::

    T(k) = T_fixed + sum_l t_l(k_l)      B(k) = B_fixed + sum_l b_l(k_l)      D(k) = sum_l d_l(k_l)

Starting from every layer at level 0, each step moves one layer from ``k_l`` to any ``j > k_l`` and
takes the move with the best ratio of goal progress to added loss::

    score(l, j) = sum_g  max(0, min(R_g, r_g(l, j))) / R_g   /   (max(0, d_l(j) - d_l(k_l)) + eps)

where ``R_g`` is what goal ``g`` (latency or size) still lacks and ``r_g(l, j)`` what the move saves.
Jumping several levels at once (not only ``k_l + 1``) lets the search cross flat stretches of a
latency table (a kernel that only gets faster once a whole tile of blocks is empty), which NetAdapt's
"smallest reduction that meets this step's target" does implicitly. It stops when every goal holds,
or when no move saves anything (then the most reduced allocation is returned with ``meets=False``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

EPSILON = 1e-6


@dataclass(frozen=True)
class LayerCurve:
    """What one layer offers the search.

    Attributes:
        fqn: dotted name of the weight.
        sparsity: candidate sparsity ratios, ascending (level 0 first).
        loss: predicted accuracy loss (fraction, >= 0 in practice) at each level.
        latency_s: time of the compiled kernel at each level, seconds.
        size_bytes: stored weight bytes at each level.
    """

    fqn: str
    sparsity: tuple[float, ...]
    loss: tuple[float, ...]
    latency_s: tuple[float, ...]
    size_bytes: tuple[float, ...]

    def __post_init__(self) -> None:
        lengths = {len(self.sparsity), len(self.loss), len(self.latency_s), len(self.size_bytes)}
        if len(lengths) != 1 or not self.sparsity:
            raise ValueError(f"{self.fqn}: sparsity, loss, latency_s and size_bytes need one equal, non-zero length, got {sorted(lengths)}")
        if list(self.sparsity) != sorted(self.sparsity):
            raise ValueError(f"{self.fqn}: sparsity levels must ascend, got {list(self.sparsity)}")


@dataclass(frozen=True)
class Allocation:
    """A chosen level per layer and what the curves predict for it."""

    levels: dict[str, int]
    sparsity: dict[str, float]
    latency_s: float
    size_bytes: float
    loss: float
    meets: bool
    steps: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"levels": dict(self.levels), "sparsity": dict(self.sparsity), "latency_s": self.latency_s,
                "size_bytes": self.size_bytes, "loss": self.loss, "meets": self.meets, "steps": list(self.steps)}


def predict(curves: list[LayerCurve], levels: dict[str, int], *, fixed_latency_s: float = 0.0, fixed_size_bytes: float = 0.0) -> tuple[float, float, float]:
    """``(T, B, D)`` of the additive model for ``levels`` (see the module docstring)."""
    latency = fixed_latency_s + sum(c.latency_s[levels[c.fqn]] for c in curves)
    size = fixed_size_bytes + sum(c.size_bytes[levels[c.fqn]] for c in curves)
    loss = sum(max(0.0, c.loss[levels[c.fqn]]) for c in curves)
    return latency, size, loss


def greedy_allocation(
    curves: list[LayerCurve],
    *,
    max_latency_s: float | None = None,
    max_size_bytes: float | None = None,
    fixed_latency_s: float = 0.0,
    fixed_size_bytes: float = 0.0,
    start: dict[str, int] | None = None,
) -> Allocation:
    """Per-layer levels meeting ``max_latency_s`` / ``max_size_bytes`` at the least predicted loss.

    Args:
        curves: one curve per prunable layer.
        max_latency_s: latency goal for the whole network (None: no latency goal).
        max_size_bytes: size goal for the whole network (None: no size goal).
        fixed_latency_s: time outside the layers' kernels (pooling, reshapes, the call itself).
        fixed_size_bytes: bytes outside the layers' weights.
        start: levels to start from (default: level 0 everywhere); the search never lowers a level.

    Returns:
        The allocation; ``meets`` says whether the prediction meets every goal.
    """
    names = [c.fqn for c in curves]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate layer names in the curves: {names}")
    levels = {c.fqn: 0 for c in curves} | dict(start or {})
    steps: list[str] = []
    while True:
        latency, size, _ = predict(curves, levels, fixed_latency_s=fixed_latency_s, fixed_size_bytes=fixed_size_bytes)
        lacks = _lacks(latency, size, max_latency_s=max_latency_s, max_size_bytes=max_size_bytes)
        if not lacks:
            break
        move = _best_move(curves, levels, lacks)
        if move is None:
            break
        fqn, level = move
        steps.append(f"{fqn}: {curve_of(curves, fqn).sparsity[levels[fqn]]:.3f} -> {curve_of(curves, fqn).sparsity[level]:.3f}")
        levels[fqn] = level
    latency, size, loss = predict(curves, levels, fixed_latency_s=fixed_latency_s, fixed_size_bytes=fixed_size_bytes)
    meets = not _lacks(latency, size, max_latency_s=max_latency_s, max_size_bytes=max_size_bytes)
    sparsity = {c.fqn: c.sparsity[levels[c.fqn]] for c in curves}
    return Allocation(levels, sparsity, latency, size, loss, meets, steps)


def curve_of(curves: list[LayerCurve], fqn: str) -> LayerCurve:
    return next(c for c in curves if c.fqn == fqn)


def _lacks(latency: float, size: float, *, max_latency_s: float | None, max_size_bytes: float | None) -> dict[str, float]:
    """What each unmet goal still lacks (positive amounts), keyed ``latency`` / ``size``."""
    lacks = {}
    if max_latency_s is not None and latency > max_latency_s:
        lacks["latency"] = latency - max_latency_s
    if max_size_bytes is not None and size > max_size_bytes:
        lacks["size"] = size - max_size_bytes
    return lacks


def _best_move(curves: list[LayerCurve], levels: dict[str, int], lacks: dict[str, float]) -> tuple[str, int] | None:
    """The ``(fqn, level)`` with the best goal progress per unit of added loss, or None when nothing saves."""
    best, best_score = None, 0.0
    for curve in curves:
        now = levels[curve.fqn]
        for level in range(now + 1, len(curve.sparsity)):
            saved = {"latency": curve.latency_s[now] - curve.latency_s[level], "size": curve.size_bytes[now] - curve.size_bytes[level]}
            progress = sum(max(0.0, min(lack, saved[goal])) / lack for goal, lack in lacks.items())
            if progress <= 0:
                continue
            added = max(0.0, max(0.0, curve.loss[level]) - max(0.0, curve.loss[now]))
            score = progress / (added + EPSILON)
            if score > best_score:
                best, best_score = (curve.fqn, level), score
    return best
