"""TVM back-end: target presets, fused dense / block-sparse kernels, ONNX compile, arm64 bundles.

Nothing here imports TVM at module import time; TVM is loaded inside the functions that need it.

Entry points for the compile stage::

    from deploy.tvm import compile_onnx, make_arm64_bundle, verify_arm64_bundle, list_targets
"""

from deploy.tvm.bundle import BundleCheck, make_arm64_bundle, verify_arm64_bundle
from deploy.tvm.compile import CompileResult, compile_onnx
from deploy.tvm.errors import BundleError, CompileError, TargetError
from deploy.tvm.targets import TargetPreset, get_target, list_targets

__all__ = [
    "BundleCheck", "BundleError", "CompileError", "CompileResult", "TargetError", "TargetPreset",
    "compile_onnx", "get_target", "list_targets", "make_arm64_bundle", "verify_arm64_bundle",
]
