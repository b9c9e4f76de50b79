"""Channel dependency graph of a model, traced with ``torch.fx``.

Every output channel of a conv / linear ("producer") is an *atom*. Each traced tensor carries the
list of atoms of its channel dim (dim 1; features for 2-D tensors). Pass-through ops (batch norm,
depthwise conv, zero-preserving activations, pooling) keep the list; ``cat`` on dim 1 concatenates
lists (offset mapping); ``flatten`` repeats each atom ``H*W`` times (a linear's input features);
binary ops (residual add, mul) union their operands' atoms pairwise in a union-find, so coupled
channels form one *class* that is removed or kept as a whole. Model inputs, outputs and the
operands of any op not understood are *pinned*: their classes are never removed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from compress.prune import channel_ops as ops


@dataclass
class ChannelGraph:
    """Atoms, their producers and coupling, and which module channel slots hold which atoms.

    Attributes:
        owners: atom -> ``(producer fqn, output channel)``; ``None`` for input / opaque atoms.
        parent: union-find parent of each atom.
        pinned_io: atoms tied to model inputs / outputs.
        pinned_opaque: atoms consumed or produced by an op that cannot be rewritten.
        inputs: module fqn -> atoms of its input channel slots (conv, depthwise, linear, BN).
        outputs: module fqn -> atoms of its output channel slots.
        kinds: module fqn -> ``"conv"``, ``"depthwise"``, ``"linear"`` or ``"batchnorm"``.
        notes: human-readable reasons for anything pinned.
        traced: ``False`` when ``torch.fx`` could not trace the model.
    """

    owners: list[tuple[str, int] | None] = field(default_factory=list)
    parent: list[int] = field(default_factory=list)
    pinned_io: set[int] = field(default_factory=set)
    pinned_opaque: set[int] = field(default_factory=set)
    inputs: dict[str, list[int]] = field(default_factory=dict)
    outputs: dict[str, list[int]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    traced: bool = True

    def new_atoms(self, count: int, *, owner: str | None = None, pinned: set[int] | None = None) -> list[int]:
        start = len(self.owners)
        for index in range(count):
            self.owners.append(None if owner is None else (owner, index))
            self.parent.append(start + index)
        atoms = list(range(start, start + count))
        if pinned is not None:
            pinned.update(atoms)
        return atoms

    def find(self, atom: int) -> int:
        while self.parent[atom] != atom:
            self.parent[atom] = self.parent[self.parent[atom]]
            atom = self.parent[atom]
        return atom

    def union(self, left: list[int], right: list[int]) -> None:
        for a, b in zip(left, right, strict=True):
            root_a, root_b = self.find(a), self.find(b)
            if root_a != root_b:
                self.parent[max(root_a, root_b)] = min(root_a, root_b)

    def classes(self) -> dict[int, list[int]]:
        """Root atom -> all atoms coupled with it."""
        groups: dict[int, list[int]] = {}
        for atom in range(len(self.owners)):
            groups.setdefault(self.find(atom), []).append(atom)
        return groups

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def _shape(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


class _Walker:
    """Assigns atoms to every fx node, one handler per kind of op."""

    def __init__(self, gm: fx.GraphModule, graph: ChannelGraph) -> None:
        self.gm, self.graph = gm, graph
        self.env: dict[fx.Node, list[int] | None] = {}
        self.calls: dict[str, int] = {}
        for node in gm.graph.nodes:
            if node.op == "call_module":
                self.calls[node.target] = self.calls.get(node.target, 0) + 1

    def run(self) -> None:
        for node in self.gm.graph.nodes:
            self.env[node] = self.visit(node)

    def atoms_of(self, arg) -> list[int] | None:
        return self.env.get(arg) if isinstance(arg, fx.Node) else None

    def fresh(self, node: fx.Node, pinned: set[int]) -> list[int] | None:
        shape = _shape(node)
        return self.graph.new_atoms(shape[1], pinned=pinned) if shape is not None and len(shape) >= 2 else None

    def opaque(self, node: fx.Node, reason: str) -> list[int] | None:
        """Pin the channels of every tensor operand; the result gets fresh pinned channels."""
        touched = []
        fx.node.map_arg((node.args, node.kwargs), lambda arg: touched.append(arg))
        pinned_any = False
        for arg in touched:
            atoms = self.atoms_of(arg)
            if atoms:
                self.graph.pinned_opaque.update(atoms)
                pinned_any = True
        if pinned_any:
            self.graph.note(f"{node.name}: {reason}; its input channels are kept (not removable)")
        return self.fresh(node, self.graph.pinned_opaque)

    def visit(self, node: fx.Node) -> list[int] | None:
        if node.op in ("placeholder", "get_attr"):
            return self.fresh(node, self.graph.pinned_io)
        if node.op == "output":
            fx.node.map_arg(node.args, lambda arg: self.graph.pinned_io.update(self.atoms_of(arg) or []))
            return None
        if node.op == "call_module":
            return self.visit_module(node, self.gm.get_submodule(node.target))
        return self.visit_call(node, node.target)

    def passthrough(self, node: fx.Node) -> list[int] | None:
        atoms = self.atoms_of(node.args[0]) if node.args else None
        shape = _shape(node)
        if atoms is None or shape is None or len(shape) < 2 or shape[1] != len(atoms):
            return self.opaque(node, "channel count changes through a pass-through op")
        return atoms

    def visit_module(self, node: fx.Node, module: nn.Module) -> list[int] | None:
        fqn = node.target
        if isinstance(module, ops.PASS_MODULES):
            return self.passthrough(node)
        if isinstance(module, nn.Flatten):
            return self.flatten(node, start=module.start_dim, end=module.end_dim)
        if self.calls[fqn] > 1 and any(True for _ in module.parameters()):
            return self.opaque(node, f"module {fqn!r} is called {self.calls[fqn]} times")
        atoms = self.atoms_of(node.args[0]) if node.args else None
        if atoms is None:
            return self.opaque(node, f"module {fqn!r} has no traced tensor input")
        if isinstance(module, ops.BATCHNORMS) and len(atoms) == module.num_features:
            return self.register(fqn, "batchnorm", atoms, atoms)
        if isinstance(module, ops.CONVS) and len(atoms) == module.in_channels:
            if module.groups == 1:
                return self.register(fqn, "conv", atoms, self.graph.new_atoms(module.out_channels, owner=fqn))
            if ops.is_depthwise(module):
                return self.register(fqn, "depthwise", atoms, atoms)
            return self.opaque(node, f"grouped conv {fqn!r} (groups={module.groups}) is not rewritten")
        if isinstance(module, nn.Linear) and len(_shape(node.args[0]) or ()) == 2:
            return self.register(fqn, "linear", atoms, self.graph.new_atoms(module.out_features, owner=fqn))
        return self.opaque(node, f"unsupported module {fqn!r} ({type(module).__name__})")

    def register(self, fqn: str, kind: str, inputs: list[int], outputs: list[int]) -> list[int]:
        self.graph.kinds[fqn] = kind
        self.graph.inputs[fqn] = inputs
        self.graph.outputs[fqn] = outputs
        return outputs

    def visit_call(self, node: fx.Node, target) -> list[int] | None:
        if node.op == "call_method" and target in ("size", "dim", "numel"):
            return None
        if target in ops.PASS_FUNCTIONS or (node.op == "call_method" and target in ops.PASS_METHODS):
            return self.passthrough(node)
        if target in ops.COUPLING_FUNCTIONS or (node.op == "call_method" and target in ops.COUPLING_METHODS):
            return self.binary(node, target)
        if target in ops.CAT_FUNCTIONS:
            return self.cat(node)
        if target in ops.FLATTEN_FUNCTIONS or (node.op == "call_method" and target in ops.RESHAPE_METHODS):
            return self.reshape(node)
        if target in ops.MEAN_TARGETS:
            return self.mean(node)
        if node.op == "call_function" and getattr(target, "__name__", "") == "getitem":
            return self.opaque(node, "indexing") if self.atoms_of(node.args[0]) else None
        return self.opaque(node, f"unsupported op {getattr(target, '__name__', target)!s}")

    def binary(self, node: fx.Node, target) -> list[int] | None:
        left, right = node.args[0], node.args[1] if len(node.args) > 1 else node.kwargs.get("other")
        left_atoms, right_atoms = self.atoms_of(left), self.atoms_of(right)
        if left_atoms is not None and right_atoms is not None:
            if len(left_atoms) != len(right_atoms) or len(_shape(left)) != len(_shape(right)):
                return self.opaque(node, "broadcast between different channel layouts")
            self.graph.union(left_atoms, right_atoms)
            return left_atoms
        atoms = left_atoms if left_atoms is not None else right_atoms
        other = right if left_atoms is not None else left
        if atoms is not None and isinstance(other, (int, float)) and (target in ops.SCALAR_ZERO_SAFE or other == 0):
            return atoms
        return self.opaque(node, "binary op with a non-zero-preserving scalar")

    def cat(self, node: fx.Node) -> list[int] | None:
        tensors = node.args[0]
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        shape = _shape(node)
        parts = [self.atoms_of(t) for t in tensors]
        if shape is None or dim % len(shape) != 1 or any(p is None for p in parts):
            return self.opaque(node, f"concatenation along dim {dim} (only dim 1 is mapped)")
        return [atom for part in parts for atom in part]

    def flatten(self, node: fx.Node, *, start: int, end: int) -> list[int] | None:
        in_shape = _shape(node.args[0])
        atoms = self.atoms_of(node.args[0])
        if atoms is None or in_shape is None or start != 1 or end % len(in_shape) != len(in_shape) - 1:
            return self.opaque(node, f"flatten({start}, {end}) that does not end in [N, C*H*W]")
        spatial = math.prod(in_shape[2:])
        return [atom for atom in atoms for _ in range(spatial)]

    def reshape(self, node: fx.Node) -> list[int] | None:
        in_shape, out_shape = _shape(node.args[0]), _shape(node)
        if in_shape is None or out_shape is None or len(in_shape) < 2:
            return self.opaque(node, "reshape of an untraced shape")
        if len(out_shape) == 2 and out_shape[0] == in_shape[0] and out_shape[1] == math.prod(in_shape[1:]):
            return self.flatten(node, start=1, end=-1)
        return self.opaque(node, f"reshape {list(in_shape)} -> {list(out_shape)}")

    def mean(self, node: fx.Node) -> list[int] | None:
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        in_shape = _shape(node.args[0])
        dims = (dims,) if isinstance(dims, int) else dims
        if dims is None or in_shape is None or any(d % len(in_shape) in (0, 1) for d in dims):
            return self.opaque(node, "reduction over the batch or channel dim")
        return self.passthrough(node)


def trace_channels(model: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> ChannelGraph:
    """Trace ``model`` (eval mode, on ``example_inputs``) into a ``ChannelGraph``; never raises on trace failure."""
    graph = ChannelGraph()
    try:
        gm = fx.symbolic_trace(model)
    except Exception as error:  # noqa: BLE001 - any trace failure means "fall back to masking"
        graph.traced = False
        graph.note(f"torch.fx could not trace the model ({type(error).__name__}: {error}); no channel is removed")
        return graph
    was_training = gm.training
    gm.eval()
    with torch.no_grad():
        ShapeProp(gm).propagate(*example_inputs)
    gm.train(was_training)
    _Walker(gm, graph).run()
    return graph
