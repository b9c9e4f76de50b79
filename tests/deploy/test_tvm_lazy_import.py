"""Importing the TVM back-end and the runtimes must not load TVM, onnxruntime or torch."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_tvm_lazy_import_loads_no_heavy_backend():
    code = ("import sys, deploy.tvm, deploy.tvm.compile, deploy.tvm.bundle, deploy.runtimes; "
            "print(sorted(m for m in ('tvm', 'onnxruntime', 'torch', 'onnx') if m in sys.modules))")
    completed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"
