"""Run a recipe on a model file: check and lock the run directory, copy the input into it, run the
stages, summarise. Used by ``compress run``, the one-stage commands and the goal search."""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from pipeline.atomic import sha256_bytes, sha256_file, torch_bytes, write_bytes
from pipeline.errors import AccuracyBudgetError, RunInterrupted, UserError
from pipeline.manifest import MANIFEST_NAME
from pipeline.model.bundle import trusted_archs_for
from pipeline.model.importers import import_model
from pipeline.model.onnx_input import onnx_input_bytes, onnx_run_notice
from pipeline.model.run_input import RunInput
from pipeline.recipe import Step
from pipeline.run_files import run_path
from pipeline.run_lock import LOCK_NAME, check_run_dir, run_lock
from pipeline.runner import Runner, check_steps, data_loader, steps_until
from pipeline.stage import RunOptions
from pipeline.training import distributed

INPUT_DIR = "00-input"
EXAMPLE_MODEL = Path(__file__).resolve().parent / "examples" / "lenet5_mnist.pt"


def default_run_dir(model_path: Path, target: str) -> Path:
    return Path("runs") / f"{model_path.stem}-{target}-{time.strftime('%Y%m%d-%H%M%S')}"


def execute(
    steps: list[Step],
    *,
    run_input: RunInput,
    run_dir: Path,
    options: RunOptions,
    resume: bool,
    until: str | None,
    dry_run: bool,
    log,
) -> dict[str, Any]:
    """Run ``steps`` on ``run_input``'s model into ``run_dir``; returns the manifest.

    The run directory is checked (and locked) before anything is written into it.
    """
    _apply_threads(options.threads)
    check_steps(steps_until(steps, until))  # a refused setting leaves nothing behind: checked before anything is made
    model_path = run_input.model_path
    options = replace(options, trusted_archs=trusted_archs_for(model_path, arch=run_input.arch, trust_pickle=options.trust_pickle),
                      model_source=str(model_path))
    guarded = distributed.is_main()  # under torchrun only rank 0 owns the run directory
    if guarded:
        check_run_dir(run_dir, resume=resume)
    existed, locked = run_dir.exists(), False
    fresh = guarded and not dry_run and not (existed and any(p.name != ".compress.lock" for p in run_dir.iterdir()))
    try:
        with run_lock(run_dir) if guarded and not dry_run else nullcontext():
            locked = True
            if guarded:
                check_run_dir(run_dir, resume=resume)  # another process may have finished a run here meanwhile
            return _execute(steps, run_input=run_input, run_dir=run_dir, options=options, resume=resume, until=until, dry_run=dry_run, log=log)
    except BaseException:
        if fresh and locked:  # only what this process made, under its own lock
            _remove_unstarted(run_dir, existed=existed)
        raise


def _remove_unstarted(run_dir: Path, *, existed: bool) -> None:
    """A new run that failed before its manifest was written (its input refused, its data unreadable)
    leaves nothing half-made: remove the input copy and the lock file it made, and the folder if it
    made that too, so the corrected command can use the same --out."""
    import shutil

    if (run_dir / MANIFEST_NAME).exists() or (run_dir / INPUT_DIR).is_symlink():
        return
    shutil.rmtree(run_dir / INPUT_DIR, ignore_errors=True)
    (run_dir / LOCK_NAME).unlink(missing_ok=True)
    if not existed:
        try:
            run_dir.rmdir()
        except OSError:
            pass


def _execute(steps, *, run_input: RunInput, run_dir, options, resume, until, dry_run, log) -> dict[str, Any]:
    # the other ranks of a torchrun keep their copy of the input out of the shared directory
    input_root = run_dir if distributed.is_main() else Path(tempfile.mkdtemp(prefix="compress-input-"))
    load_data = data_loader(options)
    if run_input.is_onnx:
        steps = _from_compile(steps, log=log)
        onnx_path = _checked_onnx(run_input.model_path)
        onnx_bytes = onnx_input_bytes(onnx_path, sample_shape=run_input.input_shape)
        external = _onnx_external_files(onnx_path)
        if not dry_run:
            for relative in external:
                _input_copy((onnx_path.parent / relative).read_bytes(), input_root / INPUT_DIR / relative, resume=resume)
        initial = {"onnx": onnx_path if dry_run else _input_copy(onnx_bytes, input_root / INPUT_DIR / onnx_path.name, resume=resume)}
    else:
        initial = {"model": _import_input(run_input, input_root, options, dry_run=dry_run, resume=resume, load_data=load_data, log=log)}
    runner = Runner(steps, run_dir=run_dir, options=options, log=log, load_data=load_data)
    try:
        return runner.run(initial, resume=resume, until=until, dry_run=dry_run)
    except KeyboardInterrupt:
        command = " ".join(shlex.quote(a) for a in sys.argv[1:])
        if "--resume" not in command:
            command += " --resume"
        if "--out" not in command:
            command += f" --out {shlex.quote(str(run_dir))}"
        raise RunInterrupted(f"interrupted; finished stages are kept; resume with: compress {command}") from None


def _apply_threads(threads: int) -> None:
    if threads < 0:
        raise UserError(f"--threads must be >= 0, got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)


def _from_compile(steps: list[Step], *, log) -> list[Step]:
    names = [step.use for step in steps]
    if "compile" not in names:
        raise UserError("an ONNX model starts at the compile stage, but this recipe has no compile stage")
    if names.index("compile") > 0:
        log(onnx_run_notice(names[: names.index("compile")]))
    return steps[names.index("compile") :]


def _checked_onnx(path: Path) -> Path:
    if not path.is_file():
        raise UserError(f"model file {path} does not exist")
    if path.stat().st_size == 0:
        raise UserError(f"model file {path} is empty")
    return path.resolve()


def _onnx_external_files(path: Path) -> list[Path]:
    """Relative paths of the external-data files an ONNX model names; each must lie in its folder."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (OSError, ValueError, DecodeError) as error:
        raise UserError(f"cannot read ONNX model {path}: {error}") from None
    folder = path.parent.resolve()
    files = set()
    for tensor in list(model.graph.initializer) + [s.values for s in model.graph.sparse_initializer]:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
        target = (folder / location).resolve()
        if not location or not target.is_relative_to(folder) or not target.is_file():
            raise UserError(f"{path}: external data of tensor {tensor.name!r} ({location!r}) is not a file inside {folder}")
        files.add(target.relative_to(folder))
    return sorted(files)


def _import_input(run_input: RunInput, run_dir: Path, options: RunOptions, *, dry_run: bool, resume: bool, load_data, log) -> Path:
    bundle = import_model(
        run_input.model_path,
        arch=run_input.arch,
        input_shape=run_input.input_shape,
        trust_pickle=options.trust_pickle,
    )
    data = load_data(bundle.input_shape)  # the data, checked against the model's input shape before any stage
    log(describe_data(data))
    if dry_run:
        return run_input.model_path.resolve()
    return _input_copy(torch_bytes(bundle.to_dict()), run_dir / INPUT_DIR / "model.pt", resume=resume)


def describe_data(data) -> str:
    """One line on the data and the preprocessing chosen for it (printed once per run)."""
    prep = data.preprocess
    formula = f"x = raw * {prep.scale:.6g}"
    if prep.mean:
        formula = f"x = (raw * {prep.scale:.6g} - mean {list(prep.mean)}) / std {list(prep.std) or [1.0]}"
    low, high = data.preprocessing_record()["input_range"] or (0.0, 0.0)
    record = data.preprocessing_record()
    resize = "".join(f", {step}" for step in record.get("steps", []) if step.startswith(("resize", "centre-crop", "decode")))
    return (f"data {data.name}: {len(data.train_y):,} training / {len(data.test_y):,} test samples; "
            f"{formula}{resize} (inputs in [{low:.3g}, {high:.3g}])")


def _input_copy(data: bytes, target: Path, *, resume: bool) -> Path:
    """The run's own copy of its input; on ``--resume`` it must be byte-identical to the earlier one."""
    root = next(p for p in target.parents if p.name == INPUT_DIR).parent
    run_path(root, target.relative_to(root), must_exist=False)  # no link on the way into the run
    if resume and target.is_file():
        if sha256_file(target) != sha256_bytes(data):
            raise UserError(
                f"cannot --resume {target.parent.parent}: the input model differs from the one this run started with; "
                "choose another --out for a new run"
            )
        return target
    try:
        write_bytes(target, data)
    except OSError as error:
        raise UserError(f"cannot write to {target.parent.parent}: {error.strerror or error}") from None
    return target


def summarise(manifest: dict[str, Any], *, run_dir: Path, as_json: bool, max_accuracy_drop: float | None, max_robust_drop: float | None = None,
              goal_missed: str = "") -> None:
    """Print the result (JSON on stdout with ``--json``) and enforce the accuracy budgets and, given
    ``goal_missed`` (the goal search's shortfall), the goals (exit 3)."""
    summary = build_summary(manifest, run_dir=run_dir)
    over = goal_missed or _over_budget(summary, max_accuracy_drop=max_accuracy_drop, max_robust_drop=max_robust_drop)
    summary["status"] = _status(over, goal_missed=bool(goal_missed))
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        for stage in summary["stages"]:
            click.echo(f"{stage['name']:<13} {stage['status']:<8} {stage.get('seconds', 0):>8.1f} s  {stage.get('headline', '')}")
        click.echo(f"run directory: {run_dir}")
    if over:
        raise AccuracyBudgetError(over)


def _status(over: str, *, goal_missed: bool) -> str:
    if goal_missed:
        return "goal-not-met"
    if over:
        return "robust-budget-exceeded" if over.startswith("robust") else "accuracy-budget-exceeded"
    return "ok"


def _over_budget(summary: dict[str, Any], *, max_accuracy_drop: float | None, max_robust_drop: float | None) -> str:
    """The message of the first budget exceeded, or ``""``."""
    drop = summary.get("accuracy_drop")
    if max_accuracy_drop is not None and drop is not None and drop > max_accuracy_drop:
        return f"accuracy dropped by {drop * 100:.2f} points, more than the allowed {max_accuracy_drop * 100:.2f}"
    robust = summary.get("robust_drop")
    if max_robust_drop is not None and robust is None:
        return "robust accuracy was not measured, so --max-robust-drop cannot be checked (give the report stage robust: [pgd])"
    if max_robust_drop is not None and robust > max_robust_drop:
        return f"robust accuracy dropped by {robust * 100:.2f} points, more than the allowed {max_robust_drop * 100:.2f}"
    return ""


def build_summary(manifest: dict[str, Any], *, run_dir: Path) -> dict[str, Any]:
    stages, accuracies = [], []
    for record in manifest["stages"]:
        metrics = record.get("metrics") or {}
        if metrics.get("accuracy_before") is not None:
            accuracies.append(metrics["accuracy_before"])
        if metrics.get("test_accuracy") is not None:
            accuracies.append(metrics["test_accuracy"])
        stages.append(
            {
                "name": record["name"],
                "status": record["status"],
                "seconds": record.get("seconds", 0.0),
                "outputs": {role: str(run_dir / a["path"]) for role, a in record.get("outputs", {}).items()},
                "headline": _headline(metrics),
            }
        )
    summary = {"run_dir": str(run_dir), "stages": stages}
    report = next((r.get("metrics") or {} for r in manifest["stages"] if r["name"] == "report" and r["status"] == "done"), {})
    for key in ("robust_accuracy_dense", "robust_accuracy_final", "robust_drop"):
        if key in report:
            summary[key] = report[key]
    if len(accuracies) >= 2:
        summary.update(accuracy_dense=accuracies[0], accuracy_final=accuracies[-1], accuracy_drop=accuracies[0] - accuracies[-1])
    return summary


def _headline(metrics: dict[str, Any]) -> str:
    parts = []
    if metrics.get("test_accuracy") is not None:
        parts.append(f"accuracy {metrics['test_accuracy']:.4f}")
    if "weight_sparsity" in metrics:
        parts.append(f"sparsity {metrics['weight_sparsity']:.3f}")
    if "compression_ratio" in metrics:
        parts.append(f"{metrics['compression_ratio']:.0f}x smaller")
    if "headline" in metrics:
        parts.append(str(metrics["headline"]))
    return ", ".join(parts)
