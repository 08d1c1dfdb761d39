"""What rewriting passes share: fresh value names, renaming values in nodes, and
dropping a node whose output equals one of its inputs."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from ..ir import Graph, Node


def fresh_name(base: str, taken: Collection[str]) -> str:
    """``base``, or ``base_1``, ``base_2``... whichever is not in ``taken``."""
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    return name


def rename(nodes: Sequence[Node], mapping: Mapping[str, str]) -> list[Node]:
    """``nodes`` with every input and output named in ``mapping`` renamed."""
    if not mapping:
        return list(nodes)
    out = []
    for n in nodes:
        ins = tuple(mapping.get(v, v) for v in n.inputs)
        outs = tuple(mapping.get(v, v) for v in n.outputs)
        if ins != n.inputs or outs != n.outputs:
            n = Node(n.op, ins, outs, n.attrs, n.name)
        out.append(n)
    return out


class Forwarder:
    """Drops nodes whose output is one of their inputs (an identity), as a pass walks a
    graph: readers of the output read the input instead. An identity that writes a graph
    output is dropped only when the input's producer can write that output instead."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.subst: dict[str, str] = {}  # a dropped output -> the value to read instead
        self.renames: dict[str, str] = {}  # a produced value -> the graph output it becomes
        self._produced: set[str] = set()

    def inputs_of(self, node: Node) -> Node:
        """``node`` reading the values that replace dropped ones."""
        ins = tuple(self.subst.get(v, v) for v in node.inputs)
        return node if ins == node.inputs else Node(node.op, ins, node.outputs, node.attrs,
                                                    node.name)

    def emitted(self, node: Node) -> None:
        self._produced.update(node.outputs)

    def forward(self, node: Node, source: str) -> bool:
        """Drop ``node`` (one output, equal to ``source``) if that is safe; True if so."""
        (out,) = node.outputs
        if out not in self.graph.outputs:
            self.subst[out] = source
            return True
        movable = (source in self._produced and source not in self.graph.outputs
                   and source not in self.renames)
        if movable:
            self.renames[source] = out
        return movable

    def finish(self, nodes: Sequence[Node]) -> list[Node]:
        return rename(nodes, self.renames)
