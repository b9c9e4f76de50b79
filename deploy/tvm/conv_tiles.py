"""Pick the register tile of the flat-pixel convolution (:mod:`deploy.tvm.kernels.tiled_conv`) per layer.

Candidates are ``R`` output channels (one ``R x 1`` weight block row) by ``P`` vectors of ``V``
pixels, ``R * P`` accumulators within the target's register budget. The estimated time is::

    cost = nonzero R x 1 blocks(R) * tiles(P * V) * (max(R * P, R + 2 * P * miss) + STEP_OVERHEAD)

in cycles of one tile step: ``R * P`` FMAs at two per cycle against ``R`` weight broadcasts plus ``P``
input vectors at two loads per cycle, where an input vector of a sparse weight (taps far apart)
costs ``miss = 2`` loads' worth (it mostly comes from L2), a dense one 1. ``tiles`` counts the
recomputed pixels of the last tile. Calibrated against single-layer timings on the AMD EPYC (Zen 5,
AVX-512) build machine (3x3 layers at widths 7-56, dense, 90% 16x1 and 92% unstructured): the tile
it picks measured within about 15% of the fastest tile tried on each of those layers. A dense
weight is the case where no block is zero: its tile is the register-blocked dense kernel (8 x 3 x 16
ran at 0.9x of onnxruntime's MLAS on a 128-channel 3x3 layer at 28x28), so the choice between a
"sparse" and a "dense" kernel is this one comparison of tiles over the same zero pattern; it is
predicted, not timed at compile time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deploy.tvm.kernels.conv_geometry import ConvGeometry
from deploy.tvm.kernels.tiled_conv import PixelTile, flat_pixels
from deploy.tvm.row_blocks import nonzero_blocks

BLOCK_HEIGHTS = (16, 8, 4, 2, 1)
STEP_OVERHEAD = 4  # cycles per tile step besides the FMAs: the offset load, loop control
STACK_BYTES = 1024  # TVM moves a constant buffer of this size or more off the stack (kMaxStackAlloca)


@dataclass(frozen=True)
class TileChoice:
    """The chosen tile, its estimated cost (cycles) and the runner-up, for the layer report."""

    tile: PixelTile
    cost: float
    runner_up: PixelTile | None
    runner_up_cost: float

    def describe(self) -> str:
        text = f"{_name(self.tile)} tile (model {self.cost / 1e3:.0f}k cycles"
        if self.runner_up is not None:
            text += f"; next best {_name(self.runner_up)} {self.runner_up_cost / 1e3:.0f}k"
        return text + ")"


def accumulator_vectors(vector_floats: int) -> int:
    """Accumulator vectors of ``vector_floats`` lanes a tile may hold: 24 of AVX-512's 32 zmm
    registers, 12 of AVX2's 16 ymm, 12 two-register vectors of NEON's 32 q registers."""
    return 24 if vector_floats >= 16 else 12


def choose_conv_tile(weight: np.ndarray, *, geometry: ConvGeometry, vector_floats: int) -> TileChoice | None:
    """The cheapest tile for ``weight`` (OIHW) on ``geometry``, or ``None`` when the image has fewer
    flat pixels than one vector (the row kernel then serves)."""
    lanes = _lanes(geometry, vector_floats)
    if lanes is None:
        return None
    flat = weight.reshape(weight.shape[0], -1)
    sparse = bool((flat == 0).any())
    budget = accumulator_vectors(vector_floats)
    costs: dict[PixelTile, float] = {}
    for rows in BLOCK_HEIGHTS:
        if rows >= 2 * weight.shape[0] and rows > 1:
            continue
        blocks = nonzero_blocks(flat, rows)
        for vectors in range(1, budget // rows + 1):
            tile = PixelTile(rows, vectors, lanes)
            if tile.pixels > flat_pixels(geometry) or (rows - rows // 2) * vectors * lanes * 4 >= STACK_BYTES:
                continue
            costs[tile] = tile_cost(tile, blocks=max(blocks, 1), geometry=geometry, sparse=sparse)
    ranked = sorted(costs, key=lambda t: (costs[t], -t.block_rows))
    best = ranked[0]
    runner = ranked[1] if len(ranked) > 1 else None
    return TileChoice(best, costs[best], runner, costs[runner] if runner else 0.0)


def tile_cost(tile: PixelTile, *, blocks: int, geometry: ConvGeometry, sparse: bool) -> float:
    """Estimated cycles of the layer with ``tile`` and ``blocks`` stored ``R x 1`` blocks (module doc)."""
    miss = 2 if sparse else 1
    tiles = -(-flat_pixels(geometry) // tile.pixels) * geometry.batch
    step = max(tile.block_rows * tile.vectors, tile.block_rows + 2 * tile.vectors * miss) + STEP_OVERHEAD
    return float(blocks * tiles * step)


def _lanes(geometry: ConvGeometry, vector_floats: int) -> int | None:
    total = flat_pixels(geometry)
    return next((v for v in (16, 8, 4) if v <= vector_floats and v <= total), None)


def _name(tile: PixelTile) -> str:
    return f"{tile.block_rows}x{tile.vectors}x{tile.lanes}"
