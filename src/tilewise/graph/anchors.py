"""Anchors: the graph operators that run an operator template, which template and
arguments each runs, and the element-wise epilogue each takes with it.

A convolution runs ``conv2d_nchw`` (dispatch may pick its Winograd implementation) or,
one channel per group, ``depthwise_conv2d_nchw``; a matrix product by a constant 2-D
matrix runs ``dense`` over the rows of all leading dimensions, one by a computed matrix
``batch_matmul``; pooling runs ``max_pool2d`` / ``avg_pool2d``. Their arguments are
written as ``tilewise tune`` writes them (every default filled), so records made either
way serve both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import ModelError
from .ir import Graph, Node


@dataclass(frozen=True)
class TemplateCall:
    """A template's name and arguments, and the graph value behind each of its tensors
    (in the template's tensor order; the output last)."""

    template: str
    args: tuple
    values: tuple[str, ...]


@dataclass
class Epilogue:
    """Element-wise steps fused after an anchor: their template spelling, the values
    the bias and residual steps read, the nodes they replace and the value written."""

    steps: list[str] = field(default_factory=list)
    bias: str | None = None
    residual: str | None = None
    nodes: list[Node] = field(default_factory=list)
    output: str = ""

    @property
    def spelling(self) -> str:
        return "+".join(self.steps)


def _sym(pair: tuple[int, int]) -> int | tuple[int, int]:
    """As ``tilewise tune`` writes a pair: one number where both agree."""
    return pair[0] if pair[0] == pair[1] else (pair[0], pair[1])


def _conv_pads(node: Node) -> tuple[int, int]:
    top, left, bottom, right = node.attr("pads", (0, 0, 0, 0))
    if (top, left) != (bottom, right):
        raise ModelError(f"node {node.name!r} ({node.op}): asymmetric padding "
                         f"{tuple(node.attr('pads'))} is not supported yet")
    return top, left


def _conv_kind(graph: Graph, node: Node) -> str:
    x, w = graph.type_of(node.inputs[0]), graph.type_of(node.inputs[1])
    groups = node.attr("groups", 1)
    if groups == 1:
        return "conv2d_nchw"
    if groups == x.shape[1] and w.shape[0] == groups and w.shape[1] == 1:
        return "depthwise_conv2d_nchw"
    raise ModelError(f"node {node.name!r} (conv2d): grouped convolution with groups={groups} "
                     "is not supported yet (only groups=1 and depthwise)")


def _dense(graph: Graph, node: Node) -> bool:
    """A matrix product by a constant 2-D matrix (a fully connected layer)."""
    return graph.is_constant(node.inputs[1]) and len(graph.type_of(node.inputs[1]).shape) == 2


def takes_epilogue(graph: Graph, node: Node) -> bool:
    if node.op == "conv2d":
        return True
    return node.op == "matmul" and _dense(graph, node)


def match_epilogue(graph: Graph, anchor: Node, group_of: dict[str, int],
                   index: int) -> Epilogue:
    """The chain of element-wise consumers of ``anchor`` that its template applies;
    ``group_of`` maps values to the groups writing them, ``index`` is the anchor's."""
    epi = Epilogue(output=anchor.outputs[0])
    if not takes_epilogue(graph, anchor):
        return epi
    if anchor.op == "conv2d" and len(anchor.inputs) > 2 and anchor.inputs[2]:
        epi.steps.append("bias")
        epi.bias = anchor.inputs[2]
    y = anchor.outputs[0]
    out_type = graph.type_of(y)
    channels = out_type.shape[1] if anchor.op == "conv2d" else out_type.shape[-1]
    while y not in graph.outputs and len(graph.consumers(y)) == 1:
        c = graph.consumers(y)[0]
        step, value = _step(graph, c, y, channels, anchor.op)
        if step is None or (step in ("bias", "residual") and step in epi.steps):
            break
        if step == "residual" and graph.producer(value) is not None and (
                group_of.get(value, index) >= index):
            break  # written after the anchor runs (or by a node not yet placed)
        epi.steps.append(step)
        if step == "bias":
            epi.bias = value
        elif step == "residual":
            epi.residual = value
        epi.nodes.append(c)
        y = c.outputs[0]
    epi.output = y
    return epi


def _step(graph: Graph, c: Node, y: str, channels: int, anchor_op: str
          ) -> tuple[str | None, str | None]:
    """The epilogue step node ``c`` applies to ``y`` (and the value it reads), if any."""
    if graph.type_of(c.outputs[0]) != graph.type_of(y):
        return None, None
    if c.op == "relu":
        return "relu", None
    if c.op == "clip" and c.attr("min") == 0 and c.attr("max") == 6:
        return "relu6", None
    if c.op == "clip" and c.attr("min") == 0 and c.attr("max") is None:
        return "relu", None
    if c.op == "gelu" and c.attr("approximate", "none") == "none":
        return "gelu", None
    if c.op != "add" or c.inputs[0] == c.inputs[1]:
        return None, None
    other = c.inputs[1] if c.inputs[0] == y else c.inputs[0]
    shape = graph.type_of(other).shape
    if graph.is_constant(other):
        per_channel = ((channels, 1, 1) if anchor_op == "conv2d" else (channels,))
        if shape[-len(per_channel):] == per_channel and math.prod(shape) == channels:
            return "bias", other
        return None, None
    if shape == graph.type_of(y).shape:
        return "residual", other
    return None, None


def template_call(graph: Graph, anchor: Node, epi: Epilogue,
                  layouts: Mapping[str, int] | None = None) -> TemplateCall:
    """What ``anchor`` (with its epilogue) runs; ``layouts``: the values kept in
    channel blocks, and their blocks (:mod:`.layouts`)."""
    if anchor.op == "conv2d":
        return _conv_call(graph, anchor, epi, layouts or {})
    if anchor.op == "matmul":
        return _matmul_call(graph, anchor, epi)
    if anchor.op in ("max_pool2d", "avg_pool2d"):
        return _pool_call(graph, anchor)
    raise ModelError(f"node {anchor.name!r}: {anchor.op} has no operator template")


def template_covers(graph: Graph, anchor: Node, epi: Epilogue) -> bool:
    """Whether an operator template runs ``anchor`` with its epilogue. Where none does
    (pooling padded unevenly, dilated, or counting its pads), the generated schedule
    runs it, as it runs a group no template covers."""
    try:
        template_call(graph, anchor, epi)
    except ModelError:
        return False
    return True


def _extras(epi: Epilogue) -> list[str]:
    """The epilogue's extra tensors in the template's order (bias, residual as the
    steps name them)."""
    out = []
    for step in epi.steps:
        if step == "bias":
            out.append(epi.bias)
        elif step == "residual":
            out.append(epi.residual)
    return out


def _conv_call(graph: Graph, node: Node, epi: Epilogue,
               layouts: Mapping[str, int]) -> TemplateCall:
    x, w = graph.type_of(node.inputs[0]), graph.type_of(node.inputs[1])
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    stride = _sym(tuple(node.attr("strides", (1, 1))))
    dilation = _sym(tuple(node.attr("dilations", (1, 1))))
    pad = _sym(_conv_pads(node))
    values = (node.inputs[0], node.inputs[1], *_extras(epi), epi.output)
    blocks = (layouts.get(node.inputs[0], 0), layouts.get(epi.output, 0))
    if _conv_kind(graph, node) == "depthwise_conv2d_nchw":
        args = (N, C, H, W, R, S, stride, pad, dilation, x.dtype, epi.spelling, *blocks)
        return TemplateCall("depthwise_conv2d_nchw", args, values)
    args = (N, C, H, W, K, R, S, stride, pad, dilation, x.dtype, epi.spelling, *blocks)
    return TemplateCall("conv2d_nchw", args, values)


def _matmul_call(graph: Graph, node: Node, epi: Epilogue) -> TemplateCall:
    a, b = graph.type_of(node.inputs[0]), graph.type_of(node.inputs[1])
    out = graph.type_of(node.outputs[0])
    if len(a.shape) < 2 and len(b.shape) < 2:
        raise ModelError(f"node {node.name!r} (matmul): a product of vectors is not supported")
    if _dense(graph, node) and len(a.shape) >= 2:
        K, N = b.shape
        M = math.prod(a.shape[:-1])
        values = (node.inputs[0], node.inputs[1], *_extras(epi), epi.output)
        return TemplateCall("dense", (M, N, K, epi.spelling, a.dtype), values)
    if len(a.shape) < 2 or len(b.shape) < 2 or a.shape[:-2] != b.shape[:-2]:
        raise ModelError(f"node {node.name!r} (matmul): a product of {a} by {b} (batch "
                         "dimensions that broadcast) is not supported yet")
    M, K = a.shape[-2:]
    N = b.shape[-1]
    Bt = math.prod(out.shape[:-2])
    return TemplateCall("batch_matmul", (Bt, M, N, K, a.dtype),
                        (node.inputs[0], node.inputs[1], node.outputs[0]))


def _pool_call(graph: Graph, node: Node) -> TemplateCall:
    x = graph.type_of(node.inputs[0])
    N, C, H, W = x.shape
    R, S = node.attr("kernel")
    if tuple(node.attr("dilations", (1, 1))) != (1, 1) or node.attr("ceil_mode", False):
        raise ModelError(f"node {node.name!r} ({node.op}): dilation and ceil_mode are not "
                         "supported yet")
    if (node.op == "avg_pool2d" and node.attr("count_include_pad", False)
            and any(node.attr("pads", (0, 0, 0, 0)))):
        raise ModelError(f"node {node.name!r} (avg_pool2d): count_include_pad=1 is not "
                         "supported yet")
    args = (N, C, H, W, R, S, _sym(tuple(node.attr("strides", (1, 1)))),
            _sym(_conv_pads(node)), x.dtype)
    return TemplateCall(node.op, args, (node.inputs[0], node.outputs[0]))
