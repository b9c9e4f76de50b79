"""Session over a TVM Relax VM library (``model.so`` from ``deploy.tvm.compile_onnx``), on the host."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from deploy.runtimes.errors import SessionError
from deploy.runtimes.session import Session, ordered_inputs

REPORT_NAME = "compile_report.json"


class TvmSession(Session):
    """Runs ``main`` of an exported VM library on the host CPU."""

    kind = "tvm"

    def __init__(self, artifact, *, device: str = "cpu") -> None:
        import tvm
        from tvm import relax

        super().__init__(device=device)
        if device != "cpu":
            raise SessionError(f"local TVM device {device!r} is not supported; use 'cpu' or rpc://HOST:PORT[/KEY]")
        path = library_path(artifact)
        self.input_names = input_names_for(path)
        self._device = tvm.cpu()
        self._vm = relax.VirtualMachine(tvm.runtime.load_module(str(path)), self._device)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        import tvm

        arguments = [tvm.runtime.tensor(array, device=self._device)
                     for array in ordered_inputs(feeds, self.input_names)]
        return flatten_outputs(self._vm["main"](*arguments))


def library_path(artifact) -> Path:
    """The ``model.so`` of an artifact given as the library or its directory."""
    path = Path(artifact)
    path = path / "model.so" if path.is_dir() else path
    if not path.is_file():
        raise SessionError(f"TVM library not found: {path}")
    return path


def input_names_for(library: Path) -> list[str] | None:
    """Input names from the ``compile_report.json`` next to the library, if there is one."""
    report = library.with_name(REPORT_NAME)
    if not report.is_file():
        return None
    name = json.loads(report.read_text()).get("input_name")
    return [name] if name else None


def flatten_outputs(result) -> list[np.ndarray]:
    """VM result (a tensor or nested tuples of tensors) as a flat list of numpy arrays."""
    if hasattr(result, "numpy"):
        return [result.numpy()]
    outputs: list[np.ndarray] = []
    for item in result:
        outputs.extend(flatten_outputs(item))
    return outputs
