"""Relax pass: the int8 chains of a QDQ graph become int8 kernels (u8 x s8 -> s32, float epilogue).

Each chain :mod:`deploy.tvm.int8_qdq_chains` finds becomes::

    xq = call_tir(quantize_pack, x)           QuantizeLinear + zero padding + phase planes, byte quads
    y  = call_tir(int8_conv | int8_qdq_linear, xq, weight quads, offsets, indptr, init, scale, bias[, residual])

with the chain's requantize / ReLU / clip / residual steps in the kernel's epilogue
(:mod:`deploy.tvm.kernels.int8_conv`, :mod:`deploy.tvm.kernels.int8_qdq_linear`): the int8
codes are the model's own, so the outputs are onnxruntime's up to float rounding in the epilogue
(which can move a value by one quantization step where it lands on a rounding tie). Zero blocks of
``R`` output channels by four input channels are skipped. On a build machine with AVX-512 VNNI the
dot product is ``vpdpbusd``; other targets get the portable form of the same sum.
"""

from __future__ import annotations

import numpy as np

from deploy.tvm.fusion import add_kernel, rewrite_relax_functions
from deploy.tvm.int8_qdq_chains import Int8Chain, QdqTail, find_int8_chains, find_qdq_tails
from deploy.tvm.int8_weights import compensation, pack_conv_quads, pack_linear_quads
from deploy.tvm.kernels.conv_geometry import ConvGeometry
from deploy.tvm.kernels.int8_conv import LANES, Int8ConvShape, int8_conv_func
from deploy.tvm.kernels.int8_dot import host_dot_flavour
from deploy.tvm.kernels.int8_pack import packed_size, quantize_pack_func
from deploy.tvm.kernels.int8_qdq_linear import ROWS, int8_qdq_linear_func
from deploy.tvm.kernels.qdq_steps import qdq_steps_func
from deploy.tvm.kernels.tiled_conv import flat_pixels
from deploy.tvm.layer_report import KernelChoice

PARALLEL_MIN_MACS = 4_000_000  # int8 multiply-adds run 2-3x faster than float: the float pass's 1M, scaled
LINEAR_UNROLL = 4
CONV_TILES = ((8, 3), (16, 2), (16, 1), (8, 2), (8, 1), (4, 1))  # (R, P), fastest first where they fit


def fuse_qdq_layers(mod, *, vector_floats: int):
    """Rewrite every int8 QDQ chain of ``mod``.

    Returns:
        ``(new_module, [(position, name, op, weight_shape, batch, KernelChoice, payload_bytes), ...])``.
    """
    from tvm import relax

    records: list = []
    rewriter = _make_rewriter(mod, host_dot_flavour(vector_floats), records)
    mod = rewrite_relax_functions(mod, rewriter)
    return (relax.transform.DeadCodeElimination()(mod) if records else mod), records


def conv_tile(geometry: ConvGeometry) -> tuple[int, int] | None:
    """The first ``(R, P)`` of ``CONV_TILES`` with ``R`` at most the channels rounded up to 4 and
    ``P * 16`` flat pixels in the image (measured on Zen 5, 16->16 3x3 at 32x32: 8x3 325, 16x2 266,
    16x1 294 GMAC/s); ``None`` when the image has fewer than 16 flat pixels."""
    channels = -(-geometry.out_channels // 4) * 4
    total = flat_pixels(geometry)
    return next(((r, p) for r, p in CONV_TILES if r <= max(channels, 4) and p * LANES <= total), None)


def _takes(chain: Int8Chain) -> bool:
    """Convolutions with at least 16 flat output pixels and 2-D matmuls. A one-channel input fills a
    quarter of every quad (LeNet-5's 1x28x28 stem: 6 us in int8, 4 us in float), but leaving it to
    the float kernels keeps its QuantizeLinear / DequantizeLinear copies: the whole model went from
    0.019 to 0.022 ms, so it stays int8."""
    if not chain.is_conv:
        return len(chain.op.args[0].ty.shape) == 2
    return conv_tile(_geometry(chain.op)) is not None


def _geometry(conv) -> ConvGeometry:
    attrs, weight = conv.attrs, conv.args[1].value
    batch, channels, height, width = (int(v) for v in conv.args[0].ty.shape)
    return ConvGeometry(batch=batch, channels=channels, height=height, width=width, out_channels=int(weight.shape[0]),
                        kernel_h=int(weight.shape[2]), kernel_w=int(weight.shape[3]),
                        stride=tuple(int(v) for v in attrs.strides), padding=tuple(int(v) for v in attrs.padding),
                        dilation=tuple(int(v) for v in attrs.dilation))


def _padded(vector: np.ndarray, length: int, dtype=np.float32) -> np.ndarray:
    out = np.zeros(length, dtype)
    out[: vector.shape[0]] = vector
    return out


def _make_rewriter(mod, flavour: str, records: list):
    from tvm import relax
    from tvm.relax.expr_functor import PyExprMutator, mutator

    @mutator
    class Int8Rewriter(PyExprMutator):
        """Replaces each chain's end binding by its int8 kernel call; aliases read the same result."""

        def __init__(self, module):
            super().__init__(module)
            self.chains: dict = {}
            self.skipped: set = set()
            self.alias_of: dict = {}
            self.tails: dict = {}
            self.tails_done: list = []

        def plan(self, func) -> None:
            self.chains = {end: chain for end, chain in find_int8_chains(func).items() if _takes(chain)}
            self.tails = find_qdq_tails(func, self.chains)
            runs = [*self.chains.values(), *self.tails.values()]
            self.skipped = {var for run in runs for var in run.absorbed}
            self.alias_of = {alias: run.end_var for run in runs for alias in run.aliases}

        def visit_var_binding_(self, binding):
            var = binding.var
            if var in self.skipped:
                return
            if var in self.alias_of:
                self.set_var_remap(var, self.visit_expr(self.alias_of[var]))
                return
            chain = self.chains.get(var)
            if chain is None and var not in self.tails:
                super().visit_var_binding_(binding)
                return
            if chain is None:
                call = self._tail(self.tails[var])
            else:
                call = self._conv(chain) if chain.is_conv else self._linear(chain)
            emit = self.builder_.emit if isinstance(var, relax.DataflowVar) else self.builder_.emit_output
            self.set_var_remap(var, emit(call, name_hint=var.name))

        def _tail(self, tail: QdqTail):
            start = self.visit_expr(tail.start)
            shape = tuple(int(v) for v in tail.start.ty.shape)
            func = qdq_steps_func(shape=shape, steps=tuple(tail.steps))
            name = f"qdq_steps_{len(self.tails_done)}"
            self.tails_done.append(name)
            return relax.call_tir(add_kernel(self.builder_, func, name), [start], relax.TensorType(shape, "float32"))

        def _pack(self, chain: Int8Chain, geometry: ConvGeometry, source, name: str):
            func = quantize_pack_func(geometry=geometry, scale=chain.input_scale, zero_point=chain.input_zero_point)
            out = relax.TensorType((geometry.batch, packed_size(geometry)), "int32")
            return self.builder_.emit(relax.call_tir(add_kernel(self.builder_, func, f"quantize_pack_{name}"), [source], out))

        def _epilogue_arrays(self, chain: Int8Chain, length: int):
            codes = chain.weight.codes
            bias = chain.bias if chain.bias is not None else np.zeros(codes.shape[0], np.float32)
            return (compensation(codes, zero_point=chain.input_zero_point, length=length),
                    _padded((chain.input_scale * chain.weight.scale).astype(np.float32), length), _padded(bias, length))

        def _conv(self, chain: Int8Chain):
            geometry = _geometry(chain.op)
            rows, vectors = conv_tile(geometry)
            codes = chain.weight.codes
            blocks = pack_conv_quads(codes, geometry=geometry, block_rows=rows)
            name = f"qdq_conv2d_{len(records)}"
            macs = geometry.macs * (1.0 - blocks.zero_block_ratio)
            func = int8_conv_func(geometry=geometry, shape=Int8ConvShape(rows, vectors, blocks.nnz_blocks), steps=tuple(chain.steps),
                                  residual=chain.residual is not None, flavour=flavour, parallel=macs >= PARALLEL_MIN_MACS)
            xq = self._pack(chain, geometry, self.visit_expr(chain.source), name)
            length = -(-geometry.out_channels // rows) * rows
            residual = self.visit_expr(chain.residual) if chain.residual is not None else relax.const(np.zeros((1, 1, 1, 1), np.float32))
            arrays = (blocks.data, blocks.positions, blocks.indptr, *self._epilogue_arrays(chain, length))
            choice = KernelChoice("int8-conv", rows, blocks.zero_block_ratio,
                                  f"int8 direct convolution ({flavour} u8 x s8 dot), {rows} channels x {vectors * LANES} flat pixels per "
                                  f"tile, {blocks.zero_block_ratio:.1%} of the {rows}x4 weight blocks zero and skipped; {chain.describe()}")
            records.append((chain.position, name, "conv2d", tuple(int(v) for v in codes.shape), geometry.batch, choice,
                            blocks.payload_bytes + 8 * length))
            out = relax.TensorType((geometry.batch, geometry.out_channels, geometry.out_height, geometry.out_width), "float32")
            return relax.call_tir(add_kernel(self.builder_, func, name), [xq, *(relax.const(a) for a in arrays), residual], out)

        def _linear(self, chain: Int8Chain):
            batch, in_features = (int(v) for v in chain.op.args[0].ty.shape)
            codes = chain.weight.codes
            geometry = ConvGeometry(batch=batch, channels=in_features, height=1, width=1, out_channels=codes.shape[0],
                                    kernel_h=1, kernel_w=1, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1))
            blocks = pack_linear_quads(codes, block_rows=ROWS, unroll=LINEAR_UNROLL)
            name = f"qdq_matmul_{len(records)}"
            source = self.builder_.emit(relax.op.reshape(self.visit_expr(chain.source), (batch, in_features, 1, 1)))
            xq = self._pack(chain, geometry, source, name)
            length = -(-codes.shape[0] // ROWS) * ROWS
            func = int8_qdq_linear_func(batch=batch, in_quads=packed_size(geometry), out_features=codes.shape[0],
                                        nnz_blocks=blocks.nnz_blocks, steps=tuple(chain.steps), flavour=flavour, unroll=LINEAR_UNROLL,
                                        parallel=batch * blocks.nnz_blocks * ROWS * 4 >= PARALLEL_MIN_MACS)
            arrays = (blocks.data, blocks.positions, blocks.indptr, *self._epilogue_arrays(chain, length))
            choice = KernelChoice("int8-linear", ROWS, blocks.zero_block_ratio,
                                  f"int8 linear ({flavour} u8 x s8 dot), {blocks.zero_block_ratio:.1%} of the {ROWS}x4 weight blocks "
                                  f"zero and skipped; {chain.describe()}")
            records.append((chain.position, name, "matmul", tuple(int(v) for v in codes.shape), batch, choice,
                            blocks.payload_bytes + 8 * length))
            out = relax.TensorType((batch, codes.shape[0]), "float32")
            return relax.call_tir(add_kernel(self.builder_, func, name), [xq, *(relax.const(a) for a in arrays)], out)

    return Int8Rewriter(mod)
