"""Dead-code removal: nodes none of whose outputs reach a graph output are dropped
(and with them the constants only they read)."""

from __future__ import annotations

from ..ir import Graph


def remove_dead(graph: Graph) -> Graph:
    live = set(graph.outputs)
    kept = []
    for node in reversed(graph.nodes):
        if any(name in live for name in node.outputs):
            kept.append(node)
            live.update(name for name in node.inputs if name)
    if len(kept) == len(graph.nodes):
        return graph
    return graph.with_nodes(tuple(reversed(kept)))
