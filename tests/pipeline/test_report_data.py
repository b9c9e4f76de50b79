"""Report data gathered from a run: kernel rows named by torch module, dense sizes under "dense"."""

from __future__ import annotations

from pipeline.report.data import module_names


def test_compiled_layers_get_the_torch_names_of_the_weights_with_their_shapes_in_order():
    compiled = [{"name": "onnx::Conv_204", "weight_shape": [8, 1, 3, 3]}, {"name": "onnx::Conv_207", "weight_shape": [8, 8, 3, 3]},
                {"name": "onnx::Conv_210", "weight_shape": [8, 8, 3, 3]}, {"name": "fc.weight", "weight_shape": [10, 8]}]
    torch_layers = [{"fqn": "conv1.weight", "shape": [8, 1, 3, 3]}, {"fqn": "block.conv1.weight", "shape": [8, 8, 3, 3]},
                    {"fqn": "block.conv2.weight", "shape": [8, 8, 3, 3]}, {"fqn": "fc.weight", "shape": [10, 8]}]
    assert module_names(compiled, torch_layers) == {
        "onnx::Conv_204": "conv1.weight", "onnx::Conv_207": "block.conv1.weight", "onnx::Conv_210": "block.conv2.weight", "fc.weight": "fc.weight",
    }
    assert module_names([{"name": "w", "weight_shape": [3, 3]}], torch_layers) == {}, "no layer of that shape: the ONNX name stays"
