"""Task extraction: the distinct template kernels of a graph and how many times each
runs, keyed exactly as ``tilewise tune`` keys them, so that records made either way
serve both (and whole-model tuning can weigh each task by its count)."""

from __future__ import annotations

from ..autotune.task import Task
from ..target import Target
from .anchors import template_call
from .fuse import partition
from .ir import Graph


def extract_tasks(graph: Graph, target: str | Target = "c") -> list[tuple[Task, int]]:
    """``[(task, times it runs)]`` over the graph's anchor kernels, in first-run order.

    Generated kernels (element-wise chains, reductions) have no template and no task
    yet; dispatch may run a template implementing a task's own (Winograd for a 3x3
    convolution), whose task has the same arguments."""
    tgt = str(Target.from_str(target))
    counts: dict[Task, int] = {}
    for group in partition(graph):
        if group.anchor is None or group.epilogue is None:
            continue
        call = template_call(graph, group.anchor, group.epilogue)
        task = Task(call.template, call.args, tgt)
        counts[task] = counts.get(task, 0) + 1
    return list(counts.items())
