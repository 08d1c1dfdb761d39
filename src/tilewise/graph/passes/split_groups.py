"""A grouped convolution (ResNeXt's, ShuffleNet's; neither one group nor depthwise)
becomes one convolution per group over a slice of the input channels, and a concat of
their outputs: each group then runs the convolution template, its weights and bias
the group's rows of the constants.

Before::

    y = conv2d(x, w, b; groups=2)          # x: (1, 8, H, W), w: (6, 4, 3, 3)

After::

    x_g0 = slice(x; channels 0..3); y_g0 = conv2d(x_g0, w_g0, b_g0)
    x_g1 = slice(x; channels 4..7); y_g1 = conv2d(x_g1, w_g1, b_g1)
    y = concat(y_g0, y_g1; axis=1)
"""

from __future__ import annotations

from ..ir import Graph, Node, TensorType
from .rewrite import fresh_name


def split_groups(graph: Graph) -> Graph:
    nodes: list[Node] = []
    types, constants = dict(graph.types), dict(graph.constants)
    changed = False
    for node in graph.nodes:
        if not _grouped(graph, node):
            nodes.append(node)
            continue
        changed = True
        groups = node.attr("groups")
        x, w = node.inputs[0], node.inputs[1]
        bias = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
        n, c, h, width = graph.type_of(x).shape
        (out,) = node.outputs
        on, k, oh, ow = graph.type_of(out).shape
        cg, kg = c // groups, k // groups
        parts = []

        def value(base: str, t: TensorType, g: int) -> str:
            name = fresh_name(f"{base}_g{g}", types.keys() | constants.keys())
            types[name] = t
            return name

        for g in range(groups):
            xs = value(x, TensorType((n, cg, h, width), graph.type_of(x).dtype), g)
            nodes.append(Node("slice", (x,), (xs,),
                              {"starts": (0, g * cg, 0, 0), "ends": (n, (g + 1) * cg, h, width),
                               "steps": (1, 1, 1, 1)}, f"{node.name}_slice{g}"))
            ws = value(w, TensorType((kg, *graph.type_of(w).shape[1:]), graph.type_of(w).dtype),
                       g)
            constants[ws] = graph.constants[w][g * kg:(g + 1) * kg]
            ins = [xs, ws]
            if bias is not None:
                bs = value(bias, TensorType((kg,), graph.type_of(bias).dtype), g)
                constants[bs] = graph.constants[bias][g * kg:(g + 1) * kg]
                ins.append(bs)
            ys = value(out, TensorType((on, kg, oh, ow), graph.type_of(out).dtype), g)
            nodes.append(Node("conv2d", tuple(ins), (ys,), {**node.attrs, "groups": 1},
                              f"{node.name}_g{g}"))
            parts.append(ys)
        nodes.append(Node("concat", tuple(parts), (out,), {"axis": 1}, f"{node.name}_concat"))
    if not changed:
        return graph
    return graph.with_nodes(nodes, types=types, constants=constants)


def _grouped(graph: Graph, node: Node) -> bool:
    """A convolution of several groups that is not depthwise (one channel a group, one
    output a group), with constant weights (and bias)."""
    groups = node.attr("groups", 1)
    if node.op != "conv2d" or groups == 1:
        return False
    c = graph.type_of(node.inputs[0]).shape[1]
    w = graph.type_of(node.inputs[1]).shape
    if groups == c and w[0] == groups and w[1] == 1:
        return False
    return all(graph.is_constant(v) for v in node.inputs[1:] if v)
