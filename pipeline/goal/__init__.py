"""Compress to a goal: speed-up / size / accuracy goals, per-layer curves, allocation, candidates verified on the artifact."""

from pipeline.goal.command import run_goal
from pipeline.goal.config import Goals, goal_options, goals_from_run

__all__ = ["Goals", "goal_options", "goals_from_run", "run_goal"]
