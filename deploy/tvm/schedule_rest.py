"""Schedule every operator our fused kernels do not cover (pooling, global mean, leftover elementwise).

TVM 0.27's default CPU build legalizes these into plain scalar loops and leaves them unscheduled,
and dlight's CPU rules cover only GEMV and reductions. This pass gives every unscheduled PrimFunc
the same simple schedule: producers inlined into their consumer, spatial loops fused, the fused loop
split by the vector width and the inner part vectorized, the outer part parallel when the work is at
least ``PARALLEL_MIN_WORK``. A reduction (pooling window, global mean) keeps its spatial loop
scalar (TVM refuses to vectorize a loop above a reduction block) with its init split off and a
small window unrolled. Functions that
only reshape become views in the VM and need no schedule. :func:`unscheduled_functions` lists what
is still unscheduled; the compile fails on none, tests assert there is none.
"""

from __future__ import annotations

from deploy.tvm.fusion import PARALLEL_MIN_MACS

PARALLEL_MIN_WORK = PARALLEL_MIN_MACS
MAX_UNROLLED_WINDOW = 16
SCHEDULED = "tirx.is_scheduled"


def schedule_rest(mod, *, vector_floats: int):
    """Legalize the Relax operators of ``mod`` and schedule each unscheduled PrimFunc (see module doc)."""
    import tvm
    from tvm import relax

    mod = relax.transform.LegalizeOps()(mod)
    updates = {}
    for gvar, func in mod.functions_items():
        if isinstance(func, tvm.tirx.PrimFunc) and not _is_scheduled(func):
            scheduled = _schedule(func, vector_floats)
            if scheduled is not None:
                updates[gvar] = scheduled
    for gvar, func in updates.items():
        mod[gvar] = func
    return mod


def unscheduled_functions(mod) -> list[str]:
    """Names of the PrimFuncs of ``mod`` that carry no schedule (and are not pure reshapes)."""
    import tvm

    return sorted(gvar.name_hint for gvar, func in mod.functions_items()
                  if isinstance(func, tvm.tirx.PrimFunc) and not _is_scheduled(func))


def _is_scheduled(func) -> bool:
    from tvm import relax

    return bool(func.attrs is not None and SCHEDULED in func.attrs) or relax.analysis.has_reshape_pattern(func)


def _schedule(func, vector_floats: int):
    """The scheduled function, or ``None`` when the generic schedule does not apply."""
    from tvm import s_tir

    sch = s_tir.Schedule(func)
    try:
        for block in sch.get_child_blocks(sch.get_sblock("root"))[:-1]:
            _try_inline(sch, block)
        for block in sch.get_child_blocks(sch.get_sblock("root")):
            _schedule_block(sch, block, vector_floats)
    except (s_tir.ScheduleError, ValueError, RuntimeError):
        return None
    return sch.mod["main"].with_attr(SCHEDULED, True)


def _try_inline(sch, block) -> None:
    from tvm import s_tir

    try:
        sch.compute_inline(block)
    except s_tir.ScheduleError:
        pass  # a reduction producer (the sum of a mean) stays its own block


def _schedule_block(sch, block, vector_floats: int) -> None:
    loops = sch.get_loops(block)
    kinds = [iter_var.iter_type for iter_var in sch.get(block).iter_vars]
    if len(kinds) != len(loops):
        raise ValueError("loop nest does not match the block's iterators")
    spatial = [loop for loop, kind in zip(loops, kinds) if kind == 0]
    reduce = [loop for loop, kind in zip(loops, kinds) if kind != 0]
    if not spatial or loops[: len(spatial)] != spatial:
        raise ValueError("spatial loops are not outermost")
    fused = sch.fuse(*spatial) if len(spatial) > 1 else spatial[0]
    extent = int(sch.get(fused).extent)
    work = extent * _product(int(sch.get(loop).extent) for loop in reduce)
    if reduce:
        sch.decompose_reduction(block, reduce[0])
        if _product(int(sch.get(loop).extent) for loop in reduce) <= MAX_UNROLLED_WINDOW:
            for loop in reduce:
                sch.unroll(loop)
        if work >= PARALLEL_MIN_WORK:
            sch.parallel(fused)
        return
    lanes = next((v for v in (16, 8, 4, 2) if v <= vector_floats and extent % v == 0 and extent > v), 1)
    if lanes == 1:
        if work >= PARALLEL_MIN_WORK:
            sch.parallel(fused)
        return
    outer, inner = sch.split(fused, [None, lanes])
    sch.vectorize(inner)
    if work >= PARALLEL_MIN_WORK:
        sch.parallel(outer)


def _product(values) -> int:
    result = 1
    for value in values:
        result *= value
    return result
