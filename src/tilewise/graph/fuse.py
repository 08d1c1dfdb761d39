"""Fusion: partition a graph's nodes into the kernels that will run it.

Each :class:`Group` becomes one kernel. An *anchor* (a convolution, matrix product or
pooling, which runs an operator template) takes the chain of element-wise consumers its
template can apply as an epilogue (bias, ReLU, ReLU6, GELU, residual add); other
operators gather as TVM's FuseOps gathers them: element-wise, broadcast and injective
operators fuse with their producer's group, a reduction fuses after element-wise and
injective producers, and element-wise consumers fuse after a reduction. A value is fused
away only where its one reader is in the group and it is not a model output.

Groups are listed in an order that runs them: every value a group reads from another
group is written by an earlier one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .anchors import Epilogue, match_epilogue
from .ir import Graph, Node
from .ops import OpPattern, op_def


@dataclass
class Group:
    """The nodes of one kernel, in topological order. ``epilogue`` is set on an anchor
    group: the element-wise steps its template applies and the values they read."""

    nodes: list[Node]
    anchor: Node | None = None
    epilogue: Epilogue | None = None
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    @property
    def has_reduction(self) -> bool:
        return any(op_def(n.op).pattern is OpPattern.REDUCTION for n in self.nodes)

    @property
    def name(self) -> str:
        head = self.anchor or self.nodes[0]
        return head.name or head.op


def partition(graph: Graph) -> list[Group]:
    """The graph's nodes as kernels, in an order that runs them."""
    groups: list[Group] = []
    group_of: dict[str, int] = {}  # value -> index of the group writing it
    placed: set[int] = set()  # ids of nodes already in a group (epilogues)
    for node in graph.nodes:
        if id(node) in placed:
            continue
        pattern = op_def(node.op).pattern
        if pattern is OpPattern.ANCHOR:
            epilogue = match_epilogue(graph, node, group_of, len(groups))
            group = Group([node, *epilogue.nodes], anchor=node, epilogue=epilogue)
            placed.update(id(n) for n in epilogue.nodes)
            index = len(groups)
            groups.append(group)
        else:
            index = _joinable(graph, node, pattern, groups, group_of)
            if index is None:
                index = len(groups)
                groups.append(Group([node]))
            else:
                groups[index].nodes.append(node)
        for n in groups[index].nodes:
            for out in n.outputs:
                group_of[out] = index
    for group in groups:
        _boundary(graph, group)
    return groups


def _joinable(graph: Graph, node: Node, pattern: OpPattern, groups: Sequence[Group],
              group_of: dict[str, int]) -> int | None:
    """The group that ``node`` may join: a generated (non-anchor) group writing one of
    its inputs, read by ``node`` alone, where every other input is written earlier."""
    for value in node.inputs:
        index = group_of.get(value)
        if index is None:
            continue
        group = groups[index]
        if group.anchor is not None or value in graph.outputs:
            continue
        if len(graph.consumers(value)) != 1:
            continue
        if group.has_reduction and pattern > OpPattern.BROADCAST:
            continue  # after a reduction, only element-wise epilogues
        if any(group_of.get(v, -1) > index for v in node.inputs if v != value):
            continue
        return index
    return None


def _boundary(graph: Graph, group: Group) -> None:
    """Fill the group's inputs (values read from outside, constants included) and
    outputs (values read outside the group, or model outputs)."""
    written = {o for n in group.nodes for o in n.outputs}
    inner = {id(n) for n in group.nodes}
    inputs: dict[str, None] = {}
    for n in group.nodes:
        for v in n.inputs:
            if v and v not in written:
                inputs[v] = None
    group.inputs = list(inputs)
    group.outputs = [o for n in group.nodes for o in n.outputs
                     if o in graph.outputs
                     or any(id(c) not in inner for c in graph.consumers(o))]
