"""BatchNorm folding: a batch_norm reading a conv2d's output (read by nothing else),
with constant statistics and a constant conv weight (and bias), is folded into the
conv's weight and bias; the conv gets a bias if it had none. Any other batch_norm stays.

Before::

    c = conv2d(x, w)
    y = batch_norm(c, scale, bias, mean, var; epsilon=1e-05)

After::

    y = conv2d(x, w_bn, y_bias)    # w_bn = w * scale / sqrt(var + eps), per channel
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node, TensorType
from .rewrite import fresh_name


def fold_batch_norm(graph: Graph) -> Graph:
    constants = dict(graph.constants)
    types = dict(graph.types)
    replaced: dict[int, Node | None] = {}  # id(node) -> its replacement, None: dropped
    for bn in graph.nodes:
        conv = _foldable_conv(graph, bn)
        if conv is None:
            continue
        w = constants[conv.inputs[1]]
        scale, bias, mean, var = (np.asarray(constants[v], np.float64) for v in bn.inputs[1:])
        factor = scale / np.sqrt(var + bn.attrs["epsilon"])
        old_bias = (np.asarray(constants[conv.inputs[2]], np.float64)
                    if len(conv.inputs) > 2 and conv.inputs[2] else 0.0)
        taken = set(types) | set(constants)
        w_name = fresh_name(f"{conv.inputs[1]}_bn", taken)
        b_name = fresh_name(f"{bn.outputs[0]}_bias", taken | {w_name})
        constants[w_name] = (w * factor.reshape(-1, 1, 1, 1)).astype(w.dtype)
        constants[b_name] = ((old_bias - mean) * factor + bias).astype(w.dtype)
        types[w_name] = TensorType(w.shape, w.dtype.name)
        types[b_name] = TensorType((w.shape[0],), w.dtype.name)
        replaced[id(conv)] = Node("conv2d", (conv.inputs[0], w_name, b_name), bn.outputs,
                                  conv.attrs, conv.name)
        replaced[id(bn)] = None
    if not replaced:
        return graph
    nodes = [replaced.get(id(n), n) for n in graph.nodes]
    return graph.with_nodes([n for n in nodes if n is not None], constants=constants,
                            types=types)


def _foldable_conv(graph: Graph, bn: Node) -> Node | None:
    if bn.op != "batch_norm":
        return None
    conv = graph.producer(bn.inputs[0])
    if conv is None or conv.op != "conv2d":
        return None
    if bn.inputs[0] in graph.outputs or len(graph.consumers(bn.inputs[0])) != 1:
        return None
    weights = [v for v in conv.inputs[1:] if v] + list(bn.inputs[1:])
    if not all(graph.is_constant(v) for v in weights):
        return None
    return conv
