"""ONNX -> Relax import whose failures name the ONNX node: ``node <name> (<op_type>, opset N): <why>``.

TVM's ``from_onnx`` converts the nodes one by one in ``ONNXGraphImporter._construct_nodes``; when a
converter raises, the node it was converting is that frame's ``node`` local, read here from the
exception's traceback (TVM attaches no node to its errors). An operator TVM has no converter for
is reported by TVM before any conversion as one ``OpNotImplemented`` listing the op types; the
first node of each is named here. A failure in a later step (legalization, build) carries no
ONNX name at all: :func:`locate_failing_node` finds the first node whose prefix graph reproduces
it (bisection over the topologically sorted nodes, only on the failure path).
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import re
import sys
import warnings
from typing import Callable

from deploy.tvm.errors import CompileError

UNSUPPORTED_PREFIX = "The following operators are not supported for frontend ONNX:"
_NOISE = re.compile(r"^(Traceback|File |\s*\d+: |\[bt\]|During handling|The above exception)")


def import_onnx(model, *, input_name: str, input_shape: tuple[int, ...]):
    """``from_onnx`` for a static ``input_shape``, then ``FoldConstant``.

    Raises:
        CompileError: one line naming the failing node when it can be found.
    """
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    message = None
    with _native_stderr_silenced():
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the importer prints its inputs on failure
                mod = from_onnx(model, shape_dict={input_name: list(input_shape)})
        except Exception as error:  # noqa: BLE001 - converters raise many unrelated types
            message = describe_import_failure(model, error)
        if message is not None:
            gc.collect()  # a failed importer's block builder logs from C++ when freed: free it while silenced
    if message is not None:
        raise CompileError(message)
    return relax.transform.FoldConstant()(mod)


@contextlib.contextmanager
def _native_stderr_silenced():
    """File descriptor 2 to ``/dev/null``: TVM's C++ log lines bypass ``sys.stderr``. What the
    importer prints meanwhile (renamed inputs, checker remarks) is dropped with them."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def dynamic_shape_message(model, *, input_name: str, input_shape: tuple[int, ...]) -> str | None:
    """``None`` when every tensor of the imported model has a static shape, else one line naming the
    first node whose output shape depends on the input's values (``NonZero``, a ``Range`` to a
    computed limit, ...): our kernels and schedules are built for static shapes."""
    from tvm import relax

    def dynamic(candidate) -> bool:
        try:
            mod = import_onnx(candidate, input_name=input_name, input_shape=input_shape)
        except CompileError:
            return False
        return bool(relax.analysis.defined_symbolic_vars(mod["main"]))

    if not dynamic(model):
        return None
    node = locate_failing_node(model, dynamic)
    reason = "its output shape depends on the input values; only static shapes are compiled"
    return node_message(model, node, reason) if node is not None else f"the model has {reason[4:]}"


def describe_import_failure(model, error: BaseException) -> str:
    """One line for a ``from_onnx`` failure: the node, its op type and opset, and the reason."""
    reason = error_reason(error)
    if UNSUPPORTED_PREFIX in reason:
        ops = [op.strip() for op in reason.split(UNSUPPORTED_PREFIX, 1)[1].split(",") if op.strip()]
        nodes = [next(node for node in model.graph.node if node.op_type == op) for op in ops
                 if any(node.op_type == op for node in model.graph.node)]
        if nodes:
            return "; ".join(node_message(model, node, "TVM's ONNX importer has no converter for this operator")
                             for node in nodes)
    node = _node_in_traceback(error)
    if node is not None:
        return node_message(model, node, reason)
    return f"TVM could not import the ONNX model: {reason}"


def node_message(model, node, reason: str) -> str:
    """``node <name> (<op_type>, opset N): <reason>``."""
    name = node.name or (node.output[0] if node.output else "?")
    return f"node {name} ({node.op_type}, opset {node_opset(model, node)}): {reason}"


def node_opset(model, node) -> int:
    """The opset version the model imports for the node's domain (0 when none is declared)."""
    domains = {"", "ai.onnx"} if node.domain in ("", "ai.onnx") else {node.domain}
    return next((entry.version for entry in model.opset_import if entry.domain in domains), 0)


def error_reason(error: BaseException) -> str:
    """The first line of an error message that is not traceback noise, with its type when it adds
    information (TVM's C++ errors carry their backtrace in the message)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip() and not _NOISE.match(line.strip())]
    text = lines[0] if lines else ""
    kind = type(error).__name__
    if not text:
        return kind
    return text if kind in ("ValueError", "RuntimeError", "TVMError", "InternalError") or text.startswith(kind) else f"{kind}: {text}"


def locate_failing_node(model, fails: Callable[[object], bool]):
    """The first node ``n`` such that ``fails(prefix graph ending at n)``, or ``None``.

    ``fails`` builds what failed (import, legalize, ...) for a model and answers whether the failure
    happens. Bisection assumes a prefix that fails keeps failing when nodes are appended, which holds
    for a failure that belongs to one node.
    """
    nodes = list(model.graph.node)
    with warnings.catch_warnings():  # the importer's checker warns about the untyped prefix outputs
        warnings.simplefilter("ignore")
        if not nodes or not fails(prefix_model(model, len(nodes))):
            return None
        low, high = 1, len(nodes)  # invariant: the prefix of ``high`` nodes fails
        while low < high:
            middle = (low + high) // 2
            if fails(prefix_model(model, middle)):
                high = middle
            else:
                low = middle + 1
    return nodes[high - 1]


def prefix_model(model, count: int):
    """``model`` cut after its first ``count`` nodes; the outputs of the last one are the graph outputs."""
    import onnx
    from onnx import helper

    prefix = onnx.ModelProto()
    prefix.CopyFrom(model)
    del prefix.graph.node[count:]
    del prefix.graph.output[:]
    prefix.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in prefix.graph.node[-1].output if name)
    return prefix


def _node_in_traceback(error: BaseException):
    """The ``node`` local of the importer's innermost node loop (an ``If`` branch's own loop is
    deeper than the main graph's) that the error passed through, if any."""
    found, seen = None, set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        trace = error.__traceback__
        while trace is not None:
            frame = trace.tb_frame
            if frame.f_code.co_name in ("_construct_nodes", "_convert_subgraph") and "node" in frame.f_locals:
                found = frame.f_locals["node"]
            trace = trace.tb_next
        if found is not None:
            return found
        error = error.__cause__ or error.__context__
    return None
