"""Gradual pruning schedules as pure ``step -> sparsity`` functions."""

from __future__ import annotations


def agp_sparsity(
    step: int, *, initial_ratio: float, final_ratio: float, start_step: int, num_updates: int, update_every: int
) -> float:
    """Automated gradual pruning (Zhu & Gupta, "To prune, or not to prune", arXiv 1710.01878, 2017).

    ``s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt))**3`` for ``t0 <= t <= t0 + n*dt``; the
    sparsity only changes on pruning steps ``t0 + k*dt`` (it is held between them), is ``s_i``
    before ``t0`` and ``s_f`` after ``t0 + n*dt``.

    Args:
        step: training step ``t``.
        initial_ratio: ``s_i`` in [0, 1).
        final_ratio: ``s_f`` in [0, 1).
        start_step: ``t0``.
        num_updates: ``n`` >= 1, the number of pruning steps.
        update_every: ``dt`` >= 1, steps between pruning steps.
    """
    for label, ratio in (("initial_ratio", initial_ratio), ("final_ratio", final_ratio)):
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"{label} must be in [0, 1), got {ratio}")
    if num_updates < 1 or update_every < 1:
        raise ValueError(f"num_updates and update_every must be >= 1, got {num_updates} and {update_every}")
    if step < start_step:
        return initial_ratio
    span = num_updates * update_every
    held = min(((step - start_step) // update_every) * update_every, span)
    return final_ratio + (initial_ratio - final_ratio) * (1.0 - held / span) ** 3
