"""Operators real exporters emit (``tests/zoo/operators.py``), at opsets 11, 13, 17 and 21: each graph
compiles for host with every operator scheduled (vectorised or parallel, none left as scalar loops)
and matches onnxruntime within 1e-4; opset 17 also runs as an arm64 build under qemu."""

import numpy as np
import onnx
import pytest

from deploy.tvm.compile import compile_onnx
from tests.zoo.operators import CASES, INPUT_SHAPE, OPSETS, operator_graph

ARM64_OPSET = 17


@pytest.fixture(scope="module", params=OPSETS, ids=[f"opset{opset}" for opset in OPSETS])
def operator_onnx(request, tmp_path_factory):
    model, cases = operator_graph(request.param)
    path = tmp_path_factory.mktemp(f"opset{request.param}") / "operators.onnx"
    onnx.save(model, str(path))
    return path, cases


def _input(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(INPUT_SHAPE).astype(np.float32)


def _onnxruntime(path, x) -> list[np.ndarray]:
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})


def _run_host(library, x) -> list[np.ndarray]:
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.runtime.load_module(str(library)), tvm.cpu())
    return [value.numpy() for value in vm["main"](tvm.runtime.tensor(x))]


def _mismatches(cases, actual, expected) -> list[str]:
    wrong = []
    for case, got, want in zip(cases, actual, expected, strict=True):
        if got.shape != want.shape:
            wrong.append(f"{case}: shape {got.shape} != {want.shape}")
        elif not np.allclose(got, want, rtol=1e-4, atol=1e-4):
            wrong.append(f"{case}: max error {np.max(np.abs(got - want)):.3g}")
    return wrong


@pytest.mark.slow
def test_operator_graph_host_build_matches_onnxruntime(operator_onnx, tmp_path):
    path, cases = operator_onnx
    result = compile_onnx(path, target="host", out_dir=tmp_path, input_shape=INPUT_SHAPE)
    x = _input()
    assert _mismatches(cases, _run_host(result.library_path, x), _onnxruntime(path, x)) == []


def test_operator_graph_gets_vector_or_parallel_schedules(operator_onnx):
    from tvm import relax

    from deploy.tvm.compile import _import
    from deploy.tvm.fusion import fuse_layers
    from deploy.tvm.schedule_rest import naive_functions, schedule_rest, unscheduled_functions

    mod, _ = _import(operator_onnx[0], INPUT_SHAPE)
    assert naive_functions(relax.transform.LegalizeOps()(mod))  # TVM alone leaves scalar loops
    mod, _ = fuse_layers(mod, vector_floats=16)
    mod = schedule_rest(mod, vector_floats=16)
    assert unscheduled_functions(mod) == [] and naive_functions(mod) == []


def test_operator_graph_has_one_output_per_case_at_every_opset():
    for opset in OPSETS:
        model, cases = operator_graph(opset)
        assert cases == list(CASES) and len(model.graph.output) == len(CASES)
        assert model.opset_import[0].version == opset


@pytest.mark.slow
def test_operator_graph_arm64_build_under_qemu_matches_onnxruntime(tmp_path):
    from deploy.tvm.bundle import make_arm64_bundle, run_arm64_bundle

    model, cases = operator_graph(ARM64_OPSET)
    path = tmp_path / "operators.onnx"
    onnx.save(model, str(path))
    arm = compile_onnx(path, target="arm64", out_dir=tmp_path / "arm64", input_shape=INPUT_SHAPE)
    bundle = make_arm64_bundle(arm.library_path, bundle_dir=tmp_path / "bundle", input_name=arm.input_name,
                               input_shape=arm.input_shape)
    x = _input(1)
    expected = _onnxruntime(path, x)
    flat = run_arm64_bundle(bundle, x[None]).reshape(-1)
    offsets = np.cumsum([0] + [value.size for value in expected])
    actual = [flat[start:end].reshape(want.shape) for start, end, want in zip(offsets, offsets[1:], expected)]
    assert flat.size == offsets[-1] and _mismatches(cases, actual, expected) == []
