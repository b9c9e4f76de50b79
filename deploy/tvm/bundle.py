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
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deploy.tvm.arm64_runtime import (
    TVM_FFI_VERSION,
    TVM_VERSION,
    build_runner,
    fetch_arm64_runtime,
)
from deploy.tvm.errors import BundleError

MANIFEST_FORMAT = "compress-tvm-bundle/1"
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


def elf_machine(path: str | Path) -> str:
    """Machine of an ELF file from its header: ``"aarch64"``, ``"x86-64"``, ``"arm"`` or ``"other"``."""
    header = Path(path).read_bytes()[:20]
    if header[:4] != b"\x7fELF":
        return "not-elf"
    machine = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    return {0xB7: "aarch64", 0x3E: "x86-64", 0x28: "arm"}.get(machine, "other")


def _manifest(bundle: Path, target: str, input_name: str, input_shape: tuple[int, ...]) -> dict:
    files = sorted(p for p in bundle.rglob("*") if p.is_file() and p.name != "manifest.json")
    return {
        "format": MANIFEST_FORMAT, "target": target, "input_name": input_name,
        "input_shape": [int(v) for v in input_shape], "input_dtype": "float32",
        "runtime": {"apache-tvm": TVM_VERSION, "apache-tvm-ffi": TVM_FFI_VERSION, "libc": "glibc"},
        "run": "./runner ./model.so input.bin " + ",".join(str(int(v)) for v in input_shape) + " output.bin",
        "latency": "./runner --latency ./model.so " + ",".join(str(int(v)) for v in input_shape) + " 10 100",
        "files": [{"path": str(p.relative_to(bundle)), "size": p.stat().st_size,
                   "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in files],
    }
