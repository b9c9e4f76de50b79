"""Hand-written TIR kernels (TVMScript): direct convolution (by rows, by flat pixel tiles, depthwise;
dense and block-sparse alike) and a block-sparse linear layer, each with a fused epilogue.

Each module exposes factories that return a ``tvm.tirx.PrimFunc`` specialised for static shapes.
TVM is imported inside the factories only.

Accumulators are vector-typed buffers declared ``T.alloc_buffer(..., scope="global")``: with a
constant size TVM lowers that to a stack ``alloca`` that LLVM promotes to registers, whereas
``scope="local"`` became a ``TVMBackendAllocWorkspace`` call with the accumulator in memory
(measured on a 16->16 3x3 convolution: 20 GFLOP/s that way, 115 GFLOP/s in registers).
"""
