"""Goal-driven search: per-layer sensitivity sweeps and the allocation of per-layer sparsity to goals."""

from compress.search.allocation import Allocation, LayerCurve, greedy_allocation
from compress.search.sensitivity import block_magnitude_prune, layer_sensitivity

__all__ = ["Allocation", "LayerCurve", "block_magnitude_prune", "greedy_allocation", "layer_sensitivity"]
