"""Lower a saved ``torch.export`` program to an ExecuTorch ``.pte`` with the XNNPACK partitioner.

Runs in the ExecuTorch virtual environment (its torch is the same release as the system one, so the
``.pt2`` the system Python saved loads here)::

    python peers_executorch.py IN.pt2 OUT.pte

Prints one JSON line: how many graph nodes XNNPACK took (delegated) and how many stayed portable.
"""

from __future__ import annotations

import json
import sys


def lower(source: str, target: str) -> dict:
    """Write the XNNPACK-delegated ``.pte`` of the exported program at ``source`` to ``target``."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    program = torch.export.load(source)
    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    graph = edge.exported_program().graph_module.graph
    calls = [node for node in graph.nodes if node.op == "call_function"]
    delegated = sum("executorch_call_delegate" in str(node.target) for node in calls)
    with open(target, "wb") as handle:
        handle.write(edge.to_executorch().buffer)
    others = sum("executorch_call_delegate" not in str(node.target) and "getitem" not in str(node.target) for node in calls)
    return {"delegate_calls": delegated, "portable_calls": others}


def main() -> None:
    """Command line: ``IN.pt2 OUT.pte``."""
    print(json.dumps(lower(sys.argv[1], sys.argv[2])))


if __name__ == "__main__":
    main()
