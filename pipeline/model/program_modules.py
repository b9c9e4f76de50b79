"""Real torch modules from a traced program (a ``torch.export`` ``.pt2`` file, or TorchScript).

Every stage finds layers by their module type (``nn.Conv2d``, ``nn.Linear``, ``nn.BatchNorm2d``):
masks and quantizers attach to them, channel removal rewrites them, batch norm trains in train mode.
A traced program has none: its graph calls ``aten.conv2d`` / ``aten.linear`` / ``aten.batch_norm``
on attributes, and TorchScript runs compiled code. So both are brought to one form:

1. TorchScript -> ``torch.export`` program (``torch._export.converter.TS2EPConverter``, on an
   example batch of the model's input shape; batch size stays dynamic).
2. Program -> ``fx.GraphModule`` (``ExportedProgram.module()``), its input guards dropped (a program
   exported at batch 1 would refuse the training batches).
3. Each ``aten.conv2d`` / ``aten.linear`` / ``aten.batch_norm`` whose weights belong to one attribute
   owner used once is replaced by a call of a real ``nn.Conv2d`` / ``nn.Linear`` / ``nn.BatchNorm``
   holding the same parameter objects, in the owner's place, so ``state_dict`` keys are unchanged.
   Zero-preserving aten ops (relu, add, flatten, pooling, cat, mean, reshape) become their
   ``torch`` functions, which the channel tracer understands.

torch ships no converter back from aten graphs to modules (``torch.export.unflatten`` rebuilds the
hierarchy but keeps the aten calls), hence this file.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import fx, nn

aten = torch.ops.aten

TORCH_FUNCTIONS = {
    aten.relu.default: torch.relu,
    aten.relu_.default: torch.relu,
    aten.add.Tensor: torch.add,
    aten.sub.Tensor: torch.sub,
    aten.mul.Tensor: torch.mul,
    aten.flatten.using_ints: torch.flatten,
    aten.cat.default: torch.cat,
    aten.mean.dim: torch.mean,
    aten.view.default: torch.reshape,
    aten.reshape.default: torch.reshape,
    aten.adaptive_avg_pool2d.default: F.adaptive_avg_pool2d,
    aten.max_pool2d.default: F.max_pool2d,
    aten.avg_pool2d.default: F.avg_pool2d,
    aten.hardtanh.default: F.hardtanh,
}


def program_to_modules(program: torch.export.ExportedProgram) -> fx.GraphModule:
    """The program's graph with real conv / linear / batch-norm modules (see the module docstring)."""
    module = program.module()
    _drop_guards(module)
    for node in list(module.graph.nodes):
        if node.op != "call_function":
            continue
        lift = LIFTS.get(node.target)
        arguments = node.normalized_arguments(module, normalize_to_only_use_kwargs=True) if lift is not None else None
        if arguments is not None and lift(module, node, arguments.kwargs):
            continue
        if node.target in TORCH_FUNCTIONS:
            node.target = TORCH_FUNCTIONS[node.target]
    _plain_signature(module.graph)
    module.graph.eliminate_dead_code()
    module.graph.lint()
    return fx.GraphModule(module, module.graph, class_name="ImportedProgram")  # a plain module: train() / eval() work


def torchscript_to_modules(script: torch.jit.ScriptModule, example: torch.Tensor) -> fx.GraphModule:
    """A TorchScript module as real modules, through a ``torch.export`` program of ``example``."""
    import logging
    import warnings

    from torch._export.converter import TS2EPConverter

    logger = logging.getLogger("torch._export")
    level = logger.level
    logger.setLevel(logging.ERROR)  # the converter's notes (unused buffers, dims it specialised) are not the user's concern
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = TS2EPConverter(script, (example,)).convert()
    finally:
        logger.setLevel(level)
    return program_to_modules(program)


def _plain_signature(graph: fx.Graph) -> None:
    """``forward(x) -> logits`` without the program's pytree flattening, so ``fx.symbolic_trace``
    (channel removal) can trace the module again."""
    output = next(node for node in graph.nodes if node.op == "output")
    values = output.args[0]
    if isinstance(values, (tuple, list)) and len(values) == 1:
        output.args = (values[0],)
    graph.set_codegen(fx.graph.CodeGen())


def _drop_guards(module: fx.GraphModule) -> None:
    """Remove the program's input-shape guards (``_guards_fn`` and ``aten._assert_*`` calls)."""
    for node in list(module.graph.nodes):
        guard = (node.op == "call_module" and node.target == "_guards_fn") or (
            node.op == "call_function" and str(getattr(node.target, "__name__", "")).startswith("_assert")
        )
        if guard and not node.users:
            module.graph.erase_node(node)
    if hasattr(module, "_guards_fn"):
        delattr(module, "_guards_fn")


def _owner_of(module: fx.GraphModule, kwargs: dict[str, Any], names: tuple[str, ...]) -> tuple[str, dict[str, torch.Tensor]] | None:
    """``(owner path, {name: tensor})`` when the ``get_attr`` nodes behind the call's arguments
    ``kwargs`` all read ``owner.<name>`` of one attribute owner, each read once; otherwise ``None``."""
    owner, tensors = None, {}
    for name in names:
        value = kwargs.get(name)
        if value is None:
            continue
        if not isinstance(value, fx.Node) or value.op != "get_attr" or len(value.users) != 1:
            return None
        path, _, attribute = value.target.rpartition(".")
        if owner not in (None, path) or not path:
            return None
        owner = path
        tensors[attribute] = _attribute(module, value.target)
    return (owner, tensors) if owner is not None else None


def _attribute(module: nn.Module, target: str) -> torch.Tensor:
    path, _, name = target.rpartition(".")
    return getattr(module.get_submodule(path) if path else module, name)


def _replace(module: fx.GraphModule, node: fx.Node, source: fx.Node, owner: str, layer: nn.Module, tensors: dict[str, torch.Tensor]) -> bool:
    """Put ``layer`` (holding ``tensors``, plus the owner's other buffers) in the owner's place and call it."""
    old = module.get_submodule(owner)
    for name, value in list(old.named_buffers(recurse=False)) + list(old.named_parameters(recurse=False)):
        tensors.setdefault(name, value)
    for name, value in tensors.items():
        if isinstance(value, nn.Parameter) or name in dict(layer.named_parameters(recurse=False)):
            setattr(layer, name, value if isinstance(value, nn.Parameter) else nn.Parameter(value))
        else:
            setattr(layer, name, value)
    parent, _, name = owner.rpartition(".")
    setattr(module.get_submodule(parent) if parent else module, name, layer)
    with module.graph.inserting_before(node):
        call = module.graph.call_module(owner, (source,))
    call.meta = dict(node.meta)
    node.replace_all_uses_with(call)
    module.graph.erase_node(node)
    return True


def _lift_conv(module: fx.GraphModule, node: fx.Node, kwargs: dict[str, Any]) -> bool:
    found = _owner_of(module, kwargs, ("weight", "bias"))
    if found is None or "weight" not in found[1]:
        return False
    owner, tensors = found
    weight = tensors["weight"]
    if weight.dim() != 4 or isinstance(kwargs.get("padding"), str):
        return False
    groups = int(kwargs.get("groups", 1))
    layer = nn.Conv2d(weight.shape[1] * groups, weight.shape[0], tuple(weight.shape[2:]), stride=_pair(kwargs.get("stride", 1)),
                      padding=_pair(kwargs.get("padding", 0)), dilation=_pair(kwargs.get("dilation", 1)), groups=groups, bias="bias" in tensors)
    return _replace(module, node, kwargs["input"], owner, layer, tensors)


def _lift_linear(module: fx.GraphModule, node: fx.Node, kwargs: dict[str, Any]) -> bool:
    found = _owner_of(module, kwargs, ("weight", "bias"))
    if found is None or "weight" not in found[1] or found[1]["weight"].dim() != 2:
        return False
    owner, tensors = found
    weight = tensors["weight"]
    return _replace(module, node, kwargs["input"], owner, nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in tensors), tensors)


def _lift_batch_norm(module: fx.GraphModule, node: fx.Node, kwargs: dict[str, Any]) -> bool:
    found = _owner_of(module, kwargs, ("weight", "bias", "running_mean", "running_var"))
    if found is None or not {"running_mean", "running_var"} <= set(found[1]):
        return False
    owner, tensors = found
    value = kwargs["input"].meta.get("val") if isinstance(kwargs["input"], fx.Node) else None
    kind = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 5: nn.BatchNorm3d}.get(getattr(value, "ndim", 4), nn.BatchNorm2d)
    features = tensors["running_mean"].numel()
    layer = kind(features, eps=float(kwargs.get("eps", 1e-5)), momentum=kwargs.get("momentum", 0.1), affine="weight" in tensors)
    return _replace(module, node, kwargs["input"], owner, layer, tensors)


def _pair(value: Any) -> tuple[int, int]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    return (int(values[0]), int(values[-1]))


LIFTS: dict[Any, Callable[[fx.GraphModule, fx.Node, dict[str, Any]], bool]] = {
    aten.conv2d.default: _lift_conv,
    aten.linear.default: _lift_linear,
    aten.batch_norm.default: _lift_batch_norm,
}
