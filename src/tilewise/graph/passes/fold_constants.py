"""Constant folding: every node whose inputs are all constants is evaluated, and its
outputs become constants.

Before::

    w2 = transpose(w; perm=[1, 0])
    y = matmul(x, w2)

After (``w`` constant)::

    const w2
    y = matmul(x, w2)
"""

from __future__ import annotations

from ..infer import array_type
from ..ir import Graph, Node
from ..ops import evaluate


def fold_constants(graph: Graph) -> Graph:
    constants = dict(graph.constants)
    types = dict(graph.types)
    kept: list[Node] = []
    for node in graph.nodes:
        ins = [name for name in node.inputs if name]
        if not all(name in constants for name in ins):
            kept.append(node)
            continue
        outs = evaluate(node, [constants[name] if name else None for name in node.inputs])
        for name, value in zip(node.outputs, outs, strict=True):
            constants[name] = value
            types[name] = array_type(value, f"{node.op} node {node.name!r}'s output")
    if len(kept) == len(graph.nodes):
        return graph
    return graph.with_nodes(kept, constants=constants, types=types)
