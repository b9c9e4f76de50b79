"""The aarch64 TVM runtime and our C++ runner, fetched and built once, cached on disk.

The runtime libraries come from the official aarch64 wheels (``pip download --platform
manylinux_2_28_aarch64``): ``tvm/lib/libtvm_runtime.so``, ``tvm_ffi/lib/libtvm_ffi.so`` and the
tvm-ffi + dlpack headers. They are glibc builds: they run on arm64 Linux boards, not on Android.
The runner (``runner/runner.cc``) is cross-compiled against those headers and libraries.
Everything lives in ``<cache_dir>/tvm-aarch64-<version>/`` (default ``~/.cache/compress``).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from deploy.tvm.errors import BundleError

TVM_VERSION = "0.27.0.post1"
TVM_FFI_VERSION = "0.1.14.post1"
WHEEL_PLATFORM = "manylinux_2_28_aarch64"
RUNNER_SOURCE = Path(__file__).with_name("runner") / "runner.cc"
RUNTIME_LIBRARIES = ("libtvm_runtime.so", "libtvm_ffi.so")
_WHEEL_MEMBERS = {"tvm/lib/libtvm_runtime.so": "lib", "tvm_ffi/lib/libtvm_ffi.so": "lib"}
_HEADER_PREFIXES = {"tvm_ffi/include/": "include", "tvm_ffi/3rdparty/dlpack/include/": "include"}


@dataclass(frozen=True)
class Arm64Runtime:
    """Paths of the cached aarch64 runtime."""

    lib_dir: Path
    include_dir: Path

    @property
    def libraries(self) -> list[Path]:
        return [self.lib_dir / name for name in RUNTIME_LIBRARIES]


def default_cache_dir() -> Path:
    """``~/.cache/compress``."""
    return Path.home() / ".cache" / "compress"


def fetch_arm64_runtime(*, cache_dir: Path | None = None) -> Arm64Runtime:
    """Return the aarch64 runtime, downloading and unpacking the wheels on first use.

    Raises:
        BundleError: the wheels cannot be downloaded or lack the expected files.
    """
    root = Path(cache_dir or default_cache_dir()) / f"tvm-aarch64-{TVM_VERSION}"
    runtime = Arm64Runtime(root / "lib", root / "include")
    if all(path.is_file() for path in runtime.libraries) and (runtime.include_dir / "tvm" / "ffi").is_dir():
        return runtime
    with tempfile.TemporaryDirectory() as download_dir:
        for wheel in _download_wheels(Path(download_dir)):
            _unpack(wheel, root)
    if not all(path.is_file() for path in runtime.libraries):
        raise BundleError(f"aarch64 wheels did not provide {', '.join(RUNTIME_LIBRARIES)} in {root}")
    return runtime


def build_runner(*, runtime: Arm64Runtime, compiler: str = "aarch64-linux-gnu-g++",
                 cache_dir: Path | None = None) -> Path:
    """Cross-compile ``runner.cc`` for aarch64 (cached by source hash); returns the binary path.

    Raises:
        BundleError: the compiler is missing or the build fails.
    """
    if shutil.which(compiler) is None:
        raise BundleError(f"cross compiler {compiler!r} not found on PATH (apt install g++-aarch64-linux-gnu)")
    digest = hashlib.sha256(RUNNER_SOURCE.read_bytes()).hexdigest()[:12]
    binary = Path(cache_dir or default_cache_dir()) / f"tvm-aarch64-{TVM_VERSION}" / f"runner-{digest}"
    if binary.is_file():
        return binary
    command = [compiler, "-std=c++17", "-O2", f"-I{runtime.include_dir}", str(RUNNER_SOURCE), "-o", str(binary),
               f"-L{runtime.lib_dir}", "-Wl,--no-as-needed", "-ltvm_runtime", "-ltvm_ffi", "-Wl,-rpath,$ORIGIN/lib"]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise BundleError(f"runner build failed: {completed.stderr.strip().splitlines()[-1:]}")
    return binary


def _download_wheels(directory: Path) -> list[Path]:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--platform", WHEEL_PLATFORM,
               "--only-binary=:all:", "--python-version", "3.11", "-d", str(directory),
               f"apache-tvm=={TVM_VERSION}", f"apache-tvm-ffi=={TVM_FFI_VERSION}"]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise BundleError(f"pip download of the aarch64 TVM wheels failed: {completed.stderr.strip()[-300:]}")
    return sorted(directory.glob("*.whl"))


def _unpack(wheel: Path, root: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            target = _destination(member, root)
            if target is None or member.endswith("/"):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")
            partial.write_bytes(archive.read(member))
            partial.replace(target)


def _destination(member: str, root: Path) -> Path | None:
    if member in _WHEEL_MEMBERS:
        return root / _WHEEL_MEMBERS[member] / Path(member).name
    for prefix, folder in _HEADER_PREFIXES.items():
        if member.startswith(prefix):
            return root / folder / member[len(prefix):]
    return None
