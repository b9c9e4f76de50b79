"""MetaSchedule tuning of the operators our fused kernels do not cover.

Our kernels carry ``tirx.is_scheduled`` and are never handed to MetaSchedule (its FLOP estimator
does not know their vector expressions, and its Relax pipeline's FuseTIR rejects hand-written
``call_tir`` kernels). Every other PrimFunc is tuned on its own with ``tune_tir``, its records kept
in ``work_dir/<structural hash>`` so that a later build (``trials == 0``) re-applies them in seconds;
what tuning finds no schedule for is left to :mod:`deploy.tvm.schedule_rest`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from deploy.tvm.schedule_rest import SCHEDULED, unscheduled_functions


def tune_unscheduled(mod, tvm_target, *, trials: int, work_dir) -> tuple[object, list[str]]:
    """Tune (``trials > 0``) or re-apply (``trials == 0``) every unscheduled PrimFunc of ``mod``.

    Returns:
        The module and the names of the functions that got a tuned schedule.
    """
    import tvm_ffi
    from tvm.s_tir import meta_schedule as ms

    target = _with_num_cores(tvm_target)
    tuned = []
    for name in unscheduled_functions(mod):
        gvar = mod.get_global_var(name)
        func = mod[gvar].with_attr("global_symbol", "main")
        task_dir = Path(work_dir) / f"{tvm_ffi.structural_hash(func) & 0xFFFFFFFFFFFF:012x}"
        task_dir.mkdir(parents=True, exist_ok=True)
        if trials > 0:
            database = ms.tune_tir(func, target, str(task_dir), max_trials_global=trials, num_trials_per_iter=min(trials, 64),
                                   cost_model=_cost_model())
        else:
            database = ms.database.JSONDatabase(work_dir=str(task_dir))
        schedule = ms.tir_integration.compile_tir(database, func, target)
        if schedule is not None:
            mod[gvar] = schedule.mod["main"].with_attr("global_symbol", name).with_attr(SCHEDULED, True)
            tuned.append(name)
    return mod, tuned


def _cost_model() -> str:
    """XGBoost when installed (``pip install compress[tune]``), else random search."""
    import importlib.util

    return "xgb" if importlib.util.find_spec("xgboost") is not None else "random"


def _with_num_cores(tvm_target):
    """MetaSchedule needs ``num-cores`` on a CPU target: the build machine's physical cores."""
    import psutil
    import tvm

    spec = json.loads(str(tvm_target))
    if tvm_target.kind.name != "llvm" or "num-cores" in spec:
        return tvm_target
    spec["num-cores"] = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    return tvm.target.Target(spec)
