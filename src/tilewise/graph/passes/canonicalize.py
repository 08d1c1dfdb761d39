"""Canonicalisation: spelled-out patterns become the fused operators, and no-ops go.

- the erf GELU ``x * 0.5 * (1 + erf(x / sqrt(2)))`` (0.5 applied first or last, the
  division as a multiplication by 0.7071) becomes ``gelu(x; approximate=none)``;
- the tanh GELU ``0.5 * x * (1 + tanh(0.79788 * (x + 0.044715 * x^3)))`` (x^3 as a
  power or as products) becomes ``gelu(x; approximate=tanh)``;
- the decomposed LayerNorm (mean over trailing axes, subtract, square (pow 2 or
  self-multiply), mean, add eps, sqrt, divide (or multiply by the reciprocal), multiply
  by gamma, add beta) becomes ``layer_norm(x, gamma, beta)``;
- a reshape to the input's shape and a cast to its element type are removed, and a
  reshape of a reshape reads the first one's input.

Before::

    h = mul(x, c0.5); e = erf(div(x, c1.4142)); y = mul(h, add(e, c1))

After::

    y = gelu(x; approximate=none)

A pattern's root node is replaced; its inner nodes are left to the dead-code removal
that ends the pass, so a value the model reads elsewhere stays.
"""

from __future__ import annotations

import math

import numpy as np

from ..infer import array_type
from ..ir import Graph, Node
from .remove_dead import remove_dead
from .rewrite import Forwarder, fresh_name

_RTOL = 1e-3  # constants in exported models are rounded: 1.4142, 0.7071, 0.79788


class _Matcher:
    """Questions about the graph being rewritten, asked of its original nodes."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    def node(self, value: str, op: str) -> Node | None:
        n = self.graph.producer(value)
        return n if n is not None and n.op == op else None

    def pairs(self, value: str, op: str) -> list[tuple[str, str]]:
        """The operands of the binary ``op`` writing ``value``, in both orders."""
        n = self.node(value, op)
        if n is None or len(n.inputs) != 2:
            return []
        a, b = n.inputs
        return [(a, b), (b, a)]

    def scalar(self, value: str) -> float | None:
        c = self.graph.constants.get(value)
        if c is None or c.size != 1 or c.dtype.kind not in "fi":
            return None
        return float(c.reshape(()))

    def near(self, value: str, target: float) -> bool:
        c = self.scalar(value)
        return c is not None and abs(c - target) <= _RTOL * abs(target)

    # -- GELU --------------------------------------------------------------------------

    def one_plus(self, value: str) -> tuple[str, str] | None:
        """``1 + erf(x / sqrt 2)`` or ``1 + tanh(...)``: (x, approximate)."""
        for one, t in self.pairs(value, "add"):
            if self.near(one, 1.0):
                found = self.erf_part(t) or self.tanh_part(t)
                if found:
                    return found
        return None

    def erf_part(self, value: str) -> tuple[str, str] | None:
        erf = self.node(value, "erf")
        if erf is None:
            return None
        arg = erf.inputs[0]
        div = self.node(arg, "div")
        if div is not None and self.near(div.inputs[1], math.sqrt(2.0)):
            return div.inputs[0], "none"
        for x, c in self.pairs(arg, "mul"):
            if self.near(c, math.sqrt(0.5)):
                return x, "none"
        return None

    def tanh_part(self, value: str) -> tuple[str, str] | None:
        tanh = self.node(value, "tanh")
        if tanh is None:
            return None
        for c, inner in self.pairs(tanh.inputs[0], "mul"):
            if not self.near(c, math.sqrt(2.0 / math.pi)):
                continue
            for x, t3 in self.pairs(inner, "add"):
                for k, cube in self.pairs(t3, "mul"):
                    if self.near(k, 0.044715) and self.is_cube(cube, x):
                        return x, "tanh"
        return None

    def is_cube(self, value: str, x: str) -> bool:
        power = self.node(value, "pow")
        if power is not None:
            return power.inputs[0] == x and self.near(power.inputs[1], 3.0)
        return any(a == x and (x, x) in self.pairs(sq, "mul")
                   for a, sq in self.pairs(value, "mul"))

    def gelu(self, root: Node) -> tuple[str, str] | None:
        """Match the three places the 0.5 goes: (x*0.5)*A, (x*A)*0.5, x*(A*0.5)."""
        if root.op != "mul":
            return None
        (out,) = root.outputs
        for u, v in self.pairs(out, "mul"):
            found = self.one_plus(u)
            if found and any(a == found[0] and self.near(b, 0.5) for a, b in self.pairs(v, "mul")):
                return found
            if self.near(u, 0.5):
                for a, b in self.pairs(v, "mul"):
                    found = self.one_plus(b)
                    if found and found[0] == a:
                        return found
            for a, b in self.pairs(v, "mul"):
                found = self.one_plus(a) if self.near(b, 0.5) else None
                if found and found[0] == u:
                    return found
        return None

    # -- LayerNorm ----------------------------------------------------------------------

    def layer_norm(self, root: Node) -> tuple[str, str, str, int, float] | None:
        """(x, gamma, beta, axis, epsilon) of a decomposed LayerNorm ending at ``root``."""
        if root.op != "add":
            return None
        for scaled, beta in self.pairs(root.outputs[0], "add"):
            for normed, gamma in self.pairs(scaled, "mul"):
                if beta not in self.graph.constants or gamma not in self.graph.constants:
                    continue
                found = self.normalized(normed)
                if found:
                    x, axis, eps = found
                    return x, gamma, beta, axis, eps
        return None

    def normalized(self, value: str) -> tuple[str, int, float] | None:
        """``(x - mean) / sqrt(var + eps)``: (x, axis, eps)."""
        candidates = []
        div = self.node(value, "div")
        if div is not None:
            candidates.append(tuple(div.inputs))
        for d, r in self.pairs(value, "mul"):
            recip = self.node(r, "reciprocal")
            if recip is not None:
                candidates.append((d, recip.inputs[0]))
        for d, std in candidates:
            sqrt = self.node(std, "sqrt")
            sub = self.node(d, "sub")
            if sqrt is None or sub is None:
                continue
            for var, eps in self.pairs(sqrt.inputs[0], "add"):
                eps_value = self.scalar(eps)
                axis = self.variance_axis(var, d)
                if eps_value is None or axis is None:
                    continue
                x, mean = sub.inputs
                if self.mean_axis(mean, x) == axis:
                    return x, axis, eps_value
        return None

    def mean_axis(self, value: str, x: str) -> int | None:
        """The first axis of a keepdims mean of ``x`` over its trailing axes."""
        mean = self.node(value, "reduce_mean")
        if mean is None or mean.inputs[0] != x or not mean.attr("keepdims"):
            return None
        rank = len(self.graph.type_of(x).shape)
        axes = tuple(mean.attr("axes"))
        if not axes or axes != tuple(range(axes[0], rank)):
            return None
        return axes[0]

    def variance_axis(self, value: str, d: str) -> int | None:
        mean = self.node(value, "reduce_mean")
        if mean is None:
            return None
        sq = mean.inputs[0]
        power = self.node(sq, "pow")
        squares = (power is not None and power.inputs[0] == d
                   and self.near(power.inputs[1], 2.0))
        product = self.node(sq, "mul")
        squares = squares or (product is not None and tuple(product.inputs) == (d, d))
        return self.mean_axis(value, sq) if squares else None


def canonicalize(graph: Graph) -> Graph:
    m = _Matcher(graph)
    fwd = Forwarder(graph)
    constants = dict(graph.constants)
    nodes: list[Node] = []
    made: dict[str, Node] = {}  # value -> the rewritten node writing it
    for node in graph.nodes:
        new = fwd.inputs_of(_rewrite(m, node, constants))
        inner = made.get(new.inputs[0]) if new.op == "reshape" and new.inputs else None
        if inner is not None and inner.op == "reshape" and not _is_identity(graph, new):
            new = Node("reshape", inner.inputs, new.outputs, new.attrs, new.name)
        if _is_identity(graph, new) and fwd.forward(new, new.inputs[0]):
            continue
        nodes.append(new)
        made.update((v, new) for v in new.outputs)
        fwd.emitted(new)
    if len(nodes) == len(graph.nodes) and all(
            a is b for a, b in zip(nodes, graph.nodes, strict=True)):
        return graph
    types = dict(graph.types)
    types.update((k, array_type(v)) for k, v in constants.items() if k not in types)
    return remove_dead(graph.with_nodes(fwd.finish(nodes), constants=constants, types=types))


def _rewrite(m: _Matcher, node: Node, constants: dict[str, np.ndarray]) -> Node:
    types = m.graph.types
    out = node.outputs[0] if node.outputs else ""
    found = m.gelu(node)
    if found and types.get(found[0]) == types.get(out):
        return Node("gelu", (found[0],), node.outputs, {"approximate": found[1]}, node.name)
    ln = m.layer_norm(node)
    if ln and types.get(ln[0]) == types.get(out):
        x, gamma, beta, axis, eps = ln
        normalized = types[x].shape[axis:]
        params = []
        for name in (gamma, beta):
            value = _fit(constants[name], normalized)
            if value is None or value.dtype.name != types[x].dtype:
                return node
            if value.shape != constants[name].shape:
                name = fresh_name(f"{name}_{len(normalized)}d", set(constants) | set(types))
                constants[name] = value
            params.append(name)
        return Node("layer_norm", (x, *params), node.outputs,
                    {"axis": axis, "epsilon": eps}, node.name)
    return node


def _fit(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """``value`` with leading unit axes dropped to broadcast over ``shape``, or None."""
    while value.ndim > len(shape) and value.shape[0] == 1:
        value = value.reshape(value.shape[1:])
    if value.ndim > len(shape):
        return None
    try:
        fits = np.broadcast_shapes(value.shape, shape) == shape
    except ValueError:
        return None
    return value if fits else None


def _is_identity(graph: Graph, node: Node) -> bool:
    if node.op not in ("reshape", "cast") or len(node.inputs) != 1:
        return False
    src = graph.types.get(node.inputs[0])
    if src is None:
        return False
    if node.op == "reshape":
        return tuple(node.attr("shape", ())) == src.shape
    return node.attr("to") == src.dtype
