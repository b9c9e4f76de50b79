"""Importing the TVM back-end package, its target presets, its bundles and the runtimes must not load
TVM, onnxruntime or torch (the CLI lists targets and checks bundles without them); the compile path
(``deploy.tvm.compile``, ``deploy.tvm.fusion``) does import TVM."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _loaded(imports: str) -> str:
    code = (f"import sys, {imports}; "
            "print(sorted(m for m in ('tvm', 'onnxruntime', 'torch', 'onnx') if m in sys.modules))")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def test_tvm_lazy_import_loads_no_heavy_backend():
    assert _loaded("deploy.tvm, deploy.tvm.targets, deploy.tvm.bundle, deploy.runtimes") == "[]"


def test_tvm_lazy_import_package_names_resolve_on_first_use():
    assert _loaded("deploy.tvm; deploy.tvm.get_target('host'); deploy.tvm.BundleKind") == "[]"
    assert "tvm" in _loaded("deploy.tvm; deploy.tvm.compile_onnx")
