"""Type inference: every node output's shape and element type, from the inputs' and
constants' types and each operator's rule.

>>> g = Graph(inputs=("x",), outputs=("y",), nodes=(Node("relu", ("x",), ("y",)),),
...           types={"x": TensorType((2, 3), "float32")})
>>> str(infer_types(g).type_of("y"))
'float32[2, 3]'
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from .ir import DTYPES, Graph, Node, TensorType
from .ops import InType, node_error, op_def


def array_type(value: np.ndarray, what: str = "a constant") -> TensorType:
    """The type of a NumPy array, or a ModelError if the graph cannot hold its dtype."""
    dtype = np.asarray(value).dtype.name
    if dtype not in DTYPES:
        raise ModelError(f"{what} has element type {dtype}; the graph holds {list(DTYPES)}")
    return TensorType(tuple(int(d) for d in np.shape(value)), dtype)


def infer_node(node: Node, types: dict[str, TensorType]) -> list[TensorType]:
    """The output types of ``node`` given the types known so far."""
    ins: list[InType] = []
    for name in node.inputs:
        if name and name not in types:
            raise node_error(node, f"reads {name!r}, which nothing defines before it")
        ins.append(types[name] if name else None)
    outs = op_def(node.op).infer(node, ins)
    if len(outs) != len(node.outputs):
        raise node_error(node, f"has {len(node.outputs)} outputs; the operator makes "
                               f"{len(outs)}")
    return outs


def infer_types(graph: Graph) -> Graph:
    """A copy of ``graph`` whose ``types`` holds every value's type, recomputed."""
    types: dict[str, TensorType] = {}
    for name in graph.inputs:
        if name not in graph.types:
            raise ModelError(f"graph {graph.name!r}: input {name!r} has no type")
        types[name] = graph.types[name]
    for name, value in graph.constants.items():
        types[name] = array_type(value, f"constant {name!r}")
    for node in graph.nodes:
        for name, t in zip(node.outputs, infer_node(node, types), strict=True):
            if name in types:
                raise node_error(node, f"writes {name!r}, which is already defined")
            types[name] = t
    for name in graph.outputs:
        if name not in types:
            raise ModelError(f"graph {graph.name!r}: output {name!r} is never computed")
    return graph.with_nodes(graph.nodes, types=types)
