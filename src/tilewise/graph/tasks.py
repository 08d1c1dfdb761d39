"""Task extraction: the distinct kernels of a graph and how many times each runs, keyed
exactly as ``tilewise tune`` keys them, so that records made either way serve both (and
whole-model tuning can weigh each task by its count)."""

from __future__ import annotations

from ..autotune.task import Task
from ..target import Target
from .anchors import template_call, template_covers
from .generated_task import GENERATED, group_args
from .ir import Graph
from .layouts import fused
from .library import _is_view


def extract_tasks(graph: Graph, target: str | Target = "c", generated: bool = False,
                  templates: bool = True, layouts: bool = True) -> list[tuple[Task, int]]:
    """``[(task, times it runs)]`` over the graph's anchor kernels, in first-run order;
    with ``generated``, over every kernel: the groups that no operator template covers
    (element-wise chains, reductions, transposes) as tasks of the ``generated`` template
    (:mod:`.generated_task`), whose space is derived from their compute. Without
    ``templates``, every kernel is a ``generated`` task, the anchors' (convolutions,
    matrix products, pooling, with their epilogues) too, whatever ``generated`` says;
    so is, always, an anchor that no template covers (:func:`.anchors.template_covers`).

    Dispatch may run a template implementing a task's own (Winograd for a 3x3
    convolution), whose task has the same arguments. With ``layouts``, convolutions
    pass the values that layout planning keeps in channel blocks so (:mod:`.layouts`),
    as a compiled model runs them."""
    tgt = str(Target.from_str(target))
    counts: dict[Task, int] = {}
    groups, blocks = fused(graph, tgt, templates, layouts)
    for group in groups:
        if _is_view(graph, group):
            continue
        anchored = group.anchor is not None and group.epilogue is not None
        if templates and anchored and template_covers(graph, group.anchor, group.epilogue):
            call = template_call(graph, group.anchor, group.epilogue, blocks)
            task = Task(call.template, call.args, tgt)
        elif templates and not generated and not anchored:
            continue
        else:  # no template covers the group, or the templates are ignored
            task = Task(GENERATED, group_args(graph, group), tgt)
        counts[task] = counts.get(task, 0) + 1
    return list(counts.items())
