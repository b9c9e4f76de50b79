"""Per-call times of a TVM Relax VM: what each PrimFunc and built-in costs inside one inference.

TVM 0.27's Relax VM has no profiler (``profile=True`` is gone); ``VirtualMachine.set_instrument``
calls a hook before and after every call, which adds about 1-2 us per call.
"""

from __future__ import annotations

import time


def vm_call_seconds(vm, tensor, *, calls: int, warmup: int = 0) -> list[list[tuple[str, float]]]:
    """``calls`` inferences of ``vm["main"](tensor)`` after ``warmup`` untimed ones: for each inference,
    its VM calls in order as ``(name, seconds)``. The instrument is removed before returning."""
    for _ in range(warmup):
        vm["main"](tensor)
    runs: list[list[tuple[str, float]]] = []
    state: dict = {}

    def instrument(func, name, before_run, ret_value, *args):  # noqa: ANN001, ARG001 (TVM's hook signature)
        if before_run:
            state["start"] = time.perf_counter()
        else:
            runs[-1].append((name, time.perf_counter() - state["start"]))

    vm.set_instrument(instrument)
    try:
        for _ in range(calls):
            runs.append([])
            vm["main"](tensor)
    finally:
        vm.set_instrument(lambda *args: None)
    return runs


def summed_by_name(runs: list[list[tuple[str, float]]]) -> dict[str, float]:
    """Seconds per call name, summed over every call of every inference."""
    totals: dict[str, float] = {}
    for run in runs:
        for name, seconds in run:
            totals[name] = totals.get(name, 0.0) + seconds
    return totals
