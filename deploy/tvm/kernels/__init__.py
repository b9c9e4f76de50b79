"""Hand-written TIR kernels (TVMScript) for sparse and ternary weights.

Each module exposes one factory that returns a ``tvm.tirx.PrimFunc`` specialised for static shapes.
TVM is imported inside the factories only.
"""
