"""Target presets as data: name -> TVM target, host, cross compiler, export format, schedule rules,
device bundle.

Add a target by adding a row to ``PRESETS`` (docs/adding-a-target.md); nothing else branches on
target names: the compile stage asks the preset whether and how to bundle, builds the
:data:`REFERENCE_TARGET` for its parity check and defaults to :data:`DEFAULT_TARGET`. TVM is imported
only by :func:`build_tvm_target`.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from deploy.tvm.bundle import AARCH64_LINUX, BundleKind
from deploy.tvm.errors import TargetError

ARM64_HOST = MappingProxyType({"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mattr": ("+neon",)})
NATIVE_CPU = "native"  # resolved to LLVM's name of the build machine's CPU (e.g. znver5)
ANDROID_CLANG = "toolchains/llvm/prebuilt/linux-x86_64/bin/aarch64-linux-android24-clang++"
DEFAULT_TARGET = "arm64"  # what `compress run` / `compress compile` build for unless told otherwise
REFERENCE_TARGET = "host"  # always built too: checked against onnxruntime, timed by the report


@dataclass(frozen=True)
class TargetPreset:
    """One compile target.

    Attributes:
        name: kebab-case preset name (the CLI choice).
        target: TVM target as a JSON dict, or ``{"tag": name}`` for a TVM named tag.
        host: host-side target dict for GPU targets (``None``: same as ``target``).
        cross_compiler: compiler command for ``export_library`` (``None``: the host's default).
        ndk_compiler: path of the compiler under ``$ANDROID_NDK_HOME`` (Android presets only).
        export_format: file suffix of the exported library.
        schedule: schedule rules applied to dense operators: ``"cpu-kernels"`` (our sparse
            kernels plus TVM's legalized loops) or ``"dlight-gpu"`` (dlight GPU rules).
        required_codegen: TVM global function that must exist to build (``None``: always there).
        runtime_device: device kind the artifact runs on (``"cpu"``, ``"opencl"``, ``"vulkan"``).
        description: one line for ``--help`` and reports.
        vector_floats: float lanes our CPU kernels tile by (two NEON registers: 8); ``None``: the
            build machine's widest vector (16 with AVX-512, else 8).
        bundle: how the compiled library ships to the device and is checked here
            (:class:`~deploy.tvm.bundle.BundleKind`); ``None``: the library alone.
    """

    name: str
    target: MappingProxyType
    host: MappingProxyType | None
    cross_compiler: str | None
    ndk_compiler: str | None
    export_format: str
    schedule: str
    required_codegen: str | None
    runtime_device: str
    description: str
    vector_floats: int | None
    bundle: BundleKind | None = None

    @property
    def runs_on_build_machine(self) -> bool:
        """True when the artifact runs where it is compiled (so it can be tuned and timed here)."""
        return self.cross_compiler is None and self.ndk_compiler is None and self.runtime_device == "cpu"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view of the preset (for manifests and reports)."""
        return {
            "name": self.name, "target": _plain(self.target), "host": _plain(self.host),
            "cross_compiler": self.cross_compiler, "ndk_compiler": self.ndk_compiler,
            "export_format": self.export_format, "schedule": self.schedule,
            "required_codegen": self.required_codegen, "runtime_device": self.runtime_device,
            "description": self.description, "vector_floats": preset_vector_floats(self),
            "bundle": None if self.bundle is None else self.bundle.name,
        }


def preset(name: str, target: dict, description: str, **fields: Any) -> TargetPreset:
    """A CPU preset with the usual defaults (shared object, our kernels, 8 lanes) and ``fields`` changed."""
    values = {"host": None, "cross_compiler": None, "ndk_compiler": None, "export_format": "so",
              "schedule": "cpu-kernels", "required_codegen": None, "runtime_device": "cpu", "vector_floats": 8}
    values.update(fields)
    return TargetPreset(name=name, target=MappingProxyType(target), description=description, **values)


PRESETS: tuple[TargetPreset, ...] = (
    preset("host", {"kind": "llvm", "mcpu": NATIVE_CPU},
           "this machine's CPU (LLVM, -mcpu of the build machine), for parity checks and benchmarks",
           vector_floats=None),
    preset("arm64", dict(ARM64_HOST), "64-bit Arm Linux (aarch64-linux-gnu, NEON), glibc boards",
           cross_compiler="aarch64-linux-gnu-g++", bundle=AARCH64_LINUX),
    preset("android-arm64", {"kind": "llvm", "mtriple": "aarch64-linux-android", "mattr": ("+neon",)},
           "Android phones (aarch64, NEON); needs the NDK clang from $ANDROID_NDK_HOME",
           ndk_compiler=ANDROID_CLANG),
    preset("rasp4b", {"kind": "llvm", "mcpu": "cortex-a72", "mtriple": "armv8l-linux-gnueabihf", "mattr": ("+neon",),
                      "mfloat-abi": "hard", "model": "bcm2711", "keys": ("arm_cpu", "cpu")},
           "Raspberry Pi 4B, 32-bit Raspberry Pi OS (TVM's arm/rasp4b tag with the hard-float ABI of gnueabihf)",
           cross_compiler="arm-linux-gnueabihf-g++"),
    preset("opencl-adreno", {"tag": "qcom/adreno-opencl"}, "Qualcomm Adreno GPU via OpenCL, arm64 host",
           host=ARM64_HOST, cross_compiler="aarch64-linux-gnu-g++", schedule="dlight-gpu",
           required_codegen="target.build.opencl", runtime_device="opencl"),
    preset("opencl-mali", {"kind": "opencl", "device": "mali"}, "Arm Mali GPU via OpenCL, arm64 host",
           host=ARM64_HOST, cross_compiler="aarch64-linux-gnu-g++", schedule="dlight-gpu",
           required_codegen="target.build.opencl", runtime_device="opencl"),
    preset("vulkan", {"kind": "vulkan"}, "Vulkan GPU (needs a TVM build with SPIR-V codegen), arm64 host",
           host=ARM64_HOST, cross_compiler="aarch64-linux-gnu-g++", schedule="dlight-gpu",
           required_codegen="target.build.vulkan", runtime_device="vulkan"),
)


def list_targets() -> list[str]:
    """Names of all target presets, in table order."""
    return [entry.name for entry in PRESETS]


def default_target() -> str:
    """Name of the preset built when none is named (:data:`DEFAULT_TARGET`)."""
    return DEFAULT_TARGET


def reference_target() -> TargetPreset:
    """The preset every compile also builds: it runs here, so it is checked and timed here."""
    return get_target(REFERENCE_TARGET)


def bundle_kind(target: str) -> BundleKind:
    """How preset ``target``'s library is bundled.

    Raises:
        TargetError: ``target`` is not a preset, or its preset makes no bundle.
    """
    kind = get_target(target).bundle
    if kind is None:
        raise TargetError(f"target {target!r} makes no device bundle")
    return kind


def get_target(name: str) -> TargetPreset:
    """Return the preset called ``name``.

    Raises:
        TargetError: ``name`` is not a preset.
    """
    for candidate in PRESETS:
        if candidate.name == name:
            return candidate
    raise TargetError(f"unknown target {name!r}; allowed: {', '.join(list_targets())}")


def build_tvm_target(preset: TargetPreset):
    """Make the ``tvm.target.Target`` of a preset, checking the code generator exists.

    Raises:
        TargetError: this TVM build lacks the preset's code generator.
    """
    import tvm
    import tvm_ffi

    if preset.required_codegen and tvm_ffi.get_global_func(preset.required_codegen, allow_missing=True) is None:
        raise TargetError(f"target {preset.name!r} needs {preset.required_codegen}, which this TVM "
                          f"build ({tvm.__version__}) lacks; use a TVM built with that backend")
    spec = _plain(preset.target)
    if spec.get("mcpu") == NATIVE_CPU:
        spec["mcpu"] = str(tvm.target.codegen.llvm_get_system_cpu())
    if "tag" in spec:
        spec = tvm.target.list_tags()[spec["tag"]]
    if preset.host is None:
        return tvm.target.Target(spec)
    return tvm.target.Target(spec, host=tvm.target.Target(_plain(preset.host)))


def preset_vector_floats(preset: TargetPreset) -> int:
    """Float lanes the preset's CPU kernels tile by (see ``TargetPreset.vector_floats``)."""
    if preset.vector_floats is not None:
        return preset.vector_floats
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read()
    except OSError:
        return 8
    return 16 if "avx512f" in flags else 8


def resolve_cross_compiler(preset: TargetPreset) -> str | None:
    """Path of the compiler that links the exported library (``None``: TVM's host default).

    Raises:
        TargetError: the compiler (or ``$ANDROID_NDK_HOME`` for Android) is missing.
    """
    if preset.ndk_compiler is not None:
        ndk = os.environ.get("ANDROID_NDK_HOME")
        if not ndk:
            raise TargetError(f"target {preset.name!r} needs the Android NDK: set ANDROID_NDK_HOME")
        path = os.path.join(ndk, preset.ndk_compiler)
        if not os.path.isfile(path):
            raise TargetError(f"target {preset.name!r}: NDK compiler not found at {path}")
        return path
    if preset.cross_compiler is None:
        return None
    path = shutil.which(preset.cross_compiler)
    if path is None:
        raise TargetError(f"target {preset.name!r} needs the cross compiler {preset.cross_compiler!r} on PATH")
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, (MappingProxyType, dict)):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value
