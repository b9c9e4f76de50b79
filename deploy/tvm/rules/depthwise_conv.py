"""Depthwise convolutions (``groups == channels == out_channels``): the flat-pixel kernel on the
unpadded input where masked loads exist (AVX-512), else the phase planes and the row kernel
(:mod:`deploy.tvm.kernels.flat_depthwise`, :mod:`deploy.tvm.kernels.direct_conv`)."""

from __future__ import annotations

import numpy as np
from tvm import relax

from deploy.tvm.fusion_chains import Chain
from deploy.tvm.fusion_rule import (CONV2D, PARALLEL_MIN_MACS, ConvSite, FusionRule, conv_call, conv_operands, conv_site,
                                    emit_phase_planes, sparsity)
from deploy.tvm.kernels.direct_conv import depthwise_conv_func
from deploy.tvm.kernels.flat_depthwise import flat_depthwise_fits, flat_depthwise_func
from deploy.tvm.layer_report import KernelChoice

FLAT_DEPTHWISE_VECTORS = (4, 3, 2, 1)  # pixel vectors per depthwise tile, the most that fit the image
FLAT_DEPTHWISE_MIN_LANES = 16  # masked loads need mask registers (AVX-512); NEON / AVX2 keep the pad copy


def encode(chain: Chain, vector_floats: int) -> ConvSite | None:
    return conv_site(chain, vector_floats) if int(chain.op.attrs.groups) > 1 else None


def build(ctx, chain: Chain, site: ConvSite):
    """The flat-pixel kernel on the unpadded input where it fits (AVX-512), else pad + the row kernel."""
    geometry, weight, vector, lanes = site.geometry, site.weight, site.vector, ctx.vector_floats
    name = f"conv2d_{len(ctx.reports)}"
    x, residual = conv_operands(ctx, chain)
    parallel = geometry.macs // geometry.channels >= PARALLEL_MIN_MACS
    weights = relax.const(np.ascontiguousarray(weight.reshape(-1)))
    vectors = next((p for p in FLAT_DEPTHWISE_VECTORS if flat_depthwise_fits(geometry, lanes=lanes, vectors=p)), 0)
    if lanes >= FLAT_DEPTHWISE_MIN_LANES and vectors:
        func = flat_depthwise_func(geometry=geometry, lanes=lanes, vectors=vectors, epilogue=chain.epilogue(), parallel=parallel)
        how = f"depthwise convolution over flat pixels, {vectors} x {lanes} per tile, padding masked (no pad copy)"
        choice = KernelChoice("depthwise-conv", 1, sparsity(weight), f"{how}; {chain.describe()}")
        return conv_call(ctx, site, func, name, [x, weights, relax.const(site.bias), residual], choice)
    func = depthwise_conv_func(geometry=geometry, vector=vector, epilogue=chain.epilogue(), parallel=parallel)
    operands = [emit_phase_planes(ctx.builder_, x, geometry, name), weights, relax.const(site.bias), residual]
    choice = KernelChoice("depthwise-conv", 1, sparsity(weight),
                          f"depthwise direct convolution, {vector} pixels per vector; {chain.describe()}")
    return conv_call(ctx, site, func, name, operands, choice)


RULE = FusionRule("depthwise-conv", CONV2D, encode, build)
