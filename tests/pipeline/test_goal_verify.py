"""Goal checks on a candidate's own report: speed, size, accuracy and a robust model's robust budget."""

from __future__ import annotations

from pipeline.goal.config import Goals
from pipeline.goal.verify import best_candidate, check_goals_met, measured_values


def _report(*, speedup=3.2, accuracy=0.99, robust=None, dense_robust=None):
    dense = {"name": "dense", "accuracy": 0.992, "size_bytes": {"onnx": 1_700_000}}
    final = {"name": "compiled", "accuracy": accuracy, "size_bytes": {"onnx": 30 * 1024}}
    if robust is not None:
        dense["robust_accuracy"], final["robust_accuracy"] = {"pgd": dense_robust}, {"pgd": robust}
    return {"variants": [dense, final], "latency": [
        {"variant": "dense", "runtime": "onnxruntime", "median_ms": 0.066, "ratio_vs_baseline": 1.0, "threads": 1},
        {"variant": "compiled", "runtime": "tvm-host", "median_ms": 0.066 / speedup, "ratio_vs_baseline": speedup, "threads": 1}]}


def test_measured_values_read_the_shipped_variant_and_the_tvm_speedup():
    measured = measured_values(_report())
    assert measured["speedup"] == 3.2 and measured["size_kib"] == 30.0
    assert abs(measured["accuracy_drop"] - 0.002) < 1e-12 and measured["robust_drop"] is None


def test_goal_checks_state_met_and_shortfall():
    checks = check_goals_met(Goals(min_speedup=3.0, max_size_kib=20.0, max_accuracy_drop=0.005), measured_values(_report()))
    by_goal = {c["goal"]: c for c in checks}
    assert by_goal["min_speedup"]["met"] and by_goal["max_accuracy_drop"]["met"]
    assert not by_goal["max_size_kib"]["met"] and by_goal["max_size_kib"]["shortfall"] == 10.0


def test_robust_budget_is_checked_on_the_robust_accuracy_of_what_ships():
    goals = Goals(min_speedup=3.0, max_robust_drop=0.03)
    kept = check_goals_met(goals, measured_values(_report(robust=0.87, dense_robust=0.894)))
    lost = check_goals_met(goals, measured_values(_report(robust=0.80, dense_robust=0.894)))
    assert [c["met"] for c in kept if c["goal"] == "max_robust_drop"] == [True]
    robust = next(c for c in lost if c["goal"] == "max_robust_drop")
    assert not robust["met"] and abs(robust["shortfall"] - 0.064) < 1e-9
    unmeasured = next(c for c in check_goals_met(goals, measured_values(_report())) if c["goal"] == "max_robust_drop")
    assert not unmeasured["met"]  # a robust budget the report did not measure is not met


def test_best_candidate_prefers_one_meeting_every_goal_else_the_least_shortfall():
    goals = Goals(min_speedup=3.0, max_accuracy_drop=0.005)
    slow = {"index": 0, "measured": measured_values(_report(speedup=2.5)), "goals": None}
    fast = {"index": 1, "measured": measured_values(_report(speedup=3.4, accuracy=0.985)), "goals": None}
    good = {"index": 2, "measured": measured_values(_report(speedup=3.1)), "goals": None}
    for c in (slow, fast, good):
        c["goals"] = check_goals_met(goals, c["measured"])
    assert best_candidate([slow, fast, good])["index"] == 2
    assert best_candidate([slow, fast])["index"] == 0  # 0.5x short (1/6 of the goal) beats 0.2 points short


def test_goal_report_draws_the_pareto_plot_and_states_each_goal(tmp_path):
    from deploy.report.goal import write_goal_report

    goals = Goals(min_speedup=3.0, max_accuracy_drop=0.005)
    candidates = []
    for index, speedup in enumerate((2.5, 3.1)):
        measured = measured_values(_report(speedup=speedup))
        candidates.append({"index": index, "dir": f"candidate-{index:02d}", "allocation": {"7.weight": 0.9}, "epochs": 2,
                           "predicted": {"speedup": 3.2}, "measured": measured, "goals": check_goals_met(goals, measured), "seconds": 40})
    search = {"goals": goals.to_dict(), "dense": {"onnxruntime_ms": 0.066, "accuracy": 0.992}, "shipped": 1, "shipped_dir": "candidate-01",
              "status": "met", "seconds": 100, "threads": 1, "calibration": {"split": "train", "samples": 2000, "reference_accuracy": 0.99},
              "latency_tables": {"cpu": "AMD EPYC", "kernel_version": "abc", "estimate": False}, "candidates": candidates,
              "layers": [{"fqn": "7.weight", "shape": "linear 800->500", "precision": "ternary", "levels": [0.0, 0.9],
                          "sensitivity": [0.0, 0.001], "latency_ms": [0.014, 0.005], "kernels": ["ternary-linear"] * 2, "size_bytes": [1e5, 1e4]}]}
    paths = write_goal_report(search, tmp_path)
    text = paths["md"].read_text()
    assert "speed-up vs dense onnxruntime >= 3.00x: measured 3.10: met" in text
    assert "accuracy drop <= 0.50 points: measured 0.20: met" in text
    assert "| 1 (shipped) |" in text and "| 7.weight | linear 800->500 | ternary | 0.90 |" in text
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    assert "<table>" in paths["html"].read_text()
