"""TVM back-end: target presets, sparse / ternary kernels, ONNX compile, arm64 bundles.

Nothing here imports TVM at module import time; TVM is loaded inside the functions that need it.
"""
