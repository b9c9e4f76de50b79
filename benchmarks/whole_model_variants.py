"""The models and weight variants of ``benchmarks/whole_model.py``: dense ONNX export and pruned copies.

Variants zero weights of every conv / linear layer except the first conv, the last linear layer and
depthwise convs: ``"90% 16x1"`` (the 90% of ``16 x 1`` blocks with the smallest L2 norm, per layer)
or ``"92% unstructured"`` (the 92% smallest magnitudes, per layer).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def lenet_style():
    """3x3 convs (padding 1) with 32 and 64 channels at 28x28 and 14x14, 2x2 max pools, 3136x200 and 200x10 linear."""
    import torch

    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 200), nn.ReLU(), nn.Linear(200, 10))


def export_model(name: str, path: Path, *, shape: tuple[int, ...]) -> Path:
    """Dense ONNX of ``name`` (LeNet-5: the bundled MNIST checkpoint)."""
    import onnx
    import torch

    from deploy.onnx.torch_export import export_dense

    torch.manual_seed(0)
    if name == "lenet5":
        from pipeline.model.bundle import build_model, load_bundle

        model = build_model(load_bundle(ROOT / "pipeline" / "examples" / "lenet5_mnist.pt"))
    elif name == "lenet-style":
        model = lenet_style()
    elif name == "resnet18-224":
        from tests.zoo import create

        model = create("resnet18")
    else:
        from compress.models import create_model

        model = create_model(name)
    onnx.save(export_dense(model.eval(), torch.zeros(shape), opset=17), str(path))
    return path


def _weights(model):
    """(initializer, op, is_depthwise) of every Conv / Gemm / MatMul weight, in graph order."""
    from onnx import numpy_helper

    inits = {init.name: init for init in model.graph.initializer}
    found = []
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm", "MatMul") and len(node.input) > 1 and node.input[1] in inits:
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            found.append((inits[node.input[1]], node.op_type, group > 1))
    return found, numpy_helper


def make_variant(src: Path, dst: Path, variant: str) -> Path:
    """Write ``variant`` of the dense ONNX ``src`` to ``dst`` (see the module docstring)."""
    import onnx

    model = onnx.load(str(src))
    weights, numpy_helper = _weights(model)
    for index, (init, op, depthwise) in enumerate(weights):
        if depthwise or index == 0 or index == len(weights) - 1:
            continue
        weight = numpy_helper.to_array(init).copy()
        rows_first = weight if op == "Conv" or (op == "Gemm") else weight.T
        flat = rows_first.reshape(rows_first.shape[0], -1)
        ratio = float(variant.split("%")[0]) / 100
        if "unstructured" in variant:
            flat = flat * (np.abs(flat) > np.quantile(np.abs(flat), ratio))
        else:
            flat = _block_prune(flat, rows=int(variant.split(" ")[1].split("x")[0]), ratio=ratio)
        pruned = flat.reshape(rows_first.shape)
        weight = pruned if rows_first is weight else pruned.T
        init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(weight, dtype=np.float32), init.name))
    onnx.save(model, str(dst))
    return dst


def _block_prune(flat: np.ndarray, *, rows: int, ratio: float) -> np.ndarray:
    """Zero the ``ratio`` of ``rows x 1`` blocks with the smallest L2 norm (a last partial block row
    counts as a block of its own height)."""
    from deploy.tvm.row_blocks import row_blocks

    blocks = row_blocks(flat, rows)
    norms = np.linalg.norm(blocks, axis=1)
    keep = norms > np.quantile(norms, ratio)
    return (blocks * keep[:, None, :]).reshape(-1, flat.shape[1])[: flat.shape[0]]
