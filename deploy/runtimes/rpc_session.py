"""Session over TVM RPC: run and time an exported VM library on a remote device.

Device string ``rpc://HOST:PORT[/KEY]`` names a ``tvm.rpc`` server (started on the device with
``python -m tvm.exec.rpc_server --host 0.0.0.0 --port PORT [--key KEY]``). The library must be
compiled for the device's target (e.g. preset ``arm64``). :meth:`RemoteTvmSession.time` uses the
remote ``time_evaluator``, so network transfers are not counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from deploy.runtimes.errors import SessionError
from deploy.runtimes.session import Session, ordered_inputs
from deploy.runtimes.tvm_session import flatten_outputs, input_names_for, library_path

_RPC_PATTERN = re.compile(r"^rpc://(?P<host>[^:/]+):(?P<port>\d+)(?:/(?P<key>[^/]+))?$")


@dataclass(frozen=True)
class RpcAddress:
    """Parsed ``rpc://HOST:PORT[/KEY]``."""

    host: str
    port: int
    key: str


def parse_rpc_device(device: str) -> RpcAddress:
    """Parse an RPC device string.

    Raises:
        SessionError: the string is not ``rpc://HOST:PORT[/KEY]``.
    """
    match = _RPC_PATTERN.match(device)
    if match is None:
        raise SessionError(f"bad RPC device {device!r}; expected rpc://HOST:PORT[/KEY]")
    return RpcAddress(match["host"], int(match["port"]), match["key"] or "")


class RemoteTvmSession(Session):
    """Uploads the library to an RPC server and runs ``main`` on its CPU."""

    kind = "tvm"

    def __init__(self, artifact, *, device: str) -> None:
        from tvm import relax, rpc

        super().__init__(device=device)
        address = parse_rpc_device(device)
        path = library_path(artifact)
        self.input_names = input_names_for(path)
        try:
            self._remote = rpc.connect(address.host, address.port, key=address.key)
        except Exception as error:  # noqa: BLE001 - tvm raises TVMError / OSError variants
            raise SessionError(f"cannot connect to {device}: {str(error).splitlines()[0]}") from error
        self._remote.upload(str(path))
        self._device = self._remote.cpu()
        self._vm = relax.VirtualMachine(self._remote.load_module(path.name), self._device)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return flatten_outputs(self._vm["main"](*self._arguments(feeds)))

    def time(self, feeds: dict[str, np.ndarray], *, repeat: int = 10, warmup: int = 2) -> list[float]:
        """Seconds per run measured on the device by the remote ``time_evaluator``."""
        arguments = self._arguments(feeds)
        self._vm.set_input("main", *arguments)
        timer = self._vm.time_evaluator("invoke_stateful", self._device, number=1, repeat=repeat + warmup)
        return list(timer("main").results)[warmup:]

    def _arguments(self, feeds: dict[str, np.ndarray]) -> list:
        import tvm

        return [tvm.runtime.tensor(array, device=self._device) for array in ordered_inputs(feeds, self.input_names)]
