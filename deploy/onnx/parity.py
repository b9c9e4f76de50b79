"""onnxruntime vs torch parity on a batch (onnxruntime imported lazily)."""

from __future__ import annotations

import numpy as np
import onnx
import torch

from deploy.onnx.torch_export import INPUT_NAME


def onnxruntime_session(model: onnx.ModelProto, *, optimized_path: str | None = None):
    """A single-threaded CPU ``InferenceSession`` of ``model``.

    Args:
        model: the model.
        optimized_path: when given, the graph after basic optimizations (constant folding) is saved
            there, which shows that the decode subgraphs were folded into initializers.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if optimized_path is not None:
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(optimized_path)
    return onnxruntime.InferenceSession(
        model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )


def run_onnx(model: onnx.ModelProto, batch: np.ndarray) -> np.ndarray:
    """The first output of ``model`` on ``batch`` with onnxruntime."""
    return onnxruntime_session(model).run(None, {INPUT_NAME: batch})[0]


def max_abs_error(model: onnx.ModelProto, module: torch.nn.Module, batch: torch.Tensor) -> float:
    """``max |onnxruntime(model)(batch) - module(batch)|`` with ``module`` in eval mode."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            expected = module(batch).detach().cpu().numpy()
    finally:
        module.train(was_training)
    actual = run_onnx(model, batch.detach().cpu().numpy())
    return float(np.max(np.abs(actual.astype(np.float64) - expected.astype(np.float64)), initial=0.0))
