"""Padding that differs between the two sides of an axis becomes a node of its own.

Exporters write it for TensorFlow's SAME padding on even inputs (one more row and column
at the end than at the start); the convolution and pooling templates pad both sides
alike. A ``conv2d`` or ``max_pool2d`` with such ``pads`` then reads a ``pad`` node's
output (zeros for the convolution, -inf for the maximum) and pads nothing itself.
Average pooling stays as it is: its divisor counts the padding it excludes.

Before::

    y = conv2d(x, w; pads=(0, 0, 1, 1), strides=(2, 2))

After::

    x_padded = pad(x; pads=(0, 0, 0, 0, 0, 0, 1, 1), value=0)
    y = conv2d(x_padded, w; pads=(0, 0, 0, 0), strides=(2, 2))
"""

from __future__ import annotations

import math

from ..ir import Graph, Node, TensorType
from .rewrite import fresh_name

#: Operators rewritten, and the value their padding stands for.
FILL = {"conv2d": 0.0, "max_pool2d": -math.inf}


def explicit_padding(graph: Graph) -> Graph:
    nodes: list[Node] = []
    types = dict(graph.types)
    for node in graph.nodes:
        pads = tuple(node.attr("pads", (0, 0, 0, 0)))
        if node.op not in FILL or len(pads) != 4 or pads[:2] == pads[2:]:
            nodes.append(node)
            continue
        x = node.inputs[0]
        t = graph.type_of(x)
        top, left, bottom, right = pads
        n, c, h, w = t.shape
        padded = fresh_name(f"{x}_padded", types)
        types[padded] = TensorType((n, c, h + top + bottom, w + left + right), t.dtype)
        nodes.append(Node("pad", (x,), (padded,),
                          {"pads": (0, 0, top, left, 0, 0, bottom, right),
                           "value": FILL[node.op]}, f"{node.name}_pad"))
        nodes.append(Node(node.op, (padded, *node.inputs[1:]), node.outputs,
                          {**node.attrs, "pads": (0, 0, 0, 0)}, node.name))
    if len(nodes) == len(graph.nodes):
        return graph
    return graph.with_nodes(nodes, types=types)
