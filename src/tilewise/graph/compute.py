"""The te compute of each graph operator: a node and its input tensors -> its output
tensors, by the functions of :mod:`tilewise.ops.nn` with the node's attributes.

Every operator of docs/graph-ops.md has one. The anchors' (``conv2d``, ``matmul``,
``max_pool2d``, ``avg_pool2d``) serve where the operator templates are ignored: a model
compiled or tuned with ``templates=False`` runs them by the generated schedule.

>>> x = te.placeholder((2, 3), name="x")
>>> (y,) = node_compute(Node("relu", ("x",), ("y",), name="r0"), [x])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ModelError, TensorError
from ..ops import nn
from ..te import Tensor
from .ir import Node

#: Operators that an operator template computes, unless the templates are ignored.
ANCHORS = frozenset({"conv2d", "matmul", "max_pool2d", "avg_pool2d"})

Compute = Callable[[Node, list[Tensor | None]], list[Tensor]]


def _label(node: Node) -> str:
    return f"{node.op} node {node.name!r}" if node.name else f"{node.op} node"


def _need(node: Node, key: str) -> Any:
    if key not in node.attrs:
        raise ModelError(f"{_label(node)}: attribute {key!r} is missing")
    return node.attrs[key]


def _inputs(node: Node, xs: list[Tensor | None], n: int) -> list[Tensor]:
    """The first ``n`` inputs, each present."""
    got = [t for t in xs[:n] if t is not None]
    if len(got) < n:
        raise ModelError(f"{_label(node)}: needs {n} input tensor(s), got {len(got)}")
    return got


def _name(node: Node) -> str:
    return node.name or node.op


def _unary(kind: str) -> Compute:
    def compute(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
        (x,) = _inputs(n, xs, 1)
        return [nn.unary(kind, x, name=_name(n))]

    return compute


def _binary(kind: str) -> Compute:
    def compute(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
        a, b = _inputs(n, xs, 2)
        return [nn.binary(kind, a, b, name=_name(n))]

    return compute


def _reduce(kind: str) -> Compute:
    def compute(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
        (x,) = _inputs(n, xs, 1)
        keepdims = bool(n.attr("keepdims", True))
        return [nn.reduce(kind, x, n.attr("axes"), keepdims, name=_name(n))]

    return compute


def _clip(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
    (x,) = _inputs(n, xs, 1)
    return [nn.clip(x, n.attr("min"), n.attr("max"), name=_name(n))]


def _gelu(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
    (x,) = _inputs(n, xs, 1)
    return [nn.gelu(x, n.attr("approximate", "none"), name=_name(n))]


def _cast(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
    (x,) = _inputs(n, xs, 1)
    return [nn.cast(x, _need(n, "to"), name=_name(n))]


def _where(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
    c, x, y = _inputs(n, xs, 3)
    return [nn.where(c, x, y, name=_name(n))]


def _batch_norm(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
    x, scale, bias, mean, var = _inputs(n, xs, 5)
    return [nn.batch_norm(x, scale, bias, mean, var, n.attr("epsilon", 1e-5), name=_name(n))]


def _softmax(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
    (x,) = _inputs(n, xs, 1)
    return [nn.softmax(x, n.attr("axis", -1), name=_name(n))]


def _layer_norm(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
    x, scale = _inputs(n, xs, 2)
    bias = xs[2] if len(xs) > 2 else None
    return [nn.layer_norm(x, scale, bias, n.attr("axis", -1), n.attr("epsilon", 1e-5),
                          name=_name(n))]


def _global_avg_pool(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
    (x,) = _inputs(n, xs, 1)
    return [nn.global_avg_pool(x, name=_name(n))]


def _reshape(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
    (x,) = _inputs(n, xs, 1)
    return [nn.reshape(x, _need(n, "shape"), name=_name(n))]


def _transpose(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
    (x,) = _inputs(n, xs, 1)
    return [nn.transpose(x, _need(n, "perm"), name=_name(n))]


def _concat(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
    return [nn.concat(_inputs(n, xs, len(xs)), _need(n, "axis"), name=_name(n))]


def _split(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
    (x,) = _inputs(n, xs, 1)
    return nn.split(x, _need(n, "axis"), _need(n, "sizes"), name=_name(n))


def _slice(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
    (x,) = _inputs(n, xs, 1)
    return [nn.strided_slice(x, _need(n, "starts"), _need(n, "ends"), _need(n, "steps"),
                             name=_name(n))]


def _gather(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
    data, indices = _inputs(n, xs, 2)
    return [nn.take(data, indices, _need(n, "axis"), name=_name(n))]


def _pad(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
    (x,) = _inputs(n, xs, 1)
    pads = _need(n, "pads")
    return [nn.pad(x, pads[:x.ndim], pads[x.ndim:], n.attr("value", 0.0), name=_name(n))]


def _expand(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
    (x,) = _inputs(n, xs, 1)
    return [nn.expand(x, _need(n, "shape"), name=_name(n))]


def _conv2d(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
    x, w = _inputs(n, xs, 2)
    bias = xs[2] if len(xs) > 2 else None
    return [nn.conv2d(x, w, bias, _need(n, "strides"), _need(n, "pads"),
                      _need(n, "dilations"), _need(n, "groups"), name=_name(n))]


def _matmul(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
    a, b = _inputs(n, xs, 2)
    return [nn.matmul(a, b, name=_name(n))]


def _pool(kind: str) -> Compute:
    def compute(n: Node, xs: list[Tensor | None]) -> list[Tensor]:
        (x,) = _inputs(n, xs, 1)
        return [nn.pool2d(kind, x, _need(n, "kernel"), _need(n, "strides"), _need(n, "pads"),
                          _need(n, "dilations"), bool(n.attr("ceil_mode", False)),
                          bool(n.attr("count_include_pad", False)), name=_name(n))]

    return compute


COMPUTES: dict[str, Compute] = {
    **{kind: _unary(kind) for kind in nn.UNARY},
    "clip": _clip,
    "gelu": _gelu,
    "cast": _cast,
    **{kind: _binary(kind) for kind in nn.BINARY},
    "where": _where,
    "batch_norm": _batch_norm,
    "softmax": _softmax,
    "layer_norm": _layer_norm,
    "global_avg_pool": _global_avg_pool,
    "reduce_mean": _reduce("mean"),
    "reduce_sum": _reduce("sum"),
    "reduce_max": _reduce("max"),
    "reshape": _reshape,
    "transpose": _transpose,
    "concat": _concat,
    "split": _split,
    "slice": _slice,
    "gather": _gather,
    "expand": _expand,
    "pad": _pad,
    "conv2d": _conv2d,
    "matmul": _matmul,
    "max_pool2d": _pool("max"),
    "avg_pool2d": _pool("avg"),
}


def node_compute(node: Node, inputs: Sequence[Tensor | None]) -> list[Tensor]:
    """The output tensors of ``node`` over ``inputs``, one te tensor per node input
    (None, or left out at the end, for an omitted optional input).

    Raises :class:`ModelError` for an unknown operator and for attributes or inputs the
    operator refuses.
    """
    fn = COMPUTES.get(node.op)
    if fn is None:
        raise ModelError(f"{_label(node)}: no te compute (unknown operator)")
    try:
        outs = fn(node, list(inputs))
    except TensorError as e:
        raise ModelError(f"{_label(node)}: {e}") from e
    if len(outs) != len(node.outputs):
        raise ModelError(f"{_label(node)}: computes {len(outs)} output(s), the node names "
                         f"{len(node.outputs)}")
    return outs


__all__ = ["ANCHORS", "COMPUTES", "node_compute"]
