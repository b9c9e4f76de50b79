"""``load_session``: the one entry point that picks a runtime back-end by name (a data table)."""

from __future__ import annotations

from types import MappingProxyType

from deploy.runtimes.errors import SessionError
from deploy.runtimes.onnxruntime_session import OnnxRuntimeSession
from deploy.runtimes.rpc_session import RemoteTvmSession
from deploy.runtimes.session import Session
from deploy.runtimes.torch_session import TorchSession
from deploy.runtimes.tvm_session import TvmSession


def _torch(artifact, device: str, threads: int) -> Session:
    return TorchSession(artifact, device=device)


def _onnxruntime(artifact, device: str, threads: int) -> Session:
    return OnnxRuntimeSession(artifact, device=device, threads=threads)


def _tvm(artifact, device: str, threads: int) -> Session:
    if device.startswith("rpc://"):
        return RemoteTvmSession(artifact, device=device)
    return TvmSession(artifact, device=device, threads=threads)


_FACTORIES = MappingProxyType({"torch": _torch, "onnxruntime": _onnxruntime, "tvm": _tvm})
RUNTIME_KINDS = tuple(_FACTORIES)


def load_session(kind: str, artifact, device: str = "cpu", *, threads: int = 0) -> Session:
    """Load ``artifact`` with back-end ``kind``.

    Args:
        kind: ``"torch"`` (``nn.Module`` or TorchScript path), ``"onnxruntime"`` (ONNX path) or
            ``"tvm"`` (``model.so`` or its directory).
        artifact: the model, as above.
        device: ``"cpu"``, or ``"rpc://HOST:PORT[/KEY]"`` for a TVM library on a remote device.
        threads: intra-op threads of onnxruntime / the TVM runtime (0: the runtime's default).

    Raises:
        SessionError: unknown kind, or the back-end rejected the artifact or device.
    """
    if kind not in _FACTORIES:
        raise SessionError(f"unknown runtime {kind!r}; allowed: {', '.join(RUNTIME_KINDS)}")
    if device.startswith("rpc://") and kind != "tvm":
        raise SessionError(f"runtime {kind!r} cannot run on {device}; only 'tvm' supports rpc://")
    return _FACTORIES[kind](artifact, device, threads)
