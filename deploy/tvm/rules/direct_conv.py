"""Convolutions with ``groups == 1``: the flat-pixel tiled kernel with the tile the cost model
(:mod:`deploy.tvm.conv_tiles`) estimates fastest for the weight's zero pattern, else the row kernel;
zero ``R x 1`` tap blocks are skipped (:mod:`deploy.tvm.conv_weights`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tvm import relax

from deploy.tvm.conv_tiles import choose_conv_tile
from deploy.tvm.conv_weights import encode_conv_taps
from deploy.tvm.fusion_chains import Chain
from deploy.tvm.fusion_rule import (CONV2D, PARALLEL_MIN_MACS, ConvSite, FusionRule, conv_call, conv_operands, conv_site,
                                    emit_phase_planes)
from deploy.tvm.kernels.direct_conv import ConvTile, direct_conv_func
from deploy.tvm.kernels.tiled_conv import tiled_conv_func
from deploy.tvm.layer_report import KernelChoice


@dataclass(frozen=True)
class ConvTaps:
    """A groups = 1 convolution's ``R x 1`` tap blocks and the tile the cost model picked (or ``None``:
    the row kernel)."""

    site: ConvSite
    picked: Any
    taps: Any


def encode(chain: Chain, vector_floats: int) -> ConvTaps | None:
    if int(chain.op.attrs.groups) != 1:
        return None
    site = conv_site(chain, vector_floats)
    picked = choose_conv_tile(site.weight, geometry=site.geometry, vector_floats=vector_floats)
    lanes = picked.tile.lanes if picked is not None else site.vector
    rows = picked.tile.block_rows if picked is not None else None
    taps = encode_conv_taps(site.weight, geometry=site.geometry, vector=lanes, vector_floats=vector_floats, rows=rows)
    return ConvTaps(site, picked, taps)


def build(ctx, chain: Chain, weights: ConvTaps):
    """groups = 1: the flat-pixel tiled kernel with the cost model's tile, else the row kernel."""
    site, picked, taps = weights.site, weights.picked, weights.taps
    geometry, vector = site.geometry, site.vector
    name = f"conv2d_{len(ctx.reports)}"
    x, residual = conv_operands(ctx, chain)
    xq = emit_phase_planes(ctx.builder_, x, geometry, name)
    parallel = geometry.macs * (1.0 - taps.zero_block_ratio) >= PARALLEL_MIN_MACS
    skipped = f"{taps.zero_block_ratio:.1%} of the {taps.block_rows}x1 tap blocks zero and skipped"
    if picked is not None:
        func = tiled_conv_func(geometry=geometry, tile=picked.tile, nnz_blocks=taps.nnz_blocks,
                               epilogue=chain.epilogue(), parallel=parallel)
        how = (f"direct convolution over flat pixel tiles, {skipped}; channels x vectors x lanes "
               f"{picked.describe()}; {chain.describe()}")
    else:
        func = direct_conv_func(geometry=geometry, tile=ConvTile(taps.block_rows, vector), nnz_blocks=taps.nnz_blocks,
                                epilogue=chain.epilogue(), parallel=parallel)
        how = f"direct convolution by rows, {vector} pixels per vector, {skipped}; {chain.describe()}"
    operands = [xq, relax.const(taps.data), relax.const(taps.offsets), relax.const(taps.indptr), relax.const(site.bias), residual]
    return conv_call(ctx, site, func, name, operands, KernelChoice("direct-conv", taps.block_rows, taps.zero_block_ratio, how))


RULE = FusionRule("direct-conv", CONV2D, encode, build)
