"""A matrix product whose batch dimensions broadcast (``(B, H, M, K) @ (1, H, K, N)``,
or a matrix by a batch of them) reads its operands expanded to the common batch shape,
so it runs the batched template; a constant 2-D right operand stays a dense layer.

Before::

    y = matmul(a, b)              # a: (2, 1, 5, 3), b: (4, 3, 6)

After::

    a_b = expand(a; shape=(2, 4, 5, 3)); b_b = expand(b; shape=(2, 4, 3, 6))
    y = matmul(a_b, b_b)
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node, TensorType
from .rewrite import fresh_name


def broadcast_matmul(graph: Graph) -> Graph:
    nodes: list[Node] = []
    types = dict(graph.types)
    changed = False
    for node in graph.nodes:
        batch = _batch(graph, node)
        if batch is None:
            nodes.append(node)
            continue
        ins = []
        for k, v in enumerate(node.inputs[:2]):
            t = graph.type_of(v)
            shape = (*batch, *t.shape[-2:])
            if t.shape == shape:
                ins.append(v)
                continue
            changed = True
            name = fresh_name(f"{v}_batched", types)
            types[name] = TensorType(shape, t.dtype)
            nodes.append(Node("expand", (v,), (name,), {"shape": shape},
                              f"{node.name}_expand{k}"))
            ins.append(name)
        nodes.append(Node(node.op, tuple(ins), node.outputs, node.attrs, node.name))
    if not changed:
        return graph
    return graph.with_nodes(nodes, types=types)


def _batch(graph: Graph, node: Node) -> tuple[int, ...] | None:
    """The common batch shape of a matmul whose operands' batch shapes differ (both at
    least 2-D, not a constant 2-D right operand); None for any other node."""
    if node.op != "matmul" or len(node.inputs) < 2:
        return None
    a, b = (graph.type_of(v).shape for v in node.inputs[:2])
    if len(a) < 2 or len(b) < 2 or a[:-2] == b[:-2]:
        return None
    if len(b) == 2 and graph.is_constant(node.inputs[1]):
        return None
    return tuple(int(d) for d in np.broadcast_shapes(a[:-2], b[:-2]))
