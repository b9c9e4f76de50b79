"""arm64 device bundle: model library, aarch64 TVM runtime, C++ runner, manifest, README.

Layout of a bundle directory (copy it to the board as is)::

    model.so            exported with the aarch64 cross compiler
    runner              aarch64 executable (rpath $ORIGIN/lib)
    lib/libtvm_runtime.so, lib/libtvm_ffi.so
    manifest.json       input name / shape, files with sha256, runtime versions, run command
    README.txt          how to run it on the device

:func:`verify_arm64_bundle` runs the bundle under ``qemu-aarch64`` on this machine and compares
its output with the host build's. qemu timings say nothing about real arm64 speed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from deploy.tvm.arm64_runtime import (
    TVM_FFI_VERSION,
    TVM_VERSION,
    build_runner,
    fetch_arm64_runtime,
)
from deploy.tvm.errors import BundleError

MANIFEST_FORMAT = "compress-tvm-bundle/1"
MAX_INPUT_VALUES = 2**26  # values per input, as for model bundles
AARCH64_SYSROOT = "/usr/aarch64-linux-gnu"
_README = """compress TVM bundle for {target} (aarch64 Linux, glibc)

Run on the device, in this directory:
    ./runner ./model.so input.bin {shape} output.bin
    ./runner --latency ./model.so {shape} [WARMUP [RUNS]]

(the ./ matters: a bare model.so is looked up on the library path, not in this directory)

input.bin  raw little-endian float32, one or more samples of shape {shape} (C order)
output.bin raw float32 outputs, concatenated; their shapes are printed
--latency  warm-up runs (default 10), then RUNS timed runs (default 100) of a zero input; prints
           {{"warmup", "runs", "median_ms", "p90_ms", "min_ms", "mean_ms"}} as one JSON line
           (`compress bench-device RUN --adb SERIAL | --ssh HOST` runs this and adds it to the report)

This runtime is built for glibc (arm64 Linux boards). Android has no glibc: there the runtime and the
runner must be built with the Android NDK (see the compress README, "Measuring on a phone").

The runner finds lib/libtvm_runtime.so and lib/libtvm_ffi.so through its rpath ($ORIGIN/lib).
Built with apache-tvm {tvm} / apache-tvm-ffi {ffi}.
"""


@dataclass(frozen=True)
class BundleCheck:
    """Result of running a bundle under qemu against the host build."""

    max_abs_error: float
    atol: float
    output_shape: tuple[int, ...]
    seconds: float


def make_arm64_bundle(library: str | Path, *, bundle_dir: str | Path, input_name: str,
                      input_shape: tuple[int, ...], target: str = "arm64", cache_dir: Path | None = None) -> Path:
    """Assemble a bundle directory around an aarch64 ``model.so``; returns ``bundle_dir``.

    Raises:
        BundleError: ``library`` is not an AArch64 ELF, or the runtime / runner is unavailable.
    """
    library = Path(library)
    if elf_machine(library) != "aarch64":
        raise BundleError(f"{library} is not an AArch64 shared library (found {elf_machine(library)})")
    runtime = fetch_arm64_runtime(cache_dir=cache_dir)
    bundle = Path(bundle_dir)
    (bundle / "lib").mkdir(parents=True, exist_ok=True)
    shutil.copy2(library, bundle / "model.so")
    shutil.copy2(build_runner(runtime=runtime, cache_dir=cache_dir), bundle / "runner")
    for path in runtime.libraries:
        shutil.copy2(path, bundle / "lib" / path.name)
    shape_text = ",".join(str(int(v)) for v in input_shape)
    (bundle / "README.txt").write_text(_README.format(target=target, shape=shape_text, tvm=TVM_VERSION,
                                                      ffi=TVM_FFI_VERSION))
    (bundle / "manifest.json").write_text(json.dumps(_manifest(bundle, target, input_name, input_shape), indent=1))
    return bundle


def run_arm64_bundle(bundle_dir: str | Path, samples: np.ndarray, *, qemu: str = "qemu-aarch64",
                     sysroot: str = AARCH64_SYSROOT) -> np.ndarray:
    """Run the bundle's runner under qemu on every sample (``samples[i]`` has the bundle's input
    shape) in one process; returns the outputs as ``[n_samples, -1]``.

    Raises:
        BundleError: qemu is missing or the runner fails.
    """
    if shutil.which(qemu) is None:
        raise BundleError(f"{qemu} not found on PATH (apt install qemu-user)")
    bundle = Path(bundle_dir).resolve()
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    with tempfile.TemporaryDirectory() as work:
        input_path, output_path = Path(work) / "input.bin", Path(work) / "output.bin"
        samples.tofile(input_path)
        shape = ",".join(str(v) for v in samples.shape[1:])
        command = [qemu, "-L", sysroot, str(bundle / "runner"), str(bundle / "model.so"), str(input_path), shape,
                   str(output_path)]
        completed = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1800)
        if completed.returncode != 0:
            raise BundleError(f"runner under qemu failed ({completed.returncode}): {completed.stderr.strip()[-300:]}")
        return np.fromfile(output_path, dtype=np.float32).reshape(len(samples), -1)


def verify_arm64_bundle(bundle_dir: str | Path, input: np.ndarray, expected: np.ndarray, *, atol: float = 1e-4,
                        qemu: str = "qemu-aarch64", sysroot: str = AARCH64_SYSROOT) -> BundleCheck:
    """Run the bundle's runner under qemu on ``input`` and compare with ``expected`` (host output).

    Raises:
        BundleError: qemu is missing, the runner fails, or the outputs differ by more than ``atol``.
    """
    import time

    start = time.perf_counter()
    actual = run_arm64_bundle(bundle_dir, np.asarray(input)[None], qemu=qemu, sysroot=sysroot).reshape(-1)
    expected = np.asarray(expected, dtype=np.float32)
    if actual.size != expected.size:
        raise BundleError(f"bundle output has {actual.size} values, host build {expected.size}")
    error = float(np.max(np.abs(actual - expected.reshape(-1)))) if actual.size else 0.0
    if not error <= atol:
        raise BundleError(f"bundle output differs from the host build by {error:.3g} > atol {atol:g}")
    return BundleCheck(error, atol, tuple(expected.shape), time.perf_counter() - start)


@dataclass(frozen=True)
class BundleKind:
    """How a target's library ships to its device and how this machine checks the shipment.

    Attributes:
        name: kind of bundle (the device's ABI).
        emulator: command that runs the bundle's runner here (checks skip when it is missing).
        make: ``make(library, *, bundle_dir, input_name, input_shape, target) -> bundle_dir``.
        run: ``run(bundle_dir, samples) -> outputs [n_samples, -1]`` under the emulator.
        verify: ``verify(bundle_dir, input, expected, *, atol) -> BundleCheck`` under the emulator.
        description: one line for reports.
        install_hint: how to install ``emulator`` (for the line that says a check was skipped).
    """

    name: str
    emulator: str
    make: Callable[..., Path]
    run: Callable[..., np.ndarray]
    verify: Callable[..., BundleCheck]
    description: str
    install_hint: str = ""

    def emulator_installed(self) -> bool:
        """True when ``emulator`` is on ``PATH``."""
        return shutil.which(self.emulator) is not None


AARCH64_LINUX = BundleKind(
    name="aarch64-linux-glibc", emulator="qemu-aarch64", make=make_arm64_bundle, run=run_arm64_bundle,
    verify=verify_arm64_bundle,
    description="model.so with the aarch64 TVM runtime, a C++ runner and a manifest, checked under qemu-aarch64",
    install_hint="apt-get install qemu-user",
)


@dataclass(frozen=True)
class BundleFinding:
    """One file of a bundle against its manifest: ``path`` relative to the bundle."""

    path: str
    ok: bool
    detail: str


def add_bundle_file(bundle_dir: str | Path, name: str, data: bytes) -> Path:
    """Write ``name`` into the bundle and list it (size, sha256) in the bundle's manifest."""
    bundle = Path(bundle_dir)
    (bundle / name).write_bytes(data)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"] = _file_entries(bundle)
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return bundle / name


def bundle_target(bundle_dir: str | Path) -> str:
    """The target preset named in a bundle's manifest.

    Raises:
        BundleError: the manifest is missing, a link, unreadable or malformed.
    """
    target = _read_bundle_manifest(Path(bundle_dir)).get("target")
    if not isinstance(target, str):
        raise BundleError(f"{Path(bundle_dir) / 'manifest.json'} names no target")
    return target


def audit_bundle(bundle_dir: str | Path) -> tuple[dict, list[BundleFinding]]:
    """The bundle's manifest (its ``input_shape`` checked) and one finding per file: every listed
    file must be a regular file (no symbolic link on its path) with the listed sha256, and no other
    file, link or special file may be in the bundle. ``os.lstat`` throughout: links are never followed.

    Raises:
        BundleError: the manifest itself is missing, a link, unreadable or malformed.
    """
    bundle = Path(bundle_dir)
    manifest = _read_bundle_manifest(bundle)
    listed = {}
    for entry in manifest["files"]:
        relative = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(relative, str) or not isinstance(entry.get("sha256"), str) or not _plain_relative(relative):
            raise BundleError(f"{bundle}/manifest.json: malformed file entry {str(entry)[:80]}")
        listed[relative] = entry["sha256"]
    findings = [_listed_finding(bundle, relative, digest) for relative, digest in sorted(listed.items())]
    for parent, folders, files in os.walk(bundle, followlinks=False):
        for name in sorted(folders + files):
            path = Path(parent) / name
            relative = str(path.relative_to(bundle))
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                findings.append(BundleFinding(relative, False, "is a symbolic link (a bundle holds only its own files)"))
            elif not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                findings.append(BundleFinding(relative, False, "is not a regular file"))
            elif stat.S_ISREG(mode) and relative not in listed and relative != "manifest.json":
                findings.append(BundleFinding(relative, False, "is not listed in the bundle manifest"))
    return manifest, findings


def checked_bundle(bundle_dir: str | Path) -> dict:
    """:func:`audit_bundle`'s manifest when every finding is ok.

    Raises:
        BundleError: the first problem found.
    """
    manifest, findings = audit_bundle(bundle_dir)
    bad = [f for f in findings if not f.ok]
    if bad:
        raise BundleError(f"bundle file {bad[0].path} {bad[0].detail}")
    return manifest


def _read_bundle_manifest(bundle: Path) -> dict:
    path = bundle / "manifest.json"
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise BundleError(f"{path} is not a regular file")
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BundleError(f"{path} is unreadable: {str(error)[:160]}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT or not isinstance(manifest.get("files"), list):
        raise BundleError(f"{path} is not a {MANIFEST_FORMAT} manifest with a files list")
    shape = manifest.get("input_shape")
    if (not isinstance(shape, list) or not 1 <= len(shape) <= 8 or not all(type(v) is int and v > 0 for v in shape)
            or math.prod(shape) > MAX_INPUT_VALUES):
        raise BundleError(f"{path}: input_shape must be 1 to 8 positive integers with at most {MAX_INPUT_VALUES} values, "
                          f"got {str(shape)[:80]}")
    return manifest


def _plain_relative(relative: str) -> bool:
    parts = Path(relative).parts
    return bool(parts) and not Path(relative).is_absolute() and ".." not in parts and "." not in parts and "\\" not in relative


def _listed_finding(bundle: Path, relative: str, digest: str) -> BundleFinding:
    current = bundle
    for part in Path(relative).parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return BundleFinding(relative, False, "missing")
        if stat.S_ISLNK(mode):
            return BundleFinding(relative, False, "is a symbolic link (a bundle holds only its own files)")
    if not stat.S_ISREG(mode):
        return BundleFinding(relative, False, "is not a regular file")
    ok = hashlib.sha256(current.read_bytes()).hexdigest() == digest
    return BundleFinding(relative, ok, "sha256 matches" if ok else "sha256 differs from the bundle manifest")


def elf_machine(path: str | Path) -> str:
    """Machine of an ELF file from its header: ``"aarch64"``, ``"x86-64"``, ``"arm"`` or ``"other"``."""
    header = Path(path).read_bytes()[:20]
    if header[:4] != b"\x7fELF":
        return "not-elf"
    machine = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    return {0xB7: "aarch64", 0x3E: "x86-64", 0x28: "arm"}.get(machine, "other")


def _manifest(bundle: Path, target: str, input_name: str, input_shape: tuple[int, ...]) -> dict:
    return {
        "format": MANIFEST_FORMAT, "target": target, "input_name": input_name,
        "input_shape": [int(v) for v in input_shape], "input_dtype": "float32",
        "runtime": {"apache-tvm": TVM_VERSION, "apache-tvm-ffi": TVM_FFI_VERSION, "libc": "glibc"},
        "run": "./runner ./model.so input.bin " + ",".join(str(int(v)) for v in input_shape) + " output.bin",
        "latency": "./runner --latency ./model.so " + ",".join(str(int(v)) for v in input_shape) + " 10 100",
        "files": _file_entries(bundle),
    }


def _file_entries(bundle: Path) -> list[dict]:
    files = sorted(p for p in bundle.rglob("*") if p.is_file() and p.name != "manifest.json")
    return [{"path": str(p.relative_to(bundle)), "size": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
            for p in files]
