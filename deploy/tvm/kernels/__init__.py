"""Hand-written TIR kernels (TVMScript) for sparse and ternary weights.

Each module exposes one factory that returns a ``tvm.tirx.PrimFunc`` specialised for static shapes.
TVM is imported inside the factories only.

Accumulators are declared ``T.alloc_buffer(..., scope="global")`` inside the parallel loop: with a
constant size TVM lowers that to a stack ``alloca`` that LLVM promotes to registers, whereas
``scope="local"`` became a ``TVMBackendAllocWorkspace`` call per task with the accumulator in
memory (measured: the ternary kernel ran 10x slower that way).
"""
