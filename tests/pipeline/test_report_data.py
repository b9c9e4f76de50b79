"""Report data gathered from a run: kernel rows named by torch module, dense sizes under "dense"."""

from __future__ import annotations

from pipeline.report.data import kernel_rows, module_names


def test_compiled_layers_get_the_torch_names_of_the_weights_with_their_shapes_in_order():
    compiled = [{"name": "onnx::Conv_204", "weight_shape": [8, 1, 3, 3]}, {"name": "onnx::Conv_207", "weight_shape": [8, 8, 3, 3]},
                {"name": "onnx::Conv_210", "weight_shape": [8, 8, 3, 3]}, {"name": "fc.weight", "weight_shape": [10, 8]}]
    torch_layers = [{"fqn": "conv1.weight", "shape": [8, 1, 3, 3]}, {"fqn": "block.conv1.weight", "shape": [8, 8, 3, 3]},
                    {"fqn": "block.conv2.weight", "shape": [8, 8, 3, 3]}, {"fqn": "fc.weight", "shape": [10, 8]}]
    assert module_names(compiled, torch_layers) == {
        "onnx::Conv_204": "conv1.weight", "onnx::Conv_207": "block.conv1.weight", "onnx::Conv_210": "block.conv2.weight", "fc.weight": "fc.weight",
    }
    assert module_names([{"name": "w", "weight_shape": [3, 3]}], torch_layers) == {}, "no layer of that shape: the ONNX name stays"


def test_kernel_rows_name_the_kernel_used_and_whether_it_skips_zero_blocks():
    compiled = [{"name": "w1", "weight_shape": [8, 4], "kernel": "block-linear", "sparsity_ratio": 0.75, "reason": "r1"},
                {"name": "w2", "weight_shape": [4, 8], "kernel": "block-linear", "sparsity_ratio": 0.0, "reason": "r2"},
                {"name": "w3", "weight_shape": [2, 4], "kernel": "dense", "sparsity_ratio": 0.5, "reason": "r3"}]
    history = [{"name": "compile", "status": "done", "metrics": {"layers": compiled}}]
    torch_layers = [{"fqn": "fc1.weight", "shape": [8, 4]}, {"fqn": "fc2.weight", "shape": [4, 8]}, {"fqn": "fc3.weight", "shape": [2, 4]}]

    rows = kernel_rows(history, torch_layers)

    assert [(r["fqn"], r["kernel"], r["skips_zero_blocks"]) for r in rows] == [
        ("fc1.weight", "block-linear", True), ("fc2.weight", "block-linear", False), ("fc3.weight", "dense", False)]
    assert all("format" not in r for r in rows)
