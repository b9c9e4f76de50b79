"""The Stage interface: run-wide options, the context a stage runs in, and its result.

The stages themselves, their order and their registry live in ``pipeline.stages``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from deploy.tvm.targets import DEFAULT_TARGET


@dataclass
class RunOptions:
    """Run-wide settings shared by every stage (not part of any one stage's config)."""

    data: str = "mnist"
    seed: int = 0
    target: str = DEFAULT_TARGET
    train_limit: int = 0
    test_limit: int = 0
    trust_pickle: bool = False
    threads: int = 0
    progress: bool = True
    device: str = ""
    preprocess: dict[str, Any] = field(default_factory=dict)
    max_accuracy_drop: float | None = None
    trusted_archs: tuple[str, ...] = ()
    model_source: str = ""  # the model file the user named (the run works on its own copy in 00-input)
    workers: int | None = None  # DataLoader worker processes (None: 2 for image folders, 0 for arrays)
    train_device: str = "auto"  # auto | cpu | cuda: where training runs (export, compile, report stay on the CPU)
    amp: bool = False  # mixed precision training (float16 on CUDA, bfloat16 on the CPU)
    checkpoint_every: int = 0  # also checkpoint every N training steps (0: at epoch ends only)
    lr_scale: float = 1.0  # multiplies every training stage's learning rate
    epoch_steps: int = 0  # train at most N batches per epoch (0: whole epochs)

    def fingerprint(self) -> dict[str, Any]:
        """The options that change what stages compute (enter every stage id); the knobs added later
        enter only when set, so the ids of runs without them stay as they were."""
        values = {
            "data": self.data,
            "seed": self.seed,
            "train_limit": self.train_limit,
            "test_limit": self.test_limit,
            "preprocess": self.preprocess,
        }
        changed = {"amp": (self.amp, False), "lr_scale": (self.lr_scale, 1.0), "epoch_steps": (self.epoch_steps, 0)}
        return {**values, **{key: value for key, (value, default) in changed.items() if value != default}}


@dataclass
class StageContext:
    """What a stage may use: its own output directory, run options, lazy data, prior records."""

    run_dir: Path
    stage_dir: Path
    stage_id: str
    options: RunOptions
    history: list[dict[str, Any]]
    load_data: Callable[[tuple[int, ...]], Any]
    log: Callable[[str], None]


@dataclass
class StageResult:
    outputs: dict[str, Path]
    metrics: dict[str, Any] = field(default_factory=dict)


class Stage:
    """Base class. Subclasses set ``name``, ``version``, ``Config``, ``consumes``, ``produces``."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    Config: ClassVar[type]
    consumes: ClassVar[tuple[str, ...]] = ("model",)
    produces: ClassVar[tuple[str, ...]] = ("model",)
    uses_data: ClassVar[bool] = True
    summary: ClassVar[str] = ""

    def check(self, config: Any) -> None:
        """Refuse a bad ``config`` with one ``UserError`` line before any stage of the run starts
        (``--dry-run`` included); ``run`` may assume it passed."""

    def run(self, ctx: StageContext, config: Any, inputs: dict[str, Path]) -> StageResult:
        raise NotImplementedError
