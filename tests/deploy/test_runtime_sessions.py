"""One session interface over torch, onnxruntime and the TVM VM (host and TVM RPC)."""

import numpy as np
import pytest
import torch

from deploy.runtimes import RUNTIME_KINDS, SessionError, load_session
from deploy.runtimes.rpc_session import parse_rpc_device
from deploy.tvm.compile import compile_onnx

INPUT_SHAPE = (2, 3, 8, 8)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("runtimes")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 36, 10)).eval()
    onnx_path = root / "model.onnx"
    torch.onnx.export(net, (torch.randn(*INPUT_SHAPE),), str(onnx_path), opset_version=17,
                      input_names=["input"], output_names=["logits"], dynamo=False)
    scripted = root / "model.pt"
    torch.jit.trace(net, torch.randn(*INPUT_SHAPE)).save(str(scripted))
    compiled = compile_onnx(onnx_path, target="host", out_dir=root / "tvm", input_shape=INPUT_SHAPE)
    return {"net": net, "onnx": onnx_path, "script": scripted, "tvm": compiled.library_path}


def _feeds(seed=0):
    return {"input": np.random.default_rng(seed).standard_normal(INPUT_SHAPE).astype(np.float32)}


def test_runtime_kinds_are_torch_onnxruntime_tvm():
    assert RUNTIME_KINDS == ("torch", "onnxruntime", "tvm")


def test_runtime_sessions_agree_across_backends(artifacts):
    feeds = _feeds()
    reference = load_session("torch", artifacts["net"]).run(feeds)[0]
    for kind, artifact in (("torch", artifacts["script"]), ("onnxruntime", artifacts["onnx"]),
                           ("tvm", artifacts["tvm"])):
        (output,) = load_session(kind, artifact).run(feeds)
        np.testing.assert_allclose(output, reference, rtol=1e-4, atol=1e-5, err_msg=kind)


def test_runtime_tvm_session_accepts_compile_directory(artifacts):
    session = load_session("tvm", artifacts["tvm"].parent)
    assert session.input_names == ["input"] and session.run(_feeds())[0].shape == (2, 10)


def test_runtime_session_time_returns_one_positive_duration_per_repeat(artifacts):
    times = load_session("onnxruntime", artifacts["onnx"]).time(_feeds(), repeat=3, warmup=1)
    assert len(times) == 3 and min(times) > 0


def test_runtime_load_session_raises_when_kind_unknown():
    with pytest.raises(SessionError, match="allowed: torch, onnxruntime, tvm"):
        load_session("tflite", "x")


def test_runtime_load_session_raises_when_rpc_requested_for_onnxruntime(artifacts):
    with pytest.raises(SessionError, match="only 'tvm'"):
        load_session("onnxruntime", artifacts["onnx"], device="rpc://127.0.0.1:9090")


def test_runtime_tvm_session_raises_when_input_missing(artifacts):
    with pytest.raises(SessionError, match="missing inputs"):
        load_session("tvm", artifacts["tvm"]).run({"x": np.zeros(INPUT_SHAPE, np.float32)})


def test_runtime_parse_rpc_device_reads_host_port_and_key():
    address = parse_rpc_device("rpc://10.0.0.2:9090/pixel7")
    assert (address.host, address.port, address.key) == ("10.0.0.2", 9090, "pixel7")
    assert parse_rpc_device("rpc://localhost:9091").key == ""


def test_runtime_parse_rpc_device_raises_when_malformed():
    with pytest.raises(SessionError, match="rpc://HOST:PORT"):
        parse_rpc_device("rpc://nohost")


@pytest.mark.slow
def test_runtime_rpc_session_matches_local_and_times_on_server(artifacts):
    from tvm import rpc

    server = rpc.Server(host="127.0.0.1", port=9190, port_end=9290, key="test", silent=True)
    try:
        session = load_session("tvm", artifacts["tvm"], device=f"rpc://127.0.0.1:{server.port}/test")
        feeds = _feeds(1)
        np.testing.assert_allclose(session.run(feeds)[0], load_session("tvm", artifacts["tvm"]).run(feeds)[0],
                                   rtol=1e-6, atol=1e-6)
        times = session.time(feeds, repeat=3, warmup=1)
        assert len(times) == 3 and min(times) > 0
    finally:
        server.terminate()
