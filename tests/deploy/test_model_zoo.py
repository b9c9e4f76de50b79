"""Model zoo at 32 px: each architecture, dense and 90% block-sparse, compiles for host with every
operator scheduled (none left as TVM's scalar loops) and matches onnxruntime within 1e-4; a subset
covering every operator also runs as an arm64 build under qemu. The 224 px run is
``benchmarks/model_zoo.py``."""

import numpy as np
import onnx
import pytest
import torch

from deploy.tvm.compile import compile_onnx
from tests.zoo import ZOO, create

IMAGE = 32
INPUT_SHAPE = (1, 3, IMAGE, IMAGE)
SPARSE_RATIO = 0.9
BLOCK_ROWS = 16
# Smallest width / depth that keeps each architecture's operators (depth 0.1: one block per stage;
# ShuffleNetV2 needs a second block for its channel split, MobileNetV2 one for its residual add).
CI_SCALE = {name: {"width": 0.25, "depth": 0.1} for name in ZOO}
CI_SCALE.update({"vgg11-bn": {"width": 0.125, "depth": 1.0}, "shufflenet-v2": {"width": 0.25, "depth": 0.25},
                 "mobilenet-v2": {"width": 0.25, "depth": 0.34}})
# With the operator graphs of test_onnx_operators.py (arm64 at opset 17) these cover every operator of
# the zoo on arm64: split / transpose / concat / padded max pool, batch norm / average pool, layer
# norm / erf / softmax / batch matmul.
ARM64_MODELS = ("shufflenet-v2", "densenet-style", "tiny-vit")


def zero_output_blocks(model: torch.nn.Module, *, ratio: float, block_rows: int = BLOCK_ROWS, seed: int = 0) -> None:
    """Zero ``ratio`` of the ``block_rows x 1`` output-channel blocks of every conv / linear weight."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                flat = module.weight.view(module.weight.shape[0], -1)
                blocks = -(-flat.shape[0] // block_rows)
                keep = torch.rand(blocks, flat.shape[1], generator=generator) >= ratio
                flat.mul_(keep.repeat_interleave(block_rows, dim=0)[: flat.shape[0]].float())


@pytest.fixture(scope="module")
def zoo_onnx(tmp_path_factory):
    """(name, variant) -> exported ONNX path; one export per model and variant."""
    root = tmp_path_factory.mktemp("zoo")
    paths = {}
    for name in ZOO:
        for variant in ("dense", "sparse"):
            torch.manual_seed(0)
            model = create(name, image_size=IMAGE, num_classes=10, **CI_SCALE[name])
            if variant == "sparse":
                zero_output_blocks(model, ratio=SPARSE_RATIO)
            path = root / f"{name}-{variant}.onnx"
            torch.onnx.export(model, (torch.randn(*INPUT_SHAPE),), str(path), opset_version=17, input_names=["input"],
                              dynamo=False)
            paths[name, variant] = path
    return paths


def _input() -> np.ndarray:
    return np.random.default_rng(0).standard_normal(INPUT_SHAPE).astype(np.float32)


def _onnxruntime(path, x):
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def _run_host(library, x):
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.runtime.load_module(str(library)), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["dense", "sparse"])
@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_model_host_build_matches_onnxruntime(zoo_onnx, tmp_path, name, variant):
    path = zoo_onnx[name, variant]
    result = compile_onnx(path, target="host", out_dir=tmp_path, input_shape=INPUT_SHAPE)
    if variant == "sparse":
        assert max(layer.choice.sparsity_ratio for layer in result.layers) > 0.8
    x = _input()
    np.testing.assert_allclose(_run_host(result.library_path, x), _onnxruntime(path, x), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_model_operators_get_vector_or_parallel_schedules(zoo_onnx, name):
    from tvm import relax

    from deploy.tvm.compile import _import
    from deploy.tvm.schedule_rest import naive_functions, schedule_rest, unscheduled_functions

    mod, _ = _import(zoo_onnx[name, "dense"], INPUT_SHAPE)
    legalized = relax.transform.LegalizeOps()(mod)
    assert unscheduled_functions(legalized)  # TVM alone leaves scalar loops
    mod = schedule_rest(mod, vector_floats=16)
    assert unscheduled_functions(mod) == [] and naive_functions(mod) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", ARM64_MODELS)
def test_zoo_model_arm64_build_under_qemu_matches_onnxruntime(zoo_onnx, tmp_path, name):
    from deploy.tvm.bundle import make_arm64_bundle, run_arm64_bundle

    path = zoo_onnx[name, "sparse"]
    arm = compile_onnx(path, target="arm64", out_dir=tmp_path / "arm64", input_shape=INPUT_SHAPE)
    bundle = make_arm64_bundle(arm.library_path, bundle_dir=tmp_path / "bundle", input_name=arm.input_name,
                               input_shape=arm.input_shape)
    x = _input()
    np.testing.assert_allclose(run_arm64_bundle(bundle, x[None]).reshape(-1), _onnxruntime(path, x).reshape(-1),
                               rtol=1e-4, atol=1e-4)


def test_zoo_covers_the_operators_users_ship(zoo_onnx):
    found = set()
    for (name, variant), path in zoo_onnx.items():
        found.update(node.op_type for node in onnx.load(str(path)).graph.node)
    assert {"MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization", "Concat", "Split", "Transpose",
            "HardSwish", "HardSigmoid", "Sigmoid", "LayerNormalization", "Erf", "Softmax", "MatMul", "Gemm"} <= found


def test_zero_output_blocks_zeroes_whole_blocks_at_the_ratio():
    layer = torch.nn.Linear(64, 32)
    zero_output_blocks(layer, ratio=SPARSE_RATIO)
    blocks = layer.weight.detach().view(2, BLOCK_ROWS, 64)
    zero = (blocks == 0).all(dim=1)
    assert ((blocks == 0).any(dim=1) == zero).all()  # a block is all zero or has no zero at all
    assert 0.8 < zero.float().mean().item() < 0.97
