"""The model a command runs on, as its command line names it: the file, and how to read it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.model.input_shape import parse_shape


@dataclass(frozen=True)
class RunInput:
    """What ``compress run`` and the one-stage commands hand to the run: typed once, at the CLI.

    Attributes:
        model_path: the model file: a compress bundle, a ``state_dict`` checkpoint, TorchScript, a
            ``torch.export`` ``.pt2`` file, or an ONNX file (which starts the run at the compile stage).
        arch: the architecture of a bare ``state_dict``: a registered name or ``package.module:factory``
            (None: the checkpoint names it).
        input_shape: per-sample input shape ``(C, H, W)`` (None: the checkpoint's, or the ONNX graph's).
    """

    model_path: Path
    arch: str | None = None
    input_shape: tuple[int, ...] | None = None

    @classmethod
    def from_flags(cls, model_path: Path, *, arch: str | None, input_shape: str | None) -> RunInput:
        """From ``MODEL``, ``--arch`` and ``--input-shape`` (a bad shape is one ``UserError`` line)."""
        return cls(Path(model_path), arch=arch or None, input_shape=parse_shape(input_shape, what="--input-shape"))

    @property
    def is_onnx(self) -> bool:
        return self.model_path.suffix == ".onnx"
