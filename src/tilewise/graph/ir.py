"""The graph IR: a typed dataflow graph of whole-model operators.

A :class:`Graph` names every value (a model input, a constant, or a node's output) and
knows its :class:`TensorType`. Nodes are listed in topological order; passes return new
graphs and never mutate one. Operators and their attributes are those of
:mod:`tilewise.graph.ops` (ONNX's semantics with every attribute resolved: defaults
filled, padding explicit, shapes concrete), so nothing here knows a file format.

>>> g = Graph(inputs=("x",), outputs=("y",),
...           nodes=(Node("relu", ("x",), ("y",), name="r0"),),
...           types={"x": TensorType((2, 3), "float32"), "y": TensorType((2, 3), "float32")})
>>> g.producer("y").op
'relu'
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import ModelError

#: The element types a graph value may have.
DTYPES = ("float32", "float64", "int64", "int32", "bool")


@dataclass(frozen=True)
class TensorType:
    """A value's static shape and element type."""

    shape: tuple[int, ...]
    dtype: str

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ModelError(f"unsupported element type {self.dtype!r}; have {list(DTYPES)}")
        if any(not isinstance(d, int) or d < 0 for d in self.shape):
            raise ModelError(f"a shape holds non-negative integers, not {self.shape}")

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    def __str__(self) -> str:
        return f"{self.dtype}[{', '.join(map(str, self.shape))}]"


@dataclass(frozen=True, eq=False)
class Node:
    """One operator application. ``inputs`` and ``outputs`` are value names; an omitted
    optional input is ``""``. ``name`` is the source node's name, for messages."""

    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def __str__(self) -> str:
        attrs = ", ".join(f"{k}={_short(v)}" for k, v in sorted(self.attrs.items()))
        ins = ", ".join(self.inputs)
        return f"{', '.join(self.outputs)} = {self.op}({ins}{'; ' + attrs if attrs else ''})"


@dataclass(frozen=True, eq=False)
class Graph:
    """A whole model: inputs, outputs, nodes in topological order, every value's type,
    and the constants (weights and folded values) by name."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    nodes: tuple[Node, ...]
    types: Mapping[str, TensorType]
    constants: Mapping[str, np.ndarray] = field(default_factory=dict)
    name: str = "model"

    def producer(self, value: str) -> Node | None:
        """The node writing ``value`` (None for inputs and constants)."""
        return self._producers.get(value)

    def consumers(self, value: str) -> list[Node]:
        """The nodes reading ``value``, in order."""
        return self._consumers.get(value, [])

    def type_of(self, value: str) -> TensorType:
        try:
            return self.types[value]
        except KeyError:
            raise ModelError(f"value {value!r} has no type in graph {self.name!r}") from None

    def is_constant(self, value: str) -> bool:
        return value in self.constants

    def with_nodes(self, nodes: tuple[Node, ...] | list[Node], **changes: Any) -> Graph:
        """A copy with other nodes (and any other field changed); types and constants
        no node or output reads any more are dropped."""
        nodes = tuple(nodes)
        g = replace(self, nodes=nodes, **changes)
        used = set(g.inputs) | set(g.outputs)
        for n in nodes:
            used.update(n.inputs)
            used.update(n.outputs)
        used.discard("")
        return replace(g, types={k: v for k, v in g.types.items() if k in used},
                       constants={k: v for k, v in g.constants.items() if k in used})

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __str__(self) -> str:
        """A readable dump: the golden-file form passes are checked against."""
        lines = [f"graph {self.name}("
                 + ", ".join(f"{v}: {self.types[v]}" for v in self.inputs) + ")"]
        for c in sorted(self.constants):
            if any(c in n.inputs for n in self.nodes) or c in self.outputs:
                lines.append(f"  const {c}: {self.types[c]}")
        for n in self.nodes:
            outs = ", ".join(f"{o}: {self.types[o]}" for o in n.outputs if o in self.types)
            lines.append(f"  {n}  # {outs}")
        lines.append("  return " + ", ".join(self.outputs))
        return "\n".join(lines)

    @property
    def _producers(self) -> dict[str, Node]:
        cache = self.__dict__.get("_prod")
        if cache is None:
            cache = {o: n for n in self.nodes for o in n.outputs}
            object.__setattr__(self, "_prod", cache)
        return cache

    @property
    def _consumers(self) -> dict[str, list[Node]]:
        cache = self.__dict__.get("_cons")
        if cache is None:
            cache = {}
            for n in self.nodes:
                for i in dict.fromkeys(n.inputs):
                    if i:
                        cache.setdefault(i, []).append(n)
            object.__setattr__(self, "_cons", cache)
        return cache


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_short(x) for x in v) + "]"
    return str(v)
