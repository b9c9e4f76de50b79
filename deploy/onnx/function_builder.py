"""A tiny builder for ONNX function bodies: ``body.op("Add", a, b)`` returns a fresh output name."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper


@dataclass
class FunctionBody:
    """Nodes of one function body under construction (local to one build call, never shared).

    Attributes:
        nodes: the nodes added so far, in topological order.
    """

    nodes: list[onnx.NodeProto] = field(default_factory=list)
    constants: dict[tuple, str] = field(default_factory=dict)

    def op(self, op_type: str, *inputs: str, **attributes) -> str:
        """Append a node with one output and return that output's name."""
        output = f"t{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], **attributes))
        return output

    def const(self, values, dtype) -> str:
        """Name of a ``Constant`` holding ``np.asarray(values, dtype)`` (one node per distinct value)."""
        array = np.asarray(values, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self.constants:
            self.constants[key] = self.op("Constant", value=numpy_helper.from_array(array, name=""))
        return self.constants[key]

    def slice1(self, data: str, start: int, end: int) -> str:
        """``data[start:end]`` on axis 0 with constant bounds."""
        return self.op("Slice", data, self.const([start], np.int64), self.const([end], np.int64))

    def function(self, name: str, *, domain: str, inputs: list[str], output: str, opset: int) -> onnx.FunctionProto:
        """Finish the body as a ``FunctionProto`` whose single output is ``output``."""
        self.nodes.append(helper.make_node("Identity", [output], ["W"]))
        return helper.make_function(
            domain, name, inputs, ["W"], self.nodes, [helper.make_opsetid("", opset)]
        )
