"""TVM back-end: target presets, fused dense / block-sparse kernels, ONNX compile, device bundles.

Importing this package, :mod:`deploy.tvm.targets` or :mod:`deploy.tvm.bundle` does not load TVM;
the compile path (:mod:`deploy.tvm.compile`, :mod:`deploy.tvm.fusion`) imports it at module level.
The names below are loaded on first use (PEP 562)::

    from deploy.tvm import compile_onnx, get_target, list_targets
"""

from importlib import import_module

_EXPORTS = {
    "BundleCheck": "deploy.tvm.bundle", "BundleKind": "deploy.tvm.bundle",
    "make_arm64_bundle": "deploy.tvm.bundle", "verify_arm64_bundle": "deploy.tvm.bundle",
    "CompileResult": "deploy.tvm.compile", "compile_onnx": "deploy.tvm.compile",
    "BundleError": "deploy.tvm.errors", "CompileError": "deploy.tvm.errors", "TargetError": "deploy.tvm.errors",
    "TargetPreset": "deploy.tvm.targets", "default_target": "deploy.tvm.targets", "get_target": "deploy.tvm.targets",
    "list_targets": "deploy.tvm.targets", "reference_target": "deploy.tvm.targets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'deploy.tvm' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
