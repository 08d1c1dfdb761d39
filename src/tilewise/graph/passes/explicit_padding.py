"""Padding that differs between the two sides of an axis becomes a node of its own.

Exporters write it for TensorFlow's SAME padding on even inputs (one more row and column
at the end than at the start); the convolution and pooling templates pad both sides
alike. A ``conv2d`` or ``max_pool2d`` with such ``pads`` then reads a ``pad`` node's
output (zeros for the convolution, -inf for the maximum) and pads nothing itself.
So does a max pooling with ``ceil_mode``: its last windows reach into end padding of
-inf, and it then rounds down. Average pooling stays as it is: its divisor counts the
padding it excludes.

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
        ceil = node.op == "max_pool2d" and bool(node.attr("ceil_mode", False))
        if node.op not in FILL or len(pads) != 4 or (pads[:2] == pads[2:] and not ceil):
            nodes.append(node)
            continue
        x = node.inputs[0]
        t = graph.type_of(x)
        top, left, bottom, right = pads
        n, c, h, w = t.shape
        if ceil:  # the end padding that the last (ceil_mode) windows reach into
            bottom, right = (b + _reach(node, graph, axis, size + a + b)
                             for axis, size, a, b in ((0, h, top, bottom), (1, w, left, right)))
        padded = fresh_name(f"{x}_padded", types)
        types[padded] = TensorType((n, c, h + top + bottom, w + left + right), t.dtype)
        nodes.append(Node("pad", (x,), (padded,),
                          {"pads": (0, 0, top, left, 0, 0, bottom, right),
                           "value": FILL[node.op]}, f"{node.name}_pad"))
        attrs = {**node.attrs, "pads": (0, 0, 0, 0)}
        if ceil:
            attrs["ceil_mode"] = 0
        nodes.append(Node(node.op, (padded, *node.inputs[1:]), node.outputs, attrs,
                          node.name))
    if len(nodes) == len(graph.nodes):
        return graph
    return graph.with_nodes(nodes, types=types)


def _reach(node: Node, graph: Graph, axis: int, padded: int) -> int:
    """How far past ``padded`` (the input and its padding along ``axis``) the last of
    the windows that make the node's output ends."""
    out = graph.type_of(node.outputs[0]).shape[2 + axis]
    kernel = node.attr("kernel")[axis]
    stride = tuple(node.attr("strides", (1, 1)))[axis]
    dilation = tuple(node.attr("dilations", (1, 1)))[axis]
    return max(0, (out - 1) * stride + dilation * (kernel - 1) + 1 - padded)
