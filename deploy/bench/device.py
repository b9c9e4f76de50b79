"""Batch-1 latency of an arm64 bundle on a real device, through adb or ssh: no Python on the device.

The bundle is copied to the device as is, and its native runner times the model there
(``runner --latency model.so SHAPE WARMUP RUNS`` prints one JSON line; see ``deploy/tvm/runner``).
``qemu`` runs the same runner on this machine under ``qemu-aarch64``: a stand-in that checks the
whole path, whose numbers are emulation time, not device latency.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from deploy.tvm.bundle import AARCH64_SYSROOT

LINKS = ("adb", "ssh", "qemu")
ANDROID_DIR = "/data/local/tmp/compress-bundle"
SSH_DIR = "/tmp/compress-bundle"
ADDRESS = re.compile(r"[A-Za-z0-9_.@:%\[\]][A-Za-z0-9_.@:%\[\]-]{0,252}")


class DeviceError(RuntimeError):
    """The device cannot be reached, the copy fails, or the runner fails there."""


@dataclass(frozen=True)
class DeviceLink:
    """How to reach the device: ``adb`` (``address`` = serial), ``ssh`` (``address`` = [user@]host) or
    ``qemu`` (this machine, emulated)."""

    kind: str
    address: str = ""

    def __post_init__(self) -> None:
        if self.kind in ("adb", "ssh") and not ADDRESS.fullmatch(self.address):
            raise DeviceError(f"{self.kind} address {self.address[:80]!r} must be a host name / serial ([user@]host: letters, "
                              "digits, . _ - @ : [ ] %), not starting with '-' (it would be read as an option)")

    @property
    def label(self) -> str:
        return "qemu-aarch64 on this machine (emulated: not device latency)" if self.kind == "qemu" else f"{self.kind}:{self.address}"

    @property
    def real(self) -> bool:
        return self.kind != "qemu"


def measure_on_device(bundle_dir: Path, shape: tuple[int, ...], *, link: DeviceLink, warmup: int = 10, runs: int = 100,
                      timeout: float = 600) -> dict:
    """Copy ``bundle_dir`` to the device, time the model there; returns the runner's statistics
    (``median_ms``, ``p90_ms``, ``min_ms``, ``mean_ms``, ``warmup``, ``runs``)."""
    if link.kind not in LINKS:
        raise DeviceError(f"unknown device link {link.kind!r}; allowed: {', '.join(LINKS)}")
    bundle = Path(bundle_dir).resolve()
    arguments = f"--latency ./model.so {','.join(str(int(v)) for v in shape)} {int(warmup)} {int(runs)}"
    for command in _commands(bundle, arguments, link):
        output = _run(command, timeout=timeout)
    try:
        stats = json.loads(output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise DeviceError(f"the runner printed no latency JSON: {output.strip()[-200:]!r}") from None
    return stats


def _commands(bundle: Path, arguments: str, link: DeviceLink) -> list[list[str]]:
    if link.kind == "adb":
        adb = ["adb", "-s", link.address]
        return [adb + ["push", f"{bundle}/.", ANDROID_DIR],
                adb + ["shell", f"cd {ANDROID_DIR} && chmod 755 runner && ./runner {arguments}"]]
    if link.kind == "ssh":
        return [["ssh", "--", link.address, f"mkdir -p {SSH_DIR}"], ["scp", "-q", "-r", "--", f"{bundle}/.", f"{link.address}:{SSH_DIR}/"],
                ["ssh", "--", link.address, f"cd {SSH_DIR} && ./runner {arguments}"]]
    return [["bash", "-c", f"cd {shlex.quote(str(bundle))} && qemu-aarch64 -L {AARCH64_SYSROOT} ./runner {arguments}"]]


def _run(command: list[str], *, timeout: float) -> str:
    if shutil.which(command[0]) is None:
        raise DeviceError(f"{command[0]} not found on PATH")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"{' '.join(command[:3])} ... timed out after {timeout:.0f} s") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise DeviceError(f"{' '.join(command[:3])} ... failed ({done.returncode}): {detail[-1] if detail else 'no output'}")
    return done.stdout
