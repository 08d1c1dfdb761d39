"""Build a graph into one native library: fuse, lower every kernel, plan the memory,
lay out the weights, write the entry points, compile the kernels in parallel and link.

The entry ``tw_model_run(inputs, outputs, arena, weights)`` runs the kernels in order
from a table of their arguments, each an input, an output, a weight or an arena offset:
no Python between kernels. ``tw_model_time`` and ``tw_model_profile`` time the whole
run and each kernel.
"""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import __version__, env
from ..autotune.dispatch import HistoryBest
from ..errors import ModelError
from ..runtime.aligned import empty
from ..runtime.compiler import compile_object, link_shared
from ..runtime.model_library import FORMAT, ModelLibrary
from ..target import Target
from .fuse import Group
from .ir import Graph
from .kernels import Kernel, group_kernel
from .layouts import fused
from .memory import LINE, plan_memory

INPUT, OUTPUT, WEIGHT, ARENA = 0, 1, 2, 3


def _is_view(graph: Graph, group: Group) -> bool:
    """A group of reshapes only: its output is its input's bytes, read another way."""
    return (group.anchor is None and all(n.op == "reshape" for n in group.nodes)
            and len(group.inputs) == 1 and len(group.outputs) == 1
            and group.outputs[0] not in graph.outputs)


def build_model(graph: Graph, target: str | Target = "c",
                context: HistoryBest | None = None, pack_weights: bool = True,
                templates: bool = True, layouts: bool = True) -> ModelLibrary:
    """Compile ``graph`` (optimised: see :func:`tilewise.graph.passes.optimize`) into a
    loaded :class:`ModelLibrary`. With ``pack_weights`` the weights are packed (and
    Winograd-transformed) once, here, and stored so: faster runs, and for Winograd's
    F(4x4) four times the weights' memory. Without ``templates`` every kernel, the
    anchors' too, is generated (:mod:`.generated_task`). With ``layouts``, values
    between convolutions stay in channel blocks where :mod:`.layouts` plans so."""
    tgt = Target.from_str(target)
    groups, blocks = fused(graph, tgt, templates, layouts)
    alias: dict[str, str] = {}
    kernels: list[Kernel] = []
    start = time.perf_counter()
    for group in groups:
        if _is_view(graph, group):
            src = group.inputs[0]
            alias[group.outputs[0]] = alias.get(src, src)
            continue
        kernels.append(group_kernel(graph, group, len(kernels), tgt, context, pack_weights,
                                    templates, blocks))
    lower_s = time.perf_counter() - start
    root = lambda v: alias.get(v, v)  # noqa: E731
    refs, weights, plan = _layout(graph, kernels, root)
    entry = _entry_source(kernels, refs, root)
    start = time.perf_counter()
    sources = [k.source for k in kernels] + [entry]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        objects = [p for p, _ in pool.map(lambda s: compile_object(s, tgt.cflags), sources)]
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    digest = hashlib.sha256("\0".join(str(o) for o in objects).encode()).hexdigest()[:32]
    so = env.cache_dir() / "models" / f"{digest}.so"
    if not so.exists():
        link_shared(objects, tgt.cflags, so)
    link_s = time.perf_counter() - start
    manifest = {
        "format": FORMAT,
        "tilewise": __version__,
        "name": graph.name,
        "target": str(tgt),
        "templates": templates,
        "blocked_values": len(blocks),
        "inputs": [_spec(graph, v) for v in graph.inputs],
        "outputs": [_output_spec(graph, i, v, refs, root) for i, v in enumerate(graph.outputs)],
        "kernels": [{"name": k.name, "label": k.label, "tuned": k.tuned, "flop": k.flop,
                     "task": None if k.task is None else k.task.key.to_json()}
                    for k in kernels],
        "arena_bytes": plan.arena_bytes,
        "peak_live_bytes": plan.peak_live_bytes,
        "weights_bytes": int(weights.nbytes),
        "build": {"lower_s": round(lower_s, 3), "compile_s": round(compile_s, 3),
                  "link_s": round(link_s, 3)},
    }
    return ModelLibrary(so, manifest, weights)


def _spec(graph: Graph, v: str) -> dict:
    t = graph.type_of(v)
    return {"name": v, "shape": list(t.shape), "dtype": t.dtype}


def _output_spec(graph: Graph, i: int, v: str, refs: dict, root) -> dict:
    spec = _spec(graph, v)
    kind, at = refs[root(v)]
    if kind == INPUT:
        spec["source"] = {"kind": "input", "index": at}
    elif kind == WEIGHT:
        spec["source"] = {"kind": "constant", "offset": at}
    elif (kind, at) != (OUTPUT, i):
        raise ModelError(f"output {v!r} is also another output; not supported yet")
    return spec


def _layout(graph: Graph, kernels: list[Kernel], root):
    """Where each value lives: ``refs[value] = (kind, index or byte offset)``, the
    weights blob and the arena plan."""
    refs: dict[str, tuple[int, int]] = {}
    for i, v in enumerate(graph.inputs):
        refs[v] = (INPUT, i)
    for i, v in enumerate(graph.outputs):
        refs.setdefault(v, (OUTPUT, i))
    constants = dict(graph.constants)
    for k in kernels:
        constants.update(k.constants)
    used = [root(v) for k in kernels for v in k.values] + [root(v) for v in graph.outputs]
    consts = [v for v in dict.fromkeys(used) if v in constants and v not in refs]
    offset = 0
    for v in consts:
        refs[v] = (WEIGHT, offset)
        offset += -(-constants[v].nbytes // LINE) * LINE
    weights = _empty_bytes(offset)
    for v in consts:
        a = np.ascontiguousarray(constants[v])
        at = refs[v][1]
        weights[at:at + a.nbytes] = a.reshape(-1).view(np.uint8)
    sizes = {root(v): graph.type_of(root(v)).nbytes for k in kernels for v in k.values
             if root(v) not in refs and root(v) not in constants}
    for k in kernels:
        sizes.update(k.workspace)
    steps = [([root(v) for v in k.reads],
              [root(v) for v in k.writes] + [w for w, _ in k.workspace]) for k in kernels]
    plan = plan_memory(steps, sizes)
    for v, at in plan.offsets.items():
        refs[v] = (ARENA, at)
    return refs, weights, plan


def _empty_bytes(n: int) -> np.ndarray:
    return empty((max(n, 1),), np.uint8)


def _entry_source(kernels: list[Kernel], refs: dict, root) -> str:
    starts, kinds, ats = [0], [], []
    for k in kernels:
        for v in k.params:
            kind, at = refs[root(v)]
            kinds.append(kind)
            ats.append(at)
        starts.append(len(kinds))
    most = max((len(k.params) for k in kernels), default=1)
    n = len(kernels)
    decls = "\n".join(f"void {k.name}_packed(void**);" for k in kernels)
    table = ", ".join(f"{k.name}_packed" for k in kernels) or "0"

    def ints(xs):
        return ", ".join(map(str, xs)) or "0"

    return f"""#include <stdint.h>
#include <time.h>
typedef void (*tw_kernel)(void**);
{decls}
static tw_kernel const tw_kernels[] = {{{table}}};
static const int32_t tw_start[] = {{{ints(starts)}}};
static const uint8_t tw_kind[] = {{{ints(kinds)}}};
static const int64_t tw_at[] = {{{ints(ats)}}};

static double tw_now(void) {{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}}

static void tw_step(int32_t k, void** in, void** out, char* arena, char* w) {{
  void* args[{most}];
  for (int32_t j = tw_start[k]; j < tw_start[k + 1]; ++j) {{
    int64_t at = tw_at[j];
    void* p = tw_kind[j] == {INPUT} ? in[at] : tw_kind[j] == {OUTPUT} ? out[at]
            : tw_kind[j] == {WEIGHT} ? (void*)(w + at) : (void*)(arena + at);
    args[j - tw_start[k]] = p;
  }}
  tw_kernels[k](args);
}}

void tw_model_run(void** in, void** out, void* arena, void* w) {{
  for (int32_t k = 0; k < {n}; ++k) tw_step(k, in, out, (char*)arena, (char*)w);
}}

void tw_model_time(void** in, void** out, void* arena, void* w, int32_t number,
                   int32_t repeat, double* res) {{
  tw_model_run(in, out, arena, w);
  for (int32_t r = 0; r < repeat; ++r) {{
    double t0 = tw_now();
    for (int32_t i = 0; i < number; ++i) tw_model_run(in, out, arena, w);
    res[r] = (tw_now() - t0) / (double)number;
  }}
}}

void tw_model_profile(void** in, void** out, void* arena, void* w, double* seconds) {{
  for (int32_t k = 0; k < {n}; ++k) {{
    double t0 = tw_now();
    tw_step(k, in, out, (char*)arena, (char*)w);
    seconds[k] = tw_now() - t0;
  }}
}}
"""
