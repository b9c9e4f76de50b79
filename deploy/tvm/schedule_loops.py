"""Hand schedules for one TIR block: vectorised spatial loops, reductions with a vector lane inside.

Every PrimFunc TVM's ``LegalizeOps`` makes for the operators our kernels do not cover is a short
list of blocks, each a perfect loop nest with its spatial loops outside its reduction loops (if
any). Two schedules cover them all:

* **spatial** (elementwise, pad, concat, split, slice, transpose, resize, broadcast): the shortest
  suffix of spatial loops whose fused extent is a multiple of the widest vector width possible is
  split by it and the inner part vectorised (a 14x14 map: 16 lanes over channel x pixels, not 2); everything above is fused and run in parallel when the block's work pays for
  waking the second thread.
* **reduction** (pooling with padding or ceil mode, global and ``ReduceMean`` means, softmax's max and
  sum, layer norm's moments, batch matmul with non-constant operands): the same vector lane is taken
  from the innermost output loops and the reduction loops are moved *inside* the outer spatial loops
  and *outside* that lane (``n, c, h, w_outer, kh, kw, w_lane``), so each vector of outputs is
  accumulated in a register while the window or the reduced axis is walked; the initialisation is
  split off as its own vectorised loop. A small window is unrolled; a long one (a contraction) also
  takes ``ROW_TILE`` rows of the next output loop inside it (``b, i_outer, j_outer, k, i_inner, j_lane``),
  so each operand value loaded feeds four vector accumulators (register blocking as in the GotoBLAS
  micro-kernel). A contraction whose lane extent is not a multiple of the vector width is zero-padded
  to one first (:func:`pad_vector_lane`). This is the loop order of
  MetaSchedule's CPU rules (multi-level tiling with a vectorised innermost spatial loop) without the
  search: the operators here are memory-bound, so one order serves every shape.

When no suffix of the output loops has an extent divisible by 2 (e.g. a 7x7 pool output of an odd
channel count) the block stays scalar but parallel where the work pays.
"""

from __future__ import annotations

from dataclasses import dataclass

VECTOR_CHOICES = (16, 8, 4, 2)
MAX_UNROLLED_WINDOW = 16
ROW_TILE = 4  # output rows per step of a long reduction (matmul): 4 vector accumulators


@dataclass(frozen=True)
class LoopPlan:
    """What :func:`schedule_block` did to one block (for tests and the layer report)."""

    block: str
    lanes: int  # vector lanes of the innermost loop (1: scalar)
    parallel: bool
    reduction: bool


def schedule_block(sch, block, *, vector_floats: int, parallel_min_work: int) -> LoopPlan:
    """Schedule ``block`` of ``sch`` in place (see module doc).

    Raises:
        ValueError: the block's loops are not one perfect nest, spatial loops first.
    """
    loops = sch.get_loops(block)
    kinds = [iter_var.iter_type for iter_var in sch.get(block).iter_vars]
    if len(kinds) != len(loops):
        raise ValueError("loop nest does not match the block's iterators")
    spatial = [loop for loop, kind in zip(loops, kinds) if kind == 0]
    reduce = [loop for loop, kind in zip(loops, kinds) if kind != 0]
    if not spatial or list(loops[: len(spatial)]) != spatial:
        raise ValueError("spatial loops are not outermost")
    extents = [_extent(sch, loop) for loop in spatial]
    window = _product(_extent(sch, loop) for loop in reduce)
    work = _product(extents) * window
    row_tile = ROW_TILE if reduce and window > MAX_UNROLLED_WINDOW else 1
    outer, rows, lane, lanes = _split_vector_lane(sch, spatial, extents, vector_floats, row_tile=row_tile,
                                                  widest=not reduce)
    parallel = work >= parallel_min_work and outer is not None
    name = sch.get(block).name_hint
    if reduce:
        if lane is not None:
            sch.reorder(*reduce, *([rows] if rows is not None else []), lane)
        if parallel:
            sch.parallel(outer)
        if lane is not None:
            sch.vectorize(lane)
        init = sch.decompose_reduction(block, reduce[0])
        if lane is not None:
            _vectorize_if_serial(sch, sch.get_loops(init)[-1])
        if rows is not None:
            sch.unroll(rows)
        if window <= MAX_UNROLLED_WINDOW:
            for loop in reduce:
                sch.unroll(loop)
        return LoopPlan(name, lanes, parallel, True)
    if lane is not None:
        sch.vectorize(lane)
    if parallel:
        sch.parallel(outer)
    return LoopPlan(name, lanes, parallel, False)


def pad_vector_lane(sch, block, *, vector_floats: int) -> bool:
    """Pad a contraction (batch matmul with non-constant operands: attention's ``q @ k^T``) whose
    innermost output extent is not a multiple of the vector width up to one (``pad_einsum``: zero-padded
    operand copies, the result copied back), so its lane is a full vector. Returns whether it padded;
    blocks that are not einsum-like (pooling windows, strided reads) are left alone."""
    from tvm import s_tir

    iter_vars = sch.get(block).iter_vars
    kinds = [iter_var.iter_type for iter_var in iter_vars]
    spatial = [index for index, kind in enumerate(kinds) if kind == 0]
    if not spatial or all(kind == 0 for kind in kinds):
        return False
    extent = int(iter_vars[spatial[-1]].dom.extent)
    if extent % vector_floats == 0 or extent < vector_floats:
        return False
    padding = [1] * len(kinds)
    padding[spatial[-1]] = vector_floats
    try:
        sch.pad_einsum(block, padding)
    except s_tir.ScheduleError:
        return False
    return True


def _split_vector_lane(sch, spatial: list, extents: list[int], vector_floats: int, *, row_tile: int = 1,
                       widest: bool = False):
    """Fuse the spatial loops into ``outer`` (+ ``rows``, ``row_tile`` iterations of the loop above the
    lane, when asked and it divides) + ``lane`` (the vector loop of ``lanes`` iterations).

    The lane comes from the shortest suffix of spatial loops whose fused extent is a multiple of a
    vector width (``widest``: of the widest vector width any suffix allows), so the innermost
    (contiguous) output axis is vectorised whenever it can be. Returns ``(outer, rows, lane, lanes)``; ``rows`` / ``lane`` are ``None`` when not made.
    """
    options = [(_lanes(_product(extents[-count:]), vector_floats), count) for count in range(1, len(spatial) + 1)]
    if widest:
        options = sorted(options, key=lambda option: (-option[0], option[1]))
    for lanes, count in options:
        if lanes > 1:
            head, tail = list(spatial[: len(spatial) - count]), spatial[len(spatial) - count:]
            fused_tail = sch.fuse(*tail) if len(tail) > 1 else tail[0]
            rest, lane = sch.split(fused_tail, [None, lanes])
            rows = None
            if row_tile > 1 and count == 1 and head and extents[-2] % row_tile == 0 and extents[-2] > row_tile:
                head[-1], rows = sch.split(head[-1], [None, row_tile])
                sch.reorder(rest, rows)
            outer_loops = [*head, rest]
            outer = sch.fuse(*outer_loops) if len(outer_loops) > 1 else outer_loops[0]
            return outer, rows, lane, lanes
    outer = sch.fuse(*spatial) if len(spatial) > 1 else spatial[0]
    return outer, None, None, 1


def _lanes(extent: int, vector_floats: int) -> int:
    return next((v for v in VECTOR_CHOICES if v <= vector_floats and extent % v == 0 and extent >= v), 1)


def _vectorize_if_serial(sch, loop) -> None:
    if int(sch.get(loop).kind) == 0:
        sch.vectorize(loop)


def _extent(sch, loop) -> int:
    return int(sch.get(loop).extent)


def _product(values) -> int:
    result = 1
    for value in values:
        result *= value
    return result
