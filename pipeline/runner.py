"""Runs a recipe: stage ids from (name, version, config, input digests), resume, until, dry run."""

from __future__ import annotations

import os
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pipeline.atomic import sha256_json
from pipeline.config import config_to_dict
from pipeline.data import Preprocess, load_dataset
from pipeline.errors import UserError
from pipeline.manifest import (
    MANIFEST_NAME,
    Artifact,
    check_records,
    new_manifest,
    put_stage_record,
    read_manifest,
    stage_record,
    write_manifest,
)
from pipeline.recipe import Step, recipe_to_dict
from pipeline.run_files import check_tree, run_path
from pipeline.stage import RunOptions, StageContext
from pipeline.stages import stage_class
from pipeline.training import distributed
from pipeline.training.loop import CHECKPOINT_NAME

ALL_ROLES = "*"


@dataclass
class PlannedStage:
    index: int
    step: Step
    stage_id: str
    action: str  # "run" or "skip"
    inputs: dict[str, Artifact] = field(default_factory=dict)


def stage_dir_name(index: int, name: str) -> str:
    return f"{index + 1:02d}-{name}"


class Runner:
    """Executes the steps of a recipe inside one run directory.

    Under torchrun every rank runs the recipe in lock-step, but only rank 0 logs and writes the run
    directory; the other ranks write into a private scratch directory that is deleted afterwards.
    """

    def __init__(self, steps: list[Step], *, run_dir: Path, options: RunOptions, log: Callable[[str], None] = print, load_data: Callable | None = None) -> None:
        self.steps = steps
        self.run_dir = Path(run_dir).resolve()
        self.options = options
        self.log = log if distributed.is_main() else _silent
        self.recipe = recipe_to_dict(steps)
        self.recipe_sha256 = sha256_json(self.recipe)
        self._data = load_data or data_loader(options)
        self._last_data: Any = None

    def run(self, initial: dict[str, Path], *, resume: bool = False, until: str | None = None, dry_run: bool = False) -> dict[str, Any]:
        if resume and distributed.is_distributed():
            raise UserError("--resume is not supported under torchrun; resume the run in a single process, or choose another --out")
        shared = self.run_dir
        try:
            with distributed.rank_run_dir(shared) as self.run_dir:
                return self._run(initial, until=until, resume=resume, dry_run=dry_run)
        finally:
            self.run_dir = shared
            distributed.shutdown()

    def _run(self, initial: dict[str, Path], *, resume: bool, until: str | None, dry_run: bool) -> dict[str, Any]:
        steps = self._steps_until(until)
        check_steps(steps)  # every stage's settings before the first one trains
        manifest = self._open_manifest(initial, resume=resume, dry_run=dry_run)
        available = {role: Artifact(**record) for role, record in manifest["inputs"].items()}
        self._check_roles(steps, available)
        for index, step in enumerate(steps):
            planned = self._plan(index, step, available, manifest, resume=resume)
            if dry_run:
                self.log(f"[dry-run] {stage_dir_name(index, step.use)}: {planned.action} (id {planned.stage_id[:12]})")
                for role in stage_class(step.use).produces:
                    available[role] = Artifact(role, f"<{step.use}:{role}>", "", 0, step.use)
                continue
            if planned.action == "skip":
                self.log(f"{step.use}: unchanged, skipped (resume)")
                record = stage_record(manifest, index)
            else:
                record = self._execute(planned, manifest)
            for role, artifact in record["outputs"].items():
                available[role] = Artifact(**artifact)
        return manifest

    def _load_data(self, input_shape: tuple[int, ...]) -> Any:
        """The run's data; its full preprocessing goes into the manifest (``preprocess``)."""
        self._last_data = self._data(input_shape)
        return self._last_data

    def _steps_until(self, until: str | None) -> list[Step]:
        return steps_until(self.steps, until)

    def _open_manifest(self, initial: dict[str, Path], *, resume: bool, dry_run: bool) -> dict[str, Any]:
        exists = (self.run_dir / MANIFEST_NAME).exists()
        if exists and not resume:
            raise UserError(f"{self.run_dir} already holds a run; pass --resume to continue it, or choose another --out")
        if resume and exists:
            manifest = read_manifest(self.run_dir)
            check_records(manifest)
            if manifest.get("recipe_sha256") != self.recipe_sha256:
                raise UserError(f"cannot --resume {self.run_dir}: it was made by a different recipe or stage options")
            return manifest
        if not dry_run:
            self._make_run_dir()
            initial = {role: _own_copy(Path(path), self.run_dir) for role, path in initial.items()}
        inputs = {role: Artifact.of(role, Path(path).resolve(), run_dir=self.run_dir, stage="input").to_dict() for role, path in initial.items()}
        manifest = new_manifest(recipe=self.recipe, recipe_sha256=self.recipe_sha256, options=_options_dict(self.options), inputs=inputs)
        if not dry_run:
            write_manifest(self.run_dir, manifest)
        return manifest

    def _make_run_dir(self) -> None:
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            probe = self.run_dir / ".write-test"
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))  # never through a planted link
            probe.unlink()
        except OSError as error:
            raise UserError(f"output directory {self.run_dir} is not writable: {error.strerror or error}") from None

    def _check_roles(self, steps: list[Step], available: dict[str, Artifact]) -> None:
        roles = set(available)
        for step in steps:
            stage = stage_class(step.use)
            missing = [role for role in stage.consumes if role != ALL_ROLES and role not in roles]
            if missing:
                raise UserError(f"stage {step.use} needs a {missing[0]} input, which no earlier stage or input provides")
            roles.update(stage.produces)

    def _plan(self, index: int, step: Step, available: dict[str, Artifact], manifest: dict[str, Any], *, resume: bool) -> PlannedStage:
        stage = stage_class(step.use)
        roles = sorted(available) if ALL_ROLES in stage.consumes else list(stage.consumes)
        inputs = {role: available[role] for role in roles}
        identity = {
            "name": stage.name,
            "version": stage.version,
            "config": config_to_dict(step.config),
            "inputs": {role: artifact.sha256 for role, artifact in inputs.items()},
            "options": self.options.fingerprint() if stage.uses_data else {"seed": self.options.seed},
        }
        if ALL_ROLES in stage.consumes:
            identity["history"] = [r["id"] for r in manifest["stages"] if r["index"] < index]
        stage_id = sha256_json(identity)
        record = stage_record(manifest, index)
        done = (
            resume
            and record is not None
            and record["id"] == stage_id
            and record["status"] == "done"
            and all(Artifact(**a).is_intact(self.run_dir) for a in record["outputs"].values())
        )
        return PlannedStage(index, step, stage_id, "skip" if done else "run", inputs)

    def _execute(self, planned: PlannedStage, manifest: dict[str, Any]) -> dict[str, Any]:
        stage = stage_class(planned.step.use)()
        stage_dir = check_tree(self.run_dir, stage_dir_name(planned.index, stage.name))  # no link anywhere it writes
        record = {
            "index": planned.index,
            "name": stage.name,
            "version": stage.version,
            "id": planned.stage_id,
            "config": config_to_dict(planned.step.config),
            "inputs": {role: artifact.to_dict() for role, artifact in planned.inputs.items()},
            "outputs": {},
            "metrics": {},
            "status": "running",
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "error": None,
        }
        start = time.perf_counter()
        existing = _files_under(stage_dir)
        try:
            put_stage_record(manifest, record)
            write_manifest(self.run_dir, manifest)
            context = StageContext(
                run_dir=self.run_dir,
                stage_dir=stage_dir,
                stage_id=planned.stage_id,
                options=self.options,
                history=[r for r in manifest["stages"] if r["index"] < planned.index],
                load_data=self._load_data,
                log=self.log,
            )
            inputs = {role: artifact.verified(self.run_dir) for role, artifact in planned.inputs.items()}
            self.log(f"{stage.name}: running")
            result = _run_stage(stage, context, planned.step.config, inputs)
            record["outputs"] = {
                role: Artifact.of(role, _own_output(self.run_dir, path), run_dir=self.run_dir, stage=stage.name).to_dict()
                for role, path in result.outputs.items()
            }
            record["metrics"] = result.metrics
            record["status"] = "done"
        except BaseException as error:
            record["status"] = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            record["error"] = _describe(error)
            if record["status"] == "failed":
                _remove_partial_outputs(stage_dir, keep=existing)
            self._close_record(manifest, record, start, failing=True)
            raise
        self._close_record(manifest, record, start, failing=False)
        self.log(f"{stage.name}: done in {record['seconds']:.1f} s")
        return record

    def _close_record(self, manifest: dict[str, Any], record: dict[str, Any], start: float, *, failing: bool) -> None:
        """Write the stage's final record. When the stage already failed (a full disk, say), a failed
        manifest write must not hide that error: the run stays resumable from the last finished stage."""
        record["seconds"] = round(time.perf_counter() - start, 3)
        record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        put_stage_record(manifest, record)
        if self._last_data is not None:
            manifest["preprocess"] = self._last_data.preprocessing_record()
        try:
            write_manifest(self.run_dir, manifest)
        except OSError as error:
            if not failing:
                raise UserError(f"{record['name']}: cannot write the run manifest: {error.strerror or error}") from None


def steps_until(steps: list[Step], until: str | None) -> list[Step]:
    """The steps up to and including ``until`` (all when ``None``)."""
    if until is None:
        return steps
    names = [step.use for step in steps]
    if until not in names:
        raise UserError(f"--until {until!r} is not a stage of this recipe; allowed: {', '.join(names)}")
    return steps[: names.index(until) + 1]


def check_steps(steps: list[Step]) -> None:
    """Every step's settings (each stage's ``check``): called before anything of a run is created."""
    for step in steps:
        _check_step(step)


def _own_output(run_dir: Path, path: Path) -> Path:
    """A stage's output: a regular file inside the run, no link on the way."""
    absolute = Path(os.path.abspath(path))
    if not absolute.is_relative_to(run_dir):
        raise UserError(f"stage output {path} is not inside the run directory {run_dir}")
    return run_path(run_dir, absolute.relative_to(run_dir))


def _check_step(step: Step) -> None:
    try:
        stage_class(step.use)().check(step.config)
    except UserError as error:
        message = str(error)
        raise type(error)(message if message.startswith(f"{step.use}:") else f"{step.use}: {message}") from None


def data_loader(options: RunOptions) -> Callable[[tuple[int, ...]], Any]:
    """``load_data(input_shape)`` for the stages of a run with ``options`` (one load per input shape)."""
    cache: dict[tuple[int, ...], Any] = {}

    def load_data(input_shape: tuple[int, ...]) -> Any:
        key = tuple(input_shape)
        if key not in cache:
            prep = Preprocess(**{"scale": None, **_preprocess_kwargs(options.preprocess)}) if options.preprocess else None
            cache[key] = load_dataset(
                options.data,
                preprocess=prep,
                model_input_shape=key,
                train_limit=options.train_limit,
                test_limit=options.test_limit,
                seed=options.seed,
                workers=options.workers,
                pin_memory=options.train_device != "cpu" and _has_cuda(),
            )
        return cache[key]

    return load_data


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _files_under(directory: Path) -> set[Path]:
    return {path for path in directory.rglob("*") if path.is_file() or path.is_symlink()}


def _remove_partial_outputs(stage_dir: Path, *, keep: set[Path]) -> None:
    """After a stage failed: delete the files this attempt wrote in its own stage directory (never a
    file that was there before), except epoch checkpoints, which let ``--resume`` continue training.
    Best effort: a failure to delete must not hide the stage's own error."""
    try:
        for path in sorted(_files_under(stage_dir) - keep, reverse=True):
            if not path.name.endswith(CHECKPOINT_NAME):
                path.unlink(missing_ok=True)
        for folder in sorted((p for p in stage_dir.rglob("*") if p.is_dir()), reverse=True):
            if not any(folder.iterdir()):
                folder.rmdir()
    except OSError:
        pass


def _own_copy(path: Path, run_dir: Path) -> Path:
    """An input inside the run directory as is; one outside copied into ``00-input/`` (a manifest names only its own files)."""
    path = path.resolve()
    if path.is_relative_to(run_dir):
        return run_path(run_dir, path.relative_to(run_dir))
    copy = check_tree(run_dir, "00-input") / path.name
    run_path(run_dir, copy.relative_to(run_dir), must_exist=False)
    shutil.copyfile(path, copy)
    return copy


def _silent(_: str) -> None:
    """The log of the non-zero ranks."""


def _run_stage(stage, context: StageContext, config, inputs: dict[str, Path]):
    """Run one stage; a failed write (disk full, read-only directory) becomes a one-line ``UserError``."""
    try:
        return stage.run(context, config, inputs)
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        raise UserError(f"{stage.name}: I/O error: {error.strerror or error}{where}") from None


def _preprocess_kwargs(data: dict[str, Any]) -> dict[str, Any]:
    return {key: tuple(value) if isinstance(value, list) else value for key, value in data.items()}


def _options_dict(options: RunOptions) -> dict[str, Any]:
    return {**options.fingerprint(), "target": options.target, "threads": options.threads, "device": options.device,
            "model": options.model_source}


def _describe(error: BaseException) -> str:
    if isinstance(error, UserError):
        return str(error)
    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{type(error).__name__}: {error}{where}"
