"""Kernels of fused groups: an anchor group runs its operator template (the database's
best config through dispatch, else the fallback), any other group a te compute of its
nodes under the generated schedule (the choices of its ``generated`` task's best record,
else the rules'); with the templates ignored, an anchor group too. Each becomes the C
source of one function."""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .. import te
from ..autotune.dispatch import FallbackConfigWarning, HistoryBest, best_implementation
from ..autotune.generated import ScheduleChoices, generated_schedule
from ..autotune.task import Task
from ..autotune.tiling import contractions
from ..codegen import generate_c
from ..errors import ModelError, TilewiseError
from ..lower import lower
from ..target import Target
from .anchors import template_call, template_covers
from .compute import node_compute
from .fuse import Group
from .generated_task import GENERATED, choices_of, group_args
from .ir import Graph
from .layouts import Layouts
from .prepack import prepack


@dataclass(frozen=True)
class Kernel:
    """One compiled function of a model: its C name and source, the graph value behind
    each parameter (in order), a label saying what it computes, and, for a template
    kernel (a generated one where a database was asked), the task it runs (the key its
    tuning records are stored under)."""

    name: str
    label: str
    source: str
    values: tuple[str, ...]
    task: Task | None = None
    tuned: bool = False
    n_outputs: int = 1  # the last parameters, which the kernel writes
    #: Values made at compile time for this kernel alone (packed weights), by name.
    constants: Mapping[str, np.ndarray] = field(default_factory=dict)
    #: Scratch buffers of one call (name, bytes), parameters after ``values``: the
    #: model places them in its arena, where kernels that run apart share the bytes.
    workspace: tuple[tuple[str, int], ...] = ()

    @property
    def params(self) -> tuple[str, ...]:
        """What each parameter of the C function is, in order."""
        return (*self.values, *(w for w, _ in self.workspace))

    @property
    def reads(self) -> tuple[str, ...]:
        return self.values[:len(self.values) - self.n_outputs]

    @property
    def writes(self) -> tuple[str, ...]:
        return self.values[len(self.values) - self.n_outputs:]

    @property
    def flop(self) -> float:
        return (self.task.flop or 0.0) if self.task is not None else 0.0


def kernel_name(index: int, group: Group) -> str:
    return f"k{index:03d}_" + re.sub(r"\W", "_", group.name)[:40]


def group_kernel(graph: Graph, group: Group, index: int, target: Target,
                 context: HistoryBest | None, pack_weights: bool = True,
                 templates: bool = True, layouts: Layouts | None = None) -> Kernel:
    """Lower ``group`` to the C source of one function; with ``pack_weights``, a
    template's weight-only stages (packing, Winograd's transform) run here, once.
    Without ``templates`` an anchor group is generated as any other. ``layouts``: the
    values passed in channel blocks (:mod:`.layouts`)."""
    name = kernel_name(index, group)
    try:
        if (templates and group.anchor is not None and group.epilogue is not None
                and template_covers(graph, group.anchor, group.epilogue)):
            return _template_kernel(graph, group, name, target, context, pack_weights,
                                    layouts or {})
        return _generated_kernel(graph, group, name, target, context)
    except ModelError:
        raise
    except TilewiseError as exc:
        nodes = ", ".join(repr(n.name or n.op) for n in group.nodes)
        raise ModelError(f"cannot build the kernel of node(s) {nodes}: {exc}") from exc


def _template_kernel(graph: Graph, group: Group, name: str, target: Target,
                     context: HistoryBest | None, pack_weights: bool,
                     layouts: Layouts) -> Kernel:
    assert group.anchor is not None and group.epilogue is not None
    call = template_call(graph, group.anchor, group.epilogue, layouts)
    task = Task(call.template, call.args, str(target))
    with warnings.catch_warnings():  # untuned is the expected case, said per kernel
        warnings.simplefilter("ignore", FallbackConfigWarning)
        chosen, config = best_implementation(task, context)
    tuned = context is not None and context.database.best(chosen) is not None
    sch, tensors = chosen.instantiate(config)
    _check_binding(graph, call.values, tensors, chosen)
    label = str(chosen).split(" @ ")[0]
    consts = {i: graph.constants[v].reshape(tuple(int(d) for d in tensors[i].shape))
              for i, v in enumerate(call.values) if graph.is_constant(v)}
    if not pack_weights or not consts:
        func = lower(sch, tensors, name, workspace=True)
        return Kernel(name, label, generate_c(func, target), call.values, chosen, tuned,
                      workspace=_workspace(func, len(tensors)))
    packed = prepack(sch, tensors, consts, target)
    runtime = iter(v for i, v in enumerate(call.values) if i not in consts)
    values, made = [], {}
    for j, array in enumerate(packed.arrays):
        if array is None:
            values.append(next(runtime))
        else:
            values.append(f"{name}.w{j}")
            made[values[-1]] = array
    func = lower(sch, packed.args, name, given=packed.given, workspace=True)
    return Kernel(name, label, generate_c(func, target), tuple(values), chosen, tuned,
                  constants=made, workspace=_workspace(func, len(packed.args)))


def _check_binding(graph: Graph, values, tensors, task: Task) -> None:
    """Each template tensor stands for a graph value of as many elements (a view of it:
    a (1, 128, 768) activation is dense's (128, 768) operand)."""
    if len(values) != len(tensors):
        raise ModelError(f"{task}: {len(tensors)} tensors for {len(values)} graph values")
    for v, t in zip(values, tensors, strict=True):
        vt = graph.type_of(v)
        if vt.size != math.prod(int(d) for d in t.shape) or vt.dtype != str(t.dtype):
            raise ModelError(f"{task}: tensor {t.name} {tuple(t.shape)} {t.dtype} cannot "
                             f"view value {v!r} {vt}")


def _generated_kernel(graph: Graph, group: Group, name: str, target: Target,
                      context: HistoryBest | None) -> Kernel:
    tensors: dict[str, te.Tensor] = {}
    params = []
    for i, v in enumerate(group.inputs):
        t = graph.type_of(v)
        tensors[v] = te.placeholder(t.shape, t.dtype, name=f"in{i}")
        params.append(tensors[v])
    for node in group.nodes:
        outs = node_compute(node, [tensors[v] for v in node.inputs if v])
        for v, t in zip(node.outputs, outs, strict=True):
            tensors[v] = t
    outs = [tensors[v] for v in group.outputs]
    task, choices = _generated_choice(graph, group, outs, target, context)
    sch = generated_schedule(outs, target, choices)
    func = lower(sch, [*params, *outs], name, workspace=True)
    label = "+".join(n.op for n in group.nodes)
    return Kernel(name, label, generate_c(func, target), (*group.inputs, *group.outputs),
                  task, choices is not None, n_outputs=len(group.outputs),
                  workspace=_workspace(func, len(params) + len(outs)))


def _generated_choice(graph: Graph, group: Group, outs: list[te.Tensor], target: Target,
                      context: HistoryBest | None
                      ) -> tuple[Task | None, ScheduleChoices | None]:
    """The group's ``generated`` task (with a database to look it up in) and the
    choices of its best record; None where it has none: the rules' picks, which the
    task's fallback makes too, unasked."""
    if context is None:
        return None, None
    task = Task(GENERATED, group_args(graph, group), str(target))
    if context.database.best(task) is None:
        return task, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackConfigWarning)
        chosen, config = best_implementation(task, context)
    return chosen, choices_of(config, {n for n, _ in config.entities},
                              contractions(outs, target), target)


def _workspace(func, n_args: int) -> tuple[tuple[str, int], ...]:
    """The function's scratch parameters (after its ``n_args`` arguments): name, bytes."""
    return tuple((f"{func.name}.{b.name}", b.size * b.dtype.bytes)
                 for b in func.params[n_args:])
