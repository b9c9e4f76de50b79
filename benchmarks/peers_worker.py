"""One engine's timing worker for ``benchmarks/peers.py``; runs under that engine's own interpreter.

Started as ``python peers_worker.py --engine ENGINE --threads N --plan PLAN.json``. It loads every
model the plan lists for ``ENGINE`` (fixed thread count), prints one JSON line
``{"ready": ..., "outputs": ..., "errors": ...}``, then answers requests read from stdin, one JSON
object a line: ``{"key": KEY, "settle": S, "timed": T}`` runs ``S`` untimed then ``T`` timed calls
of model ``KEY`` and prints ``{"ms": [...]}``; an empty line or end of input stops it.

Only numpy and the engine are imported, so the same file runs in the system Python (onnxruntime,
TVM) and in the DeepSparse and ExecuTorch virtual environments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def _ort_session(path: str, *, threads: int):
    """An onnxruntime CPU session at ``threads`` intra-op threads (defaults otherwise)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def _tvm_session(path: str, *, threads: int):
    """The Relax VM of a compiled library (TVM's pool size comes from ``TVM_NUM_THREADS``)."""
    import tvm
    from tvm import relax

    del threads
    main = relax.VirtualMachine(tvm.runtime.load_module(path), tvm.cpu())["main"]
    state = {}

    def call(x):
        if state.get("x") is not x:  # one host-to-device copy per input array, as a caller holding a tensor would
            state["x"], state["tensor"] = x, tvm.runtime.tensor(x)
        return main(state["tensor"]).numpy()

    return call


def _deepsparse_session(path: str, *, threads: int):
    """A DeepSparse engine compiled for batch 1 on ``threads`` cores."""
    from deepsparse import Engine

    engine = Engine(model=path, batch_size=1, num_cores=threads)
    return lambda x: engine.run([x])[0]


def _executorch_session(path: str, *, threads: int):
    """The ``forward`` method of an ExecuTorch program (XNNPACK delegate) with a ``threads`` pool."""
    import torch
    from executorch.extension.pybindings import portable_lib

    portable_lib._unsafe_reset_threadpool(threads)
    module = portable_lib._load_for_executorch(path)
    state = {}

    def call(x):
        if state.get("x") is not x:
            state["x"], state["tensor"] = x, torch.from_numpy(x)
        return module.forward([state["tensor"]])[0].numpy()

    return call


SESSIONS = {"onnxruntime": _ort_session, "tvm": _tvm_session, "deepsparse": _deepsparse_session,
            "executorch": _executorch_session}


def load(plan: dict, *, engine: str, threads: int) -> tuple[dict, dict, dict]:
    """(callables, first outputs, load errors) of every model the plan gives ``engine``."""
    calls, outputs, errors = {}, {}, {}
    for key, entry in plan["candidates"].items():
        if entry["engine"] != engine:
            continue
        inputs = np.load(entry["input"])
        try:
            call = SESSIONS[entry["runtime"]](entry["path"], threads=threads)
            outputs[key] = np.asarray(call(inputs)).reshape(-1).tolist()
            calls[key] = (call, inputs)
        except Exception as error:  # reported in the table, the other candidates go on
            errors[key] = f"{type(error).__name__}: {str(error).strip().splitlines()[-1] if str(error).strip() else ''}"[:400]
    return calls, outputs, errors


def burst(call, x, *, settle: int, timed: int) -> list[float]:
    """``settle`` untimed calls, then the time of each of ``timed`` calls in milliseconds."""
    for _ in range(settle):
        call(x)
    times = []
    for _ in range(timed):
        start = time.perf_counter_ns()
        call(x)
        times.append((time.perf_counter_ns() - start) / 1e6)
    return times


def serve(calls: dict, *, out) -> None:
    """Answer burst requests from stdin on ``out`` until an empty line or end of input."""
    for line in sys.stdin:
        if not line.strip():
            break
        request = json.loads(line)
        call, x = calls[request["key"]]
        print(json.dumps({"ms": burst(call, x, settle=request["settle"], timed=request["timed"])}), file=out, flush=True)


def main() -> None:
    """Load the plan's models for one engine, report readiness, then serve timing requests."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--plan", required=True)
    args = parser.parse_args()
    with open(args.plan) as handle:
        plan = json.load(handle)
    out = os.fdopen(os.dup(1), "w")  # the protocol stream; whatever an engine prints goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    calls, outputs, errors = load(plan, engine=args.engine, threads=args.threads)
    print(json.dumps({"ready": sorted(calls), "outputs": outputs, "errors": errors, "pid": os.getpid()}), file=out, flush=True)
    serve(calls, out=out)


if __name__ == "__main__":
    main()
