"""Layout planning: which values between kernels stay in channel blocks (NCHW[x]c).

A convolution template computes in NCHW[x]c. Given NCHW, it packs its input into
blocks and transposes its result back. Where a value runs from one convolution only to
other convolutions (as their data or their residual), the fixed rule here keeps it in
blocks of the target's vector lanes: the producer writes blocks, its readers read them,
and both transposes go (the templates' ``in_block`` and ``out_block``,
:mod:`tilewise.ops.blocks`).

A value stays NCHW where it is a model input or output; where a reader is anything but
a convolution (pooling, a reshape, an element-wise kernel); where its channels are not
whole blocks; and where a convolution on either side runs, untuned, an implementation
that computes NCHW (Winograd's). Untuned, so that a model's tasks are the same with or
without a database: a 3x3 layer that Winograd would run stays NCHW, and tuning still
weighs Winograd against the direct template there. A convolution that adds a residual
writes its output in the residual's layout: the two are in blocks together or not at
all. A pointwise convolution whose untuned GEMM runs over the positions (NCHW rows as
they lie) reads blocks only where it writes them too.

Measured against every convolution NCHW at its edges (untuned, one and two Zen 4
cores): MobileNetV2 and ResNet-50 run about 2% faster
(benchmarks/results/2026-12-07-zen4/layouts.md). The rule is fixed; weighing each
value's layout by measured kernel and transform costs, as AutoTVM's graph tuner does,
is the next step.
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import ops  # noqa: F401  (registers the templates whose choices the rule asks)
from ..autotune.dispatch import untuned_choice
from ..autotune.task import Task
from ..errors import ModelError
from ..ops.blocks import layout_name
from ..target import Target
from .anchors import template_call
from .fuse import Group, partition
from .ir import Graph

#: The layout of each value kept in channel blocks: its block (values absent are NCHW).
Layouts = Mapping[str, int]


def fused(graph: Graph, target: str | Target, templates: bool = True,
          layouts: bool = True) -> tuple[list[Group], dict[str, int]]:
    """The kernels of ``graph`` (:func:`.fuse.partition`) and the values they pass in
    channel blocks: none without ``layouts``, or where every kernel is generated (no
    ``templates``)."""
    groups = partition(graph)
    return groups, plan_layouts(graph, groups, target) if templates and layouts else {}


def plan_layouts(graph: Graph, groups: list[Group], target: str | Target) -> dict[str, int]:
    """The values of ``graph`` (fused into ``groups``) kept in channel blocks, with
    their block, by the fixed rule of this module."""
    tgt = Target.from_str(target)
    block = tgt.vector_lanes(4)
    if block < 4:  # no vectors to fill: the templates compute NCHW as well either way
        return {}
    convs = {id(g): edges for g in groups
             if (edges := _edges(graph, g, tgt, block)) is not None}
    readers: dict[str, list[Group]] = {}
    for g in groups:
        for v in g.inputs:
            readers.setdefault(v, []).append(g)
    chosen: dict[str, int] = {}
    for g in groups:
        if id(g) not in convs:
            continue
        v = g.epilogue.output
        t = graph.type_of(v)
        if (v in graph.outputs or g.outputs != [v] or len(t.shape) != 4
                or t.shape[1] % block or not readers.get(v)):
            continue
        if all(id(r) in convs and _reads_as_activation(r, v) for r in readers[v]):
            chosen[v] = block

    writer = {g.epilogue.output: g for g in groups if id(g) in convs}

    def nchw_edge(v: str) -> bool:
        """Whether ``v`` must be NCHW for a kernel beside it: a residual is read in its
        reader's output layout (both ways: an output in blocks needs its residual in
        blocks), and a kernel that reads NCHW rows as they lie pays to read blocks
        where its output is NCHW."""
        residual = writer[v].epilogue.residual
        return (residual is not None and residual not in chosen) or any(
            r.epilogue.output not in chosen
            and (r.epilogue.residual == v or convs[id(r)] == _ROWS) for r in readers[v])

    changed = True  # dropping one value's blocks may drop its neighbours'
    while changed:
        changed = False
        for v in [v for v in chosen if nchw_edge(v)]:
            del chosen[v]
            changed = True
    return chosen


_BLOCKS, _ROWS = "blocks", "rows"


def _edges(graph: Graph, group: Group, target: Target, block: int) -> str | None:
    """How the float32 convolution ``group`` computes untuned, where blocks at its
    edges keep its implementation: ``_ROWS`` where its NCHW kernel reads the input's
    rows as they lie (a pointwise GEMM over positions), else ``_BLOCKS``; None where
    it is no such convolution, or where blocks would change the implementation that
    dispatch runs untuned (Winograd's and the depthwise row template compute NCHW)."""
    anchor, epi = group.anchor, group.epilogue
    if anchor is None or epi is None or anchor.op != "conv2d":
        return None
    if graph.type_of(anchor.inputs[0]).dtype != "float32":
        return None
    try:
        call = template_call(graph, anchor, epi)
    except ModelError:  # no template covers it: the generated schedule runs it, NCHW
        return None
    plain = untuned_choice(Task(call.template, call.args, str(target)).implementations())
    blocked = untuned_choice(Task(call.template, (*call.args[:-2], block, block),
                                  str(target)).implementations())
    if plain.name != blocked.name:
        return None
    # The pointwise GEMM's untuned form over positions reads NCHW as it lies; given
    # blocks and asked for NCHW out, it runs the GEMM over channels and transposes
    # back (benchmarks/results/2026-12-07-zen4/layouts.md).
    space = plain.config_space
    rows = "vectors" in space.positions and space.fallback["vectors"].val == "pixels"
    return _ROWS if rows else _BLOCKS


def _reads_as_activation(group: Group, value: str) -> bool:
    """Whether the convolution ``group`` reads ``value`` only as its data or residual."""
    assert group.anchor is not None and group.epilogue is not None
    roles = [group.anchor.inputs[0], group.epilogue.residual]
    others = [*group.anchor.inputs[1:], group.epilogue.bias]
    return value in roles and value not in others


def listing(groups: list[Group], layouts: Layouts | None = None) -> str:
    """The kernels, one a line, in run order: an anchor with its epilogue's steps
    (``conv2d[bias+relu]``) or a generated group's operators, what it reads and what
    it writes, a value kept in channel blocks marked with its layout
    (``@NCHW16c``): the golden form fusion and layout planning are checked by."""
    layouts = layouts or {}

    def value(v: str) -> str:
        return f"{v}@{layout_name(layouts[v])}" if v in layouts else v

    lines = []
    for g in groups:
        if g.anchor is not None and g.epilogue is not None:
            what = f"{g.anchor.op}[{g.epilogue.spelling}]"
        else:
            what = "+".join(n.op for n in g.nodes)
        lines.append(f"{what}: {', '.join(map(value, g.inputs))} -> "
                     f"{', '.join(map(value, g.outputs))}")
    return "\n".join(lines)
