"""``compress run`` with a speed or size goal: search, ship the best candidate, state every goal, exit 3 on a miss."""

from __future__ import annotations

from pathlib import Path

from deploy.report.goal import goal_lines
from pipeline.errors import AccuracyBudgetError
from pipeline.execute import summarise
from pipeline.goal.config import Goals
from pipeline.goal.search import GoalNotMetError, goal_failure, run_goal_search
from pipeline.model.run_input import RunInput


def run_goal(steps, *, goals: Goals, run_input: RunInput, run_dir: Path, options, resume: bool, log, as_json: bool) -> None:
    """Run the goal search and summarise its shipped run like any run; a missed goal exits 3
    (:class:`pipeline.goal.search.GoalNotMetError`) after the best candidate is in ``run_dir``."""

    manifest, state = run_goal_search(steps, goals=goals, run_input=run_input, run_dir=run_dir, options=options, resume=resume, log=log)
    shipped = next(c for c in state["candidates"] if c["index"] == state["shipped"])
    for line in goal_lines(shipped):
        log(f"goal: {line}")
    log(f"goal: search report {Path(run_dir) / 'goal' / 'goal.md'}")
    failure = goal_failure(state)
    try:
        summarise(manifest, run_dir=run_dir, as_json=as_json, max_accuracy_drop=goals.max_accuracy_drop, max_robust_drop=goals.max_robust_drop,
                  goal_missed=failure)
    except AccuracyBudgetError as error:
        raise GoalNotMetError(failure or str(error)) from None
