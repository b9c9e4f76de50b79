"""Deployment: ONNX export with compact weight encodings, TVM compilation, runtimes, benchmarks.

``deploy`` may import ``compress.types`` only (never other ``compress`` modules, never ``pipeline``);
heavy back-ends (onnxruntime, TVM) are imported lazily inside functions.
"""
