"""The NumPy reference interpreter: runs a graph node by node with each operator's
NumPy evaluation. Slow and simple; the answer compiled models are checked against.

>>> g = Graph(inputs=("x",), outputs=("y",), nodes=(Node("relu", ("x",), ("y",)),),
...           types={"x": TensorType((2,), "float32"), "y": TensorType((2,), "float32")})
>>> interpret(g, {"x": np.array([-1.0, 2.0], np.float32)})["y"]
array([0., 2.], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import ModelError
from .ir import Graph, Node, TensorType  # noqa: F401  (Node, TensorType: the doctest)
from .ops import evaluate


def check_feeds(graph: Graph, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``feeds`` as arrays, after checking they name exactly the graph's inputs with
    their shapes and element types."""
    unknown = sorted(set(feeds) - set(graph.inputs))
    missing = [name for name in graph.inputs if name not in feeds]
    if unknown or missing:
        raise ModelError(f"graph {graph.name!r} takes inputs {list(graph.inputs)}; "
                         f"missing {missing}, unknown {unknown}")
    arrays = {}
    for name in graph.inputs:
        value = np.asarray(feeds[name])
        want = graph.type_of(name)
        if value.shape != want.shape or value.dtype.name != want.dtype:
            raise ModelError(f"graph {graph.name!r}: input {name!r} is {want}, not "
                             f"{value.dtype.name}[{', '.join(map(str, value.shape))}]")
        arrays[name] = value
    return arrays


def interpret(graph: Graph, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run ``graph`` on ``feeds`` (input name -> array); returns output name -> array."""
    env: dict[str, np.ndarray] = dict(graph.constants)
    env.update(check_feeds(graph, feeds))
    last_read = {name: i for i, node in enumerate(graph.nodes) for name in node.inputs}
    keep = set(graph.outputs) | set(graph.constants)
    for i, node in enumerate(graph.nodes):
        outs = evaluate(node, [env[name] if name else None for name in node.inputs])
        env.update(zip(node.outputs, outs, strict=True))
        for name in node.inputs:  # free what no later node reads, to run big models
            if last_read.get(name) == i and name not in keep:
                env.pop(name, None)
    return {name: np.array(env[name]) for name in graph.outputs}
