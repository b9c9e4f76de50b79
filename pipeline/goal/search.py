"""The goal search: the recipe's train-sparse step once (when it has one) -> curves on that model ->
allocation -> candidate run (the sparse-trained model pruned to the allocation, masked fine-tune,
the recipe's quantize / export / compile / report) -> every goal checked on the candidate's own
report -> adjust and repeat within the budget -> ship the best candidate.

Each candidate is a complete run directory (``goal/candidate-NN``) made by the same runner as any
``compress run``, so its report, manifest and digests are the ordinary ones; the shipped candidate's
files become the run directory's own. The search state (``goal/search.json``) is written after every
candidate, so ``--resume`` continues where it stopped (finished candidates, the sparse-trained
model, the sensitivity sweep and the latency tables are reused).

Adjustment after a measured candidate (NetAdapt's loop closed on the real artifact, Yang et al.,
ECCV 2018): the time outside the layers' kernels is re-calibrated from the measured speed-up,
``T_fixed = T_ort / S_measured - sum_l t_l(k_l)`` (and the size likewise), and the allocation is
searched again from the current levels (never lowering one) when speed or size misses, afresh on
the calibrated prediction when they are met (so no layer is pruned beyond what the goals need); when
accuracy misses, the next candidate also fine-tunes one epoch longer. The search stops when every goal is met, when the
budget cannot hold another candidate, or when nothing new is left to try.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from compress.search import greedy_allocation
from deploy.report import load_report
from deploy.report.goal import goal_lines, write_goal_report
from pipeline.atomic import write_json
from pipeline.errors import AccuracyBudgetError, UserError
from pipeline.execute import execute
from pipeline.goal.baseline import search_inputs
from pipeline.goal.config import Goals
from pipeline.goal.sparse_start import seed_candidate
from pipeline.goal.verify import best_candidate, check_goals_met, measured_values
from pipeline.manifest import MANIFEST_NAME, read_manifest
from pipeline.model.run_input import RunInput
from pipeline.recipe import Step
from pipeline.stages.prune import PruneConfig

GOAL_DIR = "goal"
SEARCH_FILE = "search.json"
FIRST_CANDIDATE_GUESS_S = 90.0
CALIBRATED_MARGIN = 1.03  # beyond the goals once the prediction is calibrated on a measured candidate


class GoalNotMetError(AccuracyBudgetError):
    """The search ended without a candidate meeting every goal; the best one is shipped. Exit code 3."""

    exit_code = 3


def run_goal_search(steps: list[Step], *, goals: Goals, run_input: RunInput, run_dir: Path, options, resume: bool, log) -> tuple[dict[str, Any], dict[str, Any]]:
    """Search, ship the best candidate into ``run_dir``; returns ``(manifest, search record)``."""
    run_dir = Path(run_dir)
    goal_dir = run_dir / GOAL_DIR
    if run_dir.exists() and any(run_dir.iterdir()) and not resume:
        raise UserError(f"{run_dir} already holds a run; pass --resume to continue it, or choose another --out")
    state_path = goal_dir / SEARCH_FILE
    state = _load_state(state_path, goals) if resume else None
    started = time.monotonic() - (state or {}).get("seconds", 0.0)
    fresh = not run_dir.exists()
    try:
        inputs = search_inputs(steps, goals=goals, run_input=run_input, goal_dir=goal_dir, options=options, resume=resume, log=log)
    except BaseException:
        if fresh:  # refused before anything was measured: leave nothing behind
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    state = state or _new_state(goals, inputs)
    _search(steps, goals=goals, run_input=run_input, goal_dir=goal_dir, options=options, state=state, inputs=inputs,
            started=started, state_path=state_path, log=log)
    best = best_candidate(state["candidates"])
    if best is None:
        raise UserError("goal search: no candidate finished within the budget; raise --search-budget")
    state["shipped"], state["shipped_dir"] = best["index"], best["dir"]
    state["status"] = "met" if all(g["met"] for g in best["goals"]) else "not-met"
    state["seconds"] = time.monotonic() - started
    _ship(goal_dir / best["dir"], run_dir)
    write_json(state_path, state)
    write_goal_report(state, goal_dir)
    return read_manifest(run_dir), state


def goal_failure(state: dict[str, Any]) -> str:
    """The one line of a search that ended short of a goal ('' when every goal is met)."""
    if state.get("status") == "met":
        return ""
    shipped = next(c for c in state["candidates"] if c["index"] == state["shipped"])
    missed = [line for line, check in zip(goal_lines(shipped), shipped["goals"]) if not check["met"]]
    return f"goal not met within {state['goals']['search_budget']:g} minutes; best candidate {shipped['dir']} shipped: " + "; ".join(missed)


def _new_state(goals: Goals, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"goals": goals.to_dict(), "pattern": "block", "threads": inputs["threads"], "calibration": inputs["calibration"],
            "latency_tables": inputs["table_facts"], "dense": inputs["dense"], "layers": inputs["records"],
            "candidates": [], "seconds": 0.0, "adjust": {"fixed_latency_s": inputs["fixed_latency_s"],
                                                        "fixed_size_bytes": inputs["fixed_size_bytes"], "epochs": goals.epochs, "levels": None}}


def _load_state(path: Path, goals: Goals) -> dict[str, Any] | None:
    import json

    if not path.exists():
        return None
    state = json.loads(path.read_text(encoding="utf-8"))
    if {**state.get("goals", {}), "search_budget": None} != {**goals.to_dict(), "search_budget": None}:
        raise UserError(f"cannot --resume {path.parent.parent}: it searched other goals ({state.get('goals')})")
    state["goals"] = goals.to_dict()  # a resumed search may be given a longer --search-budget
    return state


def _search(steps, *, goals: Goals, run_input: RunInput, goal_dir: Path, options, state, inputs, started: float, state_path: Path, log) -> None:
    curves = inputs["curves"]
    dense_ms = state["dense"]["onnxruntime_ms"]
    budget_s = goals.search_budget * 60.0
    adjust = state["adjust"] = _replayed(state["candidates"], inputs, curves, goals=goals, dense_ms=dense_ms)
    while True:
        done = [c for c in state["candidates"] if c.get("goals") is not None]
        margin = goals.margin if not done else CALIBRATED_MARGIN
        guess = max((c["seconds"] for c in done), default=FIRST_CANDIDATE_GUESS_S)
        elapsed = time.monotonic() - started
        if done and elapsed + guess > budget_s:
            log(f"goal: {elapsed:.0f} s spent, a candidate takes about {guess:.0f} s: the {goals.search_budget:g}-minute budget is used up")
            return
        max_latency = None if goals.min_speedup is None else dense_ms / 1000.0 / (goals.min_speedup * margin)
        max_size = None if goals.max_size_kib is None else goals.max_size_kib * 1024.0 / margin
        allocation = greedy_allocation(curves, max_latency_s=max_latency, max_size_bytes=max_size, fixed_latency_s=adjust["fixed_latency_s"],
                                       fixed_size_bytes=adjust["fixed_size_bytes"], start=adjust["levels"])
        key = (tuple(sorted(allocation.levels.items())), adjust["epochs"])
        if any((tuple(sorted(c["levels"].items())), c["epochs"]) == key for c in done):
            log("goal: the next allocation was already measured: nothing new to try")
            return
        candidate = _run_candidate(steps, allocation, goals=goals, epochs=adjust["epochs"], index=len(done), run_input=run_input,
                                   goal_dir=goal_dir, options=options, dense_ms=dense_ms, log=log)
        state["candidates"] = done + [candidate]
        state["dense"]["accuracy"] = candidate["measured"].get("dense_accuracy")  # the report's, on the test split
        state["seconds"] = time.monotonic() - started
        write_json(state_path, state)
        checks = candidate["goals"]
        log(f"goal: candidate {candidate['index']}: " + "; ".join(f"{c['goal']} {'met' if c['met'] else 'missed'}" for c in checks))
        if all(c["met"] for c in checks):
            return
        _adjust(adjust, candidate, curves, dense_ms=dense_ms)


def _replayed(candidates: list[dict[str, Any]], inputs: dict[str, Any], curves, *, goals: Goals, dense_ms: float) -> dict[str, Any]:
    """The adjustment state after the measured candidates, replayed from the start (a resumed search
    continues exactly as an uninterrupted one would)."""
    adjust = {"fixed_latency_s": inputs["fixed_latency_s"], "fixed_size_bytes": inputs["fixed_size_bytes"], "epochs": goals.epochs, "levels": None}
    for candidate in candidates:
        if candidate.get("goals") is not None:
            _adjust(adjust, candidate, curves, dense_ms=dense_ms)
    return adjust


def _adjust(adjust: dict[str, Any], candidate: dict[str, Any], curves, *, dense_ms: float) -> None:
    """Re-calibrate the fixed latency / size from the measurement, step the levels or start afresh,
    fine-tune longer when accuracy misses."""
    measured = candidate["measured"]
    missed = {c["goal"] for c in candidate["goals"] if not c["met"]}
    levels = candidate["levels"]
    kernels = sum(c.latency_s[levels[c.fqn]] for c in curves)
    weights = sum(c.size_bytes[levels[c.fqn]] for c in curves)
    if measured.get("speedup"):
        adjust["fixed_latency_s"] = dense_ms / 1000.0 / measured["speedup"] - kernels
    if measured.get("size_kib") is not None:
        adjust["fixed_size_bytes"] = measured["size_kib"] * 1024.0 - weights
    if missed & {"min_speedup", "max_size_kib"}:
        adjust["levels"] = dict(levels)
    else:
        adjust["levels"] = None  # fast and small enough: allocate afresh on the calibrated prediction (no more than needed)
    if missed & {"max_accuracy_drop", "max_robust_drop"}:
        adjust["epochs"] += 1  # and fine-tune longer


def _candidate_steps(steps: list[Step], sparsity: dict[str, float], *, goals: Goals, epochs: int) -> list[Step]:
    """The recipe with its prune step pruning to ``sparsity`` (one shot, block pattern, ``epochs`` of
    masked fine-tuning); a recipe without a prune step gets one right after its train-sparse step
    (or first). The train-sparse step stays: it is the one run of :mod:`pipeline.goal.sparse_start`."""
    prune = next((s for s in steps if s.use == "prune"), None)
    base = prune.config if prune is not None else PruneConfig()
    config = replace(base, pattern="block", block=tuple(goals.block), sparsity_ratio=0.0, layer_ratios="uniform",
                     layer_sparsity={k: float(v) for k, v in sparsity.items() if v > 0}, schedule="one-shot", epochs=epochs)
    if prune is not None:
        return [Step("prune", config) if s is prune else s for s in steps]
    at = next((i + 1 for i, s in enumerate(steps) if s.use == "train-sparse"), 0)
    return [*steps[:at], Step("prune", config), *steps[at:]]


def _run_candidate(steps, allocation, *, goals: Goals, epochs: int, index: int, run_input: RunInput, goal_dir: Path, options, dense_ms: float, log) -> dict[str, Any]:
    name = f"candidate-{index:02d}"
    candidate_dir = goal_dir / name
    log(f"goal: {name}: " + ", ".join(f"{fqn} {s:.2f}" for fqn, s in allocation.sparsity.items())
        + f"; predicted {dense_ms / 1000.0 / allocation.latency_s:.2f}x, calibration accuracy -{100 * allocation.loss:.2f} points, {epochs} fine-tune epoch(s)")
    start = time.monotonic()
    candidate_steps = _candidate_steps(steps, allocation.sparsity, goals=goals, epochs=epochs)
    seed_candidate(candidate_steps, goal_dir=goal_dir, candidate_dir=candidate_dir)  # the sparse-trained stage, reused
    manifest = execute(candidate_steps, run_input=run_input, run_dir=candidate_dir,
                       options=options, resume=(candidate_dir / MANIFEST_NAME).exists(), until=None, dry_run=False,
                       log=lambda line: log(f"  {name}: {line}"))
    report = _report_of(manifest, candidate_dir)
    measured = measured_values(report)
    return {"index": index, "dir": name, "levels": dict(allocation.levels), "allocation": dict(allocation.sparsity), "epochs": epochs,
            "predicted": {"speedup": dense_ms / 1000.0 / allocation.latency_s, "size_kib": allocation.size_bytes / 1024.0, "accuracy_drop": allocation.loss},
            "measured": measured, "goals": check_goals_met(goals, measured), "seconds": time.monotonic() - start}


def _report_of(manifest: dict[str, Any], candidate_dir: Path) -> dict[str, Any]:
    record = next((r for r in manifest["stages"] if r["name"] == "report"), None)
    if record is None:
        raise UserError("goal search: the recipe needs a report stage (the goals are checked on its measurements)")
    return load_report(candidate_dir / record["outputs"]["report-json"]["path"])


def _ship(candidate_dir: Path, run_dir: Path) -> None:
    """Make the candidate's run files the run directory's own (relative paths: the manifest stays valid)."""
    for old in run_dir.iterdir():
        if old.name[:2].isdigit() and old.is_dir():
            shutil.rmtree(old)
    for item in candidate_dir.iterdir():
        if item.name.startswith("."):
            continue
        target = run_dir / item.name
        if item.is_dir():
            shutil.copytree(item, target)
        else:
            shutil.copy2(item, target)


__all__ = ["GoalNotMetError", "goal_failure", "run_goal_search"]
