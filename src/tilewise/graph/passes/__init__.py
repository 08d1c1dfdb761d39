"""Graph passes, each a function ``Graph -> Graph``, and :func:`optimize`, which runs
them in a fixed order until nothing changes.

>>> from tilewise.graph.passes import optimize
>>> g = optimize(graph)     # doctest: +SKIP
"""

from __future__ import annotations

from ..ir import Graph
from .broadcast_matmul import broadcast_matmul
from .canonicalize import canonicalize
from .explicit_padding import explicit_padding
from .fold_batch_norm import fold_batch_norm
from .fold_constants import fold_constants
from .remove_dead import remove_dead
from .split_groups import split_groups

__all__ = ["broadcast_matmul", "canonicalize", "explicit_padding", "fold_batch_norm",
           "fold_constants", "optimize", "remove_dead", "split_groups"]

#: The passes of :func:`optimize`, in order.
PIPELINE = (canonicalize, fold_constants, fold_batch_norm, split_groups, explicit_padding,
            broadcast_matmul, remove_dead)

_MAX_ROUNDS = 8  # each round only shrinks the graph; real models settle in two


def optimize(graph: Graph) -> Graph:
    """Run :data:`PIPELINE` again and again until a round changes nothing."""
    for _ in range(_MAX_ROUNDS):
        before = graph
        for run in PIPELINE:
            graph = run(graph)
        if graph is before:
            break
    return graph
