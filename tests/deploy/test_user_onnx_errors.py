"""Folding before import, static shapes from the user, and one-line errors that name the ONNX node."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from deploy.onnx.errors import OnnxFormatError
from deploy.onnx.fold import check_same_outputs, fix_input_shapes, fold_constants
from deploy.tvm.compile import compile_onnx
from deploy.tvm.errors import CompileError
from deploy.tvm.onnx_import import locate_failing_node
from tests.deploy.test_user_onnx import GridHead, SamePadNet, export_dynamic

SHAPE = (1, 2, 4, 4)
SHAPE_OPS = {"Shape", "Gather", "Range", "Expand", "Constant", "Cast", "Unsqueeze"}


def _graph_model(nodes, *, initializers=(), output_shape=None, opset=17, input_shape=SHAPE):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)], list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _save(model, path):
    onnx.save(model, str(path))
    return path


def _values_to_int(name="limit"):
    """``x -> ReduceMax -> Cast(int64)``: an integer that depends on the input's values."""
    return [helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0, name="max"),
            helper.make_node("Cast", ["m"], [name], to=TensorProto.INT64, name="to_int")]


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    return onnx.load(str(export_dynamic(GridHead(), tmp_path_factory.mktemp("fold") / "detector.onnx", (1, 3, 64, 64))))


def test_fold_constants_leaves_no_shape_arithmetic_when_the_input_shape_is_fixed(detector):
    assert SHAPE_OPS <= {node.op_type for node in detector.graph.node}
    folded = fold_constants(fix_input_shapes(detector, {"images": (1, 3, 32, 64)}))
    assert not SHAPE_OPS & {node.op_type for node in folded.graph.node}
    assert [entry.domain for entry in folded.opset_import] == [""]
    assert [value.name for value in folded.graph.input] == ["images"]


def test_fix_input_shapes_raises_when_a_static_dimension_differs(detector):
    with pytest.raises(OnnxFormatError, match=r"dimension 1 is 3 in the model \(\[batch, 3, height, width\]\), not 4"):
        fix_input_shapes(detector, {"images": (1, 4, 32, 32)})


def test_fold_constants_keeps_the_named_initializers_as_they_are():
    weight = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3), "w")
    model = _graph_model([helper.make_node("Transpose", ["w"], ["wt"]), helper.make_node("MatMul", ["x", "wt"], ["y"])],
                         initializers=[weight], input_shape=(2, 3), output_shape=(2, 4))
    kept = fold_constants(model, keep={"w"})
    assert [node.op_type for node in kept.graph.node] == ["Transpose", "MatMul"]
    assert [value.name for value in kept.graph.input] == ["x"] and kept.graph.initializer[0] == weight
    assert [node.op_type for node in fold_constants(model).graph.node] == ["MatMul"]


def test_check_same_outputs_raises_when_the_folded_graph_computes_something_else():
    model = _graph_model([helper.make_node("Mul", ["x", "c"], ["y"])], initializers=[numpy_helper.from_array(np.float32(2), "c")])
    other = _graph_model([helper.make_node("Mul", ["x", "c"], ["y"])], initializers=[numpy_helper.from_array(np.float32(3), "c")])
    with pytest.raises(OnnxFormatError, match="constant folding changed the outputs"):
        check_same_outputs(model, other)


def test_export_keeps_compact_weight_decoding_and_folds_constant_chains(tmp_path):
    import torch

    from deploy.onnx import export_onnx

    torch.manual_seed(0)
    net = SamePadNet().eval()
    with torch.no_grad():
        net.classifier.weight.mul_((torch.rand_like(net.classifier.weight) < 0.1).float())
    result = export_onnx(net, torch.rand(3, 3, 16, 16), tmp_path / "model.onnx", encoding="csr")
    shipped = onnx.load(str(tmp_path / "model.onnx"))
    assert result.max_abs_error <= 1e-4 and [function.name for function in shipped.functions] == ["Csr"]
    assert not {"Constant", "ConstantOfShape", "Cast"} & {node.op_type for node in shipped.graph.node}
    assert shipped.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # the batch stays dynamic


@pytest.mark.parametrize("nodes,initializers,expected", [
    pytest.param([helper.make_node("Relu", ["x"], ["r"], name="relu"), helper.make_node("Celu", ["r"], ["y"], name="smooth")], [],
                 "node smooth (Celu, opset 17): TVM's ONNX importer has no converter for this operator", id="unsupported-op"),
    pytest.param([*_values_to_int("n"), helper.make_node("Expand", ["n", "eight"], ["pads"], name="pads"),
                  helper.make_node("Pad", ["x", "pads"], ["y"], name="pad_by_value")],
                 [numpy_helper.from_array(np.array([8], np.int64), "eight")],
                 "node pad_by_value (Pad, opset 17): Dynamic pads are not supported yet.", id="dynamic-pads"),
    pytest.param([*_values_to_int(), helper.make_node("Range", ["zero", "limit", "one"], ["r"], name="count_up"),
                  helper.make_node("Cast", ["r"], ["y"], to=TensorProto.FLOAT, name="to_float")],
                 [numpy_helper.from_array(np.array(0, np.int64), "zero"), numpy_helper.from_array(np.array(1, np.int64), "one")],
                 "node count_up (Range, opset 17): its output shape depends on the input values", id="data-dependent-shape"),
])
def test_compile_raises_one_line_naming_the_node_when_onnxruntime_runs_what_tvm_cannot(tmp_path, nodes, initializers, expected):
    path = _save(_graph_model(nodes, initializers=initializers), tmp_path / "model.onnx")
    with pytest.raises(CompileError) as info:
        compile_onnx(path, target="host", out_dir=tmp_path / "out", input_shape=SHAPE)
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)


def test_locate_failing_node_finds_the_first_node_whose_prefix_fails():
    nodes = [helper.make_node("Relu", ["x" if i == 0 else f"t{i - 1}"], [f"t{i}"], name=f"n{i}") for i in range(9)]
    model = _graph_model(nodes)
    found = locate_failing_node(model, lambda prefix: len(prefix.graph.node) >= 6)
    assert found.name == "n5"
    assert locate_failing_node(model, lambda prefix: False) is None


def test_onnx_sample_shape_names_the_input_and_the_option_when_dimensions_are_dynamic(detector, tmp_path):
    from pipeline.errors import UserError
    from pipeline.model.onnx_input import onnx_sample_shape

    with pytest.raises(UserError, match=r"'images' \[batch, 3, height, width\] has dynamic dimension\(s\) height, width; "
                                        r"fix them with --input-shape 3,<height>,<width>"):
        onnx_sample_shape(_save(detector, tmp_path / "detector.onnx"))


def test_onnx_input_bytes_fixes_the_non_batch_dimensions_from_input_shape(detector, tmp_path):
    from pipeline.errors import UserError
    from pipeline.model.onnx_input import onnx_input_bytes, onnx_sample_shape

    path = _save(detector, tmp_path / "detector.onnx")
    fixed = tmp_path / "fixed.onnx"
    fixed.write_bytes(onnx_input_bytes(path, sample_shape=(3, 48, 80)))
    assert onnx_sample_shape(fixed) == (3, 48, 80)
    assert onnx.load(str(fixed)).graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    with pytest.raises(UserError, match="gives 2 dimensions"):
        onnx_input_bytes(path, sample_shape=(48, 80))


def test_cli_compile_uses_input_shape_for_a_dynamic_onnx_and_run_says_what_it_skips(tmp_path, capsys):
    from pipeline.cli import main
    from pipeline.manifest import read_manifest

    model = _graph_model([helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "three"], ["w"]),
                          helper.make_node("Concat", ["w"] * 8, ["pads"], axis=0),
                          helper.make_node("Pad", ["x", "pads"], ["y"], name="pad_by_width")],
                         initializers=[numpy_helper.from_array(np.array([3], np.int64), "three")],
                         input_shape=("batch", 2, "height", "width"))
    path = _save(model, tmp_path / "dynamic.onnx")
    with pytest.raises(SystemExit) as exit_info:
        main(["--quiet", "compile", str(path), "--target", "host", "--input-shape", "2,3,5", "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 0, capsys.readouterr().err
    record = read_manifest(tmp_path / "run")["stages"][0]
    assert record["metrics"]["input_shape"] == [1, 2, 3, 5] and record["metrics"]["host_vs_onnxruntime_max_abs_error"] <= 1e-4
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(path), "--target", "host", "--input-shape", "2,3,5", "--dry-run", "--out", str(tmp_path / "dry")])
    assert exit_info.value.code == 0
    assert "ONNX input: compiled as it is; train-sparse, prune, quantize, export need a PyTorch model" in capsys.readouterr().err
