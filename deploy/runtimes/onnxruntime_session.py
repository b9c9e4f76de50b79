"""Session over an ONNX file with onnxruntime's CPU execution provider."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deploy.runtimes.errors import SessionError
from deploy.runtimes.session import Session

_PROVIDERS = {"cpu": "CPUExecutionProvider"}


class OnnxRuntimeSession(Session):
    """Runs an ONNX model with onnxruntime (default graph optimisations)."""

    kind = "onnxruntime"

    def __init__(self, artifact, *, device: str = "cpu", threads: int = 0) -> None:
        import onnxruntime

        super().__init__(device=device)
        if device not in _PROVIDERS:
            raise SessionError(f"onnxruntime device {device!r} is not supported; allowed: {', '.join(_PROVIDERS)}")
        if not Path(artifact).is_file():
            raise SessionError(f"ONNX file not found: {artifact}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime's default (one per physical core)
        self.threads = threads or None
        self._session = onnxruntime.InferenceSession(str(artifact), options, providers=[_PROVIDERS[device]])
        self.input_names = [value.name for value in self._session.get_inputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        unknown = sorted(set(feeds) - set(self.input_names))
        if unknown:
            raise SessionError(f"unknown inputs {unknown}; the model takes {self.input_names}")
        return list(self._session.run(None, feeds))
