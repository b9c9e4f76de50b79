"""Session over a TVM Relax VM library (``model.so`` from ``deploy.tvm.compile_onnx``), on the host."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from deploy.runtimes.errors import SessionError
from deploy.runtimes.session import Session, ordered_inputs

REPORT_NAME = "compile_report.json"
ALIGNMENT = 64  # TVM accepts DLPack data aligned to 64 bytes only


class TvmSession(Session):
    """Runs ``main`` of an exported VM library on the host CPU.

    ``threads`` (> 0) sets ``TVM_NUM_THREADS``, which TVM reads once, when its thread pool first
    starts: it applies only if no TVM session of this process has run a parallel kernel yet.
    ``self.threads`` is the count TVM actually uses.
    """

    kind = "tvm"

    def __init__(self, artifact, *, device: str = "cpu", threads: int = 0) -> None:
        import os

        if threads > 0:
            os.environ["TVM_NUM_THREADS"] = str(threads)
        import tvm
        from tvm import relax

        super().__init__(device=device)
        if device != "cpu":
            raise SessionError(f"local TVM device {device!r} is not supported; use 'cpu' or rpc://HOST:PORT[/KEY]")
        path = library_path(artifact)
        self.input_names = input_names_for(path)
        self._device = tvm.cpu()
        self._vm = relax.VirtualMachine(tvm.runtime.load_module(str(path)), self._device)
        self._buffers: dict = {}
        self.threads = int(tvm.get_global_func("runtime.NumThreads")())

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        import tvm

        arguments = [tvm.runtime.from_dlpack(self._aligned(index, array))
                     for index, array in enumerate(ordered_inputs(feeds, self.input_names))]
        return flatten_outputs(self._vm["main"](*arguments))

    def _aligned(self, index: int, array: np.ndarray) -> np.ndarray:
        """``array`` in a reused 64-byte aligned float buffer, shared with TVM without a copy (DLPack).

        ``tvm.runtime.tensor(array)`` copies through TVM and costs about 30 us per call, more than a
        whole small model; this costs about 1 us.
        """
        array = np.asarray(array)
        key = (index, array.shape, array.dtype.str)
        buffer = self._buffers.get(key)
        if buffer is None:
            raw = np.empty(array.nbytes + ALIGNMENT, dtype=np.uint8)
            start = (-raw.ctypes.data) % ALIGNMENT
            buffer = raw[start : start + array.nbytes].view(array.dtype).reshape(array.shape)
            self._buffers[key] = buffer
        np.copyto(buffer, array)
        return buffer


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
        return [_to_numpy(result)]
    outputs: list[np.ndarray] = []
    for item in result:
        outputs.extend(flatten_outputs(item))
    return outputs


def _to_numpy(tensor) -> np.ndarray:
    """A host tensor through DLPack (about 1 us; ``numpy()`` costs about 10), a remote one by copy.

    Always a copy: the VM may reuse an output's storage on its next call.
    """
    try:
        return np.array(np.from_dlpack(tensor))
    except (RuntimeError, TypeError, BufferError):
        return tensor.numpy()
