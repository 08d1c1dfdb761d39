"""The ``generated`` template: a fused group that no operator template covers (an
element-wise chain, a softmax or layer norm with its epilogue, a transpose, a pooling)
as a task, so that whole-model tuning searches its schedule like any other kernel's.

A task's arguments describe the group's structure alone, canonically, as nested tuples
of numbers and strings (what a record's key holds, in JSON, and what a measuring process
rebuilds the kernel from):

- ``inputs``: ``((shape, dtype), ...)`` of the values the group reads, in first-read
  order. A constant is described by its shape and type, as any input: the kernel takes
  it as a parameter, so its values change nothing that a schedule does;
- ``nodes``: ``((op, attrs, refs, n_outputs), ...)``, ``attrs`` as sorted
  ``(name, value)`` pairs, ``refs`` the values each node reads by number (inputs first,
  then every node's outputs in order; -1 for an omitted optional input);
- ``outputs``: the numbers of the values the kernel writes.

The space is :class:`~tilewise.autotune.generated.ScheduleChoices`, cut to the knobs
that change this compute's schedule: each knob's values are probed against the rules'
schedule, and a value is offered only where it schedules the compute differently from
every value offered before it (no reduction: no knob about reductions; no vector loop
longer than a vector: no unrolling). Each contraction (a matrix product, a convolution:
an anchor's group where the operator templates are ignored) adds its tiling's knobs
(:func:`~tilewise.autotune.tile_space.define_tiles`). The fallback is the rules' pick, so
an untuned kernel is the one compiled without a database. Nothing reads an operator's
name. :func:`generated_space` gives any te compute this space, in a template of one's
own.

>>> args = group_args(graph, group)                               # doctest: +SKIP
>>> task = Task(GENERATED, args, "c -cores=2")                    # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np

from .. import te
from ..autotune.generated import ScheduleChoices, generated_schedule
from ..autotune.task import template
from ..autotune.tile_space import define_tiles, tile_choices
from ..autotune.tiling import Contraction, contractions
from ..errors import TilewiseError
from ..ir.stmt import ForKind
from ..schedule import Schedule
from ..schedule.stage import Split
from ..target import Target
from .compute import node_compute
from .fuse import Group
from .infer import infer_types
from .interpret import interpret
from .ir import Graph, Node, TensorType

#: The template's name: every generated group's task is one of it.
GENERATED = "generated"

#: Vector widths per step of a split vector loop that the space may offer.
UNROLLS = (1, 2, 4)
#: Vectors of lane accumulators per row reduction that the space may offer.
ACCUMULATORS = (1, 2, 4)


# ---- the task's arguments -------------------------------------------------------------


def group_args(graph: Graph, group: Group) -> tuple[Any, ...]:
    """The ``generated`` task arguments of ``group`` (a non-anchor group of ``graph``)."""
    number: dict[str, int] = {}
    inputs = []
    for v in group.inputs:
        t = graph.type_of(v)
        number[v] = len(number)
        inputs.append((tuple(t.shape), t.dtype))
    nodes = []
    for node in group.nodes:
        refs = tuple(number[v] if v else -1 for v in node.inputs)
        nodes.append((node.op, _frozen_attrs(node.attrs), refs, len(node.outputs)))
        for o in node.outputs:
            number[o] = len(number)
    return tuple(inputs), tuple(nodes), tuple(number[v] for v in group.outputs)


def _frozen_attrs(attrs: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple((k, _frozen(attrs[k])) for k in sorted(attrs))


def _frozen(value: Any) -> Any:
    """``value`` as hashable, JSON-writable data (lists as tuples, NumPy as Python)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, Mapping):
        return tuple((str(k), _frozen(value[k])) for k in sorted(value))
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    return value


def _value(n: int) -> str:
    return f"v{n}"


def _nodes(inputs: Sequence[Any], nodes: Sequence[Any]) -> list[Node]:
    """The group's nodes over values named by their numbers."""
    out = []
    n = len(inputs)
    for j, (op, attrs, refs, n_out) in enumerate(nodes):
        outs = tuple(_value(n + k) for k in range(n_out))
        out.append(Node(op, tuple(_value(r) if r >= 0 else "" for r in refs), outs,
                        {k: v for k, v in attrs}, name=f"{op}{j}"))
        n += n_out
    return out


def group_compute(inputs: Sequence[Any], nodes: Sequence[Any], outputs: Sequence[int]
                  ) -> tuple[list[te.Tensor], list[te.Tensor]]:
    """The te compute of a described group: its placeholders and its output tensors."""
    tensors: dict[str, te.Tensor] = {}
    params = []
    for i, (shape, dtype) in enumerate(inputs):
        tensors[_value(i)] = te.placeholder(tuple(shape), dtype, name=f"in{i}")
        params.append(tensors[_value(i)])
    for node in _nodes(inputs, nodes):
        outs = node_compute(node, [tensors[v] for v in node.inputs if v])
        tensors.update(zip(node.outputs, outs, strict=True))
    return params, [tensors[_value(o)] for o in outputs]


def group_graph(inputs: Sequence[Any], nodes: Sequence[Any], outputs: Sequence[int]) -> Graph:
    """A described group as a graph of its own (the NumPy reference runs it)."""
    types = {_value(i): TensorType(tuple(shape), dtype) for i, (shape, dtype) in enumerate(inputs)}
    g = Graph(inputs=tuple(types), outputs=tuple(_value(o) for o in outputs),
              nodes=tuple(_nodes(inputs, nodes)), types=types, name=GENERATED)
    return infer_types(g)


# ---- the space --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class KnobChoice:
    """One knob of a generated space: the values offered and the rules' pick."""

    values: tuple[Any, ...]
    fallback: Any


def space_knobs(outputs: Sequence[te.Tensor], target: Target) -> dict[str, KnobChoice]:
    """The knobs of :class:`ScheduleChoices` that change the schedule of ``outputs``,
    by name, each with the values that schedule it differently from one another (None:
    the rules' own pick, offered where no single value reproduces it)."""
    probe = _Probe(outputs, target)
    knobs: dict[str, KnobChoice] = {}

    def offer(name: str, candidates: Sequence[Any]) -> None:
        kept, fallback = probe.distinct(name, candidates)
        if len(kept) > 1:
            knobs[name] = KnobChoice(tuple(kept), fallback)

    if target.cores > 1:
        outer = max(len(t.shape) for t in outputs)
        offer("parallel_axes", range(outer + 1))
    offer("vectorize", (True, False))
    if "vectorize" in knobs:
        offer("vector_split", (True, False))
    if "vector_split" in knobs:
        # A loop split by more vectors than it holds is not split: as vector_split off.
        probe.seen("unroll", [probe.fingerprint(vector_split=False)])
        offer("unroll", UNROLLS)
        unrolls = knobs["unroll"].values if "unroll" in knobs else (1,)
        if any(probe.fingerprint(unroll=u) != probe.fingerprint(unroll=u, shift_tail=False)
               for u in unrolls):
            knobs["shift_tail"] = KnobChoice((True, False), True)
    if not _reduces(outputs):
        return knobs  # the rest place, split and buffer around reductions
    offer("attach_reductions", (True, False))
    offer("row_buffers", (True, False))
    offer("lane_reduce", (True, False))
    if "lane_reduce" in knobs:
        probe.seen("accumulators", [probe.fingerprint(lane_reduce=False)])
        offer("accumulators", ACCUMULATORS)
    return knobs


def _reduces(outputs: Sequence[te.Tensor]) -> bool:
    """Whether any stage computing ``outputs`` has a reduction loop."""
    seen: set[int] = set()
    todo = [t.op for t in outputs]
    while todo:
        op = todo.pop()
        if id(op) in seen:
            continue
        seen.add(id(op))
        if getattr(op, "reduce_axis", ()):
            return True
        todo.extend(t.op for t in op.input_tensors)
    return False


class _Probe:
    """The rules' schedules of one compute under single knobs changed, as fingerprints."""

    def __init__(self, outputs: Sequence[te.Tensor], target: Target) -> None:
        self.outputs = list(outputs)
        self.target = target
        self.cache: dict[tuple, tuple | None] = {}
        self.extra: dict[str, list[tuple | None]] = {}

    def fingerprint(self, **changes: Any) -> tuple | None:
        key = tuple(sorted(changes.items()))
        if key not in self.cache:
            try:
                s = generated_schedule(self.outputs, self.target, ScheduleChoices(**changes))
            except TilewiseError:
                self.cache[key] = None
            else:
                self.cache[key] = schedule_fingerprint(s)
        return self.cache[key]

    def seen(self, name: str, prints: list[tuple | None]) -> None:
        """Schedules that values of ``name`` must differ from to be offered."""
        self.extra[name] = prints

    def distinct(self, name: str, candidates: Sequence[Any]) -> tuple[list[Any], Any]:
        """The candidates whose schedules differ from one another's (and from
        :meth:`seen`'s), and the fallback: the rules' pick (a knob's default value
        always offered), or the candidate reproducing it, else None (the rule itself,
        offered first: several stages' picks that no single value makes)."""
        rule = getattr(ScheduleChoices, name)
        default = self.fingerprint()
        prints = list(self.extra.get(name, []))
        kept: list[Any] = []
        fallback = rule
        if rule is not None:
            kept.append(rule)
            prints.append(default)
        for value in candidates:
            if value == rule:
                continue
            fp = self.fingerprint(**{name: value})
            if fp is None or fp in prints:
                continue
            prints.append(fp)
            kept.append(value)
            if fp == default and fallback is None:
                fallback = value
        if fallback is None:
            kept.insert(0, None)
        return kept, fallback


def schedule_fingerprint(s: Schedule) -> tuple:
    """What a schedule does, as data: each stage's attachment, loops (names, extents,
    kinds) and the tails of its splits. Equal fingerprints lower to the same loops."""
    out = []
    for st in s.stages:
        loops = tuple(
            (iv.name, iv.dom.extent if iv.dom is not None else None,
             st.iter_attrs[iv].kind.value if iv in st.iter_attrs else ForKind.SERIAL.value)
            for iv in st.leaf_iter_vars)
        tails = tuple(r.tail.value for r in st.relations if isinstance(r, Split))
        out.append((st.op.name, st.attach_kind.value,
                    st.attach_stage.op.name if st.attach_stage is not None else "",
                    st.attach_ivar.name if st.attach_ivar is not None else "", loops, tails))
    return tuple(out)


@functools.lru_cache(maxsize=256)
def _knobs_of(args: tuple[Any, ...], target: str
              ) -> tuple[dict[str, KnobChoice], tuple[Contraction, ...]]:
    """:func:`space_knobs` and the contractions of a task's compute, once per process:
    the probes schedule the compute some twenty times, and every instantiation asks."""
    _, outs = group_compute(*args)
    tgt = Target.from_str(target)
    return space_knobs(outs, tgt), tuple(contractions(outs, tgt))


def choices_of(cfg: Any, knobs: Collection[str], cons: Sequence[Contraction] = (),
               target: Target | None = None) -> ScheduleChoices:
    """The :class:`ScheduleChoices` a config makes, reading only the knobs that matter
    given those read before (no unrolling without a split vector loop, no accumulators
    without lane-wise reduction): configs that agree on what is read build one kernel.
    ``knobs``: the names the config's space defines; the rest keep the rules' picks.
    ``cons``: the compute's contractions, whose tiles the config chooses (those whose
    knobs it lacks: the rule's tiles for ``target``)."""
    chosen: dict[str, Any] = {}
    if cons:
        chosen["tiles"] = tile_choices(cfg, cons, set(knobs), target)

    def read(name: str) -> Any:
        if name in knobs:
            chosen[name] = cfg[name].val
        return chosen.get(name, getattr(ScheduleChoices, name))

    read("parallel_axes")
    if read("vectorize"):
        if read("vector_split"):
            read("unroll")
            read("shift_tail")
    if read("attach_reductions"):
        read("row_buffers")
    if read("lane_reduce"):
        read("accumulators")
    return ScheduleChoices(**chosen)


# ---- the template -----------------------------------------------------------------------


def generated_reference(inputs: Sequence[Any], nodes: Sequence[Any], outputs: Sequence[int]
                        ) -> Callable[[np.random.Generator],
                                      tuple[list[np.ndarray], dict[int, np.ndarray]]]:
    """The group's expected outputs by the graph's NumPy interpreter, on random inputs
    (by argument position): standard normal floats, else (where those make a value that
    is not finite, as a square root of a negative would) uniform ones in [0.5, 2);
    integers in {0, 1} (an index valid on any axis longer than one); random booleans.
    An output still not finite everywhere is left unchecked: no kernel can match it."""
    graph = group_graph(inputs, nodes, outputs)

    def make(rng: np.random.Generator) -> tuple[list[np.ndarray], dict[int, np.ndarray]]:
        for positive in (False, True):
            feeds = {v: _draw(rng, graph.type_of(v), positive) for v in graph.inputs}
            want = interpret(graph, feeds)
            if all(_finite(want[v]) for v in graph.outputs):
                break
        outs = [np.zeros(graph.type_of(v).shape, graph.type_of(v).dtype) for v in graph.outputs]
        n = len(graph.inputs)
        expected = {n + i: want[v] for i, v in enumerate(graph.outputs) if _finite(want[v])}
        return [*(feeds[v] for v in graph.inputs), *outs], expected

    return make


def _finite(a: np.ndarray) -> bool:
    return not np.issubdtype(a.dtype, np.floating) or bool(np.isfinite(a).all())


def _draw(rng: np.random.Generator, t: TensorType, positive: bool) -> np.ndarray:
    if t.dtype == "bool":
        return np.asarray(rng.random(t.shape) < 0.5)
    if t.dtype.startswith("int"):
        return np.asarray(rng.integers(0, 2, t.shape), t.dtype)
    if positive:
        return np.asarray(rng.uniform(0.5, 2.0, t.shape), t.dtype)
    return np.asarray(rng.standard_normal(t.shape), t.dtype)


@template(GENERATED, reference=generated_reference)
def generated(cfg, inputs: tuple, nodes: tuple, outputs: tuple):
    """A fused group by the generated schedule, its knobs those of :func:`space_knobs`
    and of each contraction's tiles (the rules' picks as the fallback)."""
    params, outs = group_compute(inputs, nodes, outputs)
    knobs, cons = _knobs_of((inputs, nodes, outputs), str(cfg.target))
    return generated_space(cfg, outs, (knobs, cons)), [*params, *outs]


def generated_space(cfg: Any, outputs: Sequence[te.Tensor],
                    known: tuple[dict[str, KnobChoice], Sequence[Contraction]] | None = None
                    ) -> Schedule:
    """Declare on ``cfg`` the generated space of the compute of ``outputs`` (the knobs
    of :func:`space_knobs`, each contraction's tiles, the rules' picks as the fallback),
    count its contractions' multiply-adds, and return the schedule ``cfg`` chooses.
    ``known``: the knobs and contractions, where already derived.

    >>> @at.template("attention_scores")                  # doctest: +SKIP
    ... def scores(cfg, heads, n, d):
    ...     q, k, p = attention_te(heads, n, d)
    ...     return generated_space(cfg, [p]), [q, k, p]
    """
    knobs, cons = known or (space_knobs(outputs, cfg.target),
                            contractions(outputs, cfg.target))
    for name, knob in knobs.items():
        cfg.define_knob(name, list(knob.values))
    cfg.fallback_with(**{name: knob.fallback for name, knob in knobs.items()})
    tiles = define_tiles(cfg, cons, cfg.target)
    for c in cons:
        cfg.add_flop(2.0 * math.prod(c.data) * math.prod(c.reduce))
    choices = dataclasses.replace(choices_of(cfg, knobs), tiles=tiles)
    return generated_schedule(outputs, cfg.target, choices)


__all__ = ["GENERATED", "KnobChoice", "choices_of", "generated", "generated_reference",
           "generated_space", "group_args", "group_compute", "group_graph",
           "schedule_fingerprint", "space_knobs"]
