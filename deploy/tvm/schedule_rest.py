"""Schedule every operator our fused kernels do not cover: pooling (padding, ceil mode), means,
softmax, layer / batch norm, batch matmul with non-constant operands, resize, pad, concat, split,
slice, transpose and every elementwise activation.

TVM 0.27's default CPU build legalizes these into plain scalar loops and leaves them unscheduled,
and dlight's CPU rules cover only GEMV and reductions. This pass swaps exp / sigmoid / erf / tanh /
softmax for their vectorisable polynomial forms (:mod:`deploy.tvm.schedule_math`), turns inference
batch norms into a multiply-add with folded constants (TVM's ``DecomposeOpsForInference``), legalizes the
module, fuses chains of elementwise operators and their producers (TVM's ``FuseOps`` / ``FuseTIR``),
inlines each
PrimFunc's producers into their consumers (pad into pool, exp into softmax's sum and division) and
gives every remaining block the hand schedule of :mod:`deploy.tvm.schedule_loops`: a vectorised
innermost output loop (reductions accumulate that vector across their window or reduced axis), the
rest fused and parallel when the work is at least ``PARALLEL_MIN_WORK``. Functions that only reshape
become views in the VM and need no schedule. :func:`unscheduled_functions` lists what is still
unscheduled (the compile fails on any); :func:`naive_functions` what is left as scalar loops (tests
assert there is none).
"""

from __future__ import annotations

from deploy.tvm.fusion import PARALLEL_MIN_MACS
from deploy.tvm.schedule_loops import pad_vector_lane, schedule_block
from deploy.tvm.schedule_math import fast_math

PARALLEL_MIN_WORK = PARALLEL_MIN_MACS
NAIVE_MIN_ELEMENTS = 256
OPAQUE_PATTERN = 8  # relax.OpPatternKind.kOpaque: FuseOps never fuses it
# TVMScript of a loop nest that uses the vector unit or the thread pool (a scheduled loop, or the
# explicit vector types of our hand-written kernels).
VECTOR_OR_PARALLEL_MARKS = ("T.vectorized(", "T.parallel(", "T.Ramp(", "float32x")
SCHEDULED = "tirx.is_scheduled"


def schedule_rest(mod, *, vector_floats: int):
    """Legalize the Relax operators of ``mod`` and schedule each unscheduled PrimFunc (see module doc)."""
    import tvm
    from tvm import relax

    mod = relax.transform.FoldConstant()(relax.transform.DecomposeOpsForInference()(mod))
    mod = _fuse_elementwise(relax.transform.LegalizeOps()(fast_math(mod)))
    updates = {}
    for gvar, func in mod.functions_items():
        if isinstance(func, tvm.tirx.PrimFunc) and not _is_scheduled(func):
            scheduled = _schedule(func, vector_floats)
            if scheduled is not None:
                updates[gvar] = scheduled
    for gvar, func in updates.items():
        mod[gvar] = func
    return mod


def _fuse_elementwise(mod):
    """TVM's ``FuseOps`` + ``FuseTIR`` over the legalized operators, so a chain such as hardswish's
    ``add -> clip -> divide -> multiply`` is one loop nest (one pass over memory) instead of four.
    Our kernels are opaque to it and stay as they are. Where TVM cannot fuse a module (it has refused
    some holding hand-written kernels: "Inconsistent buffers ... mapped to the same relax var") the
    operators stay one PrimFunc each."""
    import tvm
    from tvm import relax

    passes = tvm.transform.Sequential([relax.transform.FuseOps(), relax.transform.FuseTIR(),
                                       relax.transform.DeadCodeElimination()])
    try:
        return passes(_reshapes_opaque(relax.transform.AnnotateTIROpPattern()(mod)))
    except (tvm.error.TVMError, ValueError, RuntimeError):
        return mod


def _reshapes_opaque(mod):
    """Keep pure reshapes out of fusion: alone they are free views in the VM, fused into an
    elementwise loop they cost a division and a modulo per element (flat index -> NCHW)."""
    import tvm

    for gvar, func in list(mod.functions_items()):
        if isinstance(func, tvm.tirx.PrimFunc) and _is_reshape(func):
            mod[gvar] = func.with_attr("op_pattern", OPAQUE_PATTERN)
    return mod


def unscheduled_functions(mod) -> list[str]:
    """Names of the PrimFuncs of ``mod`` that carry no schedule (and are not pure reshapes)."""
    import tvm

    return sorted(gvar.name_hint for gvar, func in mod.functions_items()
                  if isinstance(func, tvm.tirx.PrimFunc) and not _is_scheduled(func))


def naive_functions(mod, *, min_elements: int = NAIVE_MIN_ELEMENTS) -> list[str]:
    """Names of the PrimFuncs of ``mod`` that are not pure reshapes, touch a buffer of at least
    ``min_elements`` values and use neither vectors nor threads (a scalar loop nest:
    what TVM's legalization leaves); tests assert there is none. Smaller functions (a batch norm over
    27 channels of a 1x1 map) are left scalar when no vector width divides their loops."""
    import tvm

    return sorted(gvar.name_hint for gvar, func in mod.functions_items()
                  if isinstance(func, tvm.tirx.PrimFunc) and _largest_buffer(func) >= min_elements
                  and not any(mark in func.script() for mark in VECTOR_OR_PARALLEL_MARKS)
                  and not _is_reshape(func))


def _is_reshape(func) -> bool:
    """TVM's reshape-pattern test (it requires block-form TIR; a hand-written kernel is not a reshape)."""
    import tvm
    from tvm import relax

    try:
        return bool(relax.analysis.has_reshape_pattern(func))
    except tvm.error.InternalError:
        return False


def _largest_buffer(func) -> int:
    sizes = [_product(int(dim) for dim in param.ty.shape) for param in func.params
             if getattr(param.ty, "shape", None) is not None]
    return max(sizes, default=0)


def _product(values) -> int:
    result = 1
    for value in values:
        result *= value
    return result


def _is_scheduled(func) -> bool:
    from tvm import relax

    return bool(func.attrs is not None and SCHEDULED in func.attrs) or relax.analysis.has_reshape_pattern(func)


def _schedule(func, vector_floats: int):
    """The scheduled function, or ``None`` when no block schedule applies."""
    from tvm import s_tir

    sch = s_tir.Schedule(func)
    try:
        for block in sch.get_child_blocks(sch.get_sblock("root"))[:-1]:
            _try_inline(sch, block)
        for block in sch.get_child_blocks(sch.get_sblock("root")):
            pad_vector_lane(sch, block, vector_floats=vector_floats)
        for block in sch.get_child_blocks(sch.get_sblock("root")):
            schedule_block(sch, block, vector_floats=vector_floats, parallel_min_work=PARALLEL_MIN_WORK)
    except (s_tir.ScheduleError, ValueError, RuntimeError):
        return None
    return sch.mod["main"].with_attr(SCHEDULED, True)


def _try_inline(sch, block) -> None:
    """Inline ``block`` into its consumers unless it is a reduction (the sum of a mean) or its result is
    broadcast (a squeeze-excite gate ``sigmoid`` of shape (1, C, 1, 1) read for every pixel: inlined,
    its exp would run H x W times per channel)."""
    from tvm import s_tir

    written = sch.get(block).writes
    consumers = sch.get_consumers(block)
    if written and consumers and any(_region_size(sch.get(consumer).writes) > _region_size(written)
                                     for consumer in consumers):
        return
    try:
        sch.compute_inline(block)
    except s_tir.ScheduleError:
        pass


def _region_size(regions) -> int:
    return sum(_product(int(r.extent) for r in region.region) for region in regions)
