"""Whole models: tilewise beside ONNX Runtime, PyTorch eager and torch.compile, in one
process, round by round, under the roof of this machine's limits.

    python benchmarks/models.py                                  # the zoo, 1 and 2 threads
    python benchmarks/models.py --only resnet18,bert_layer --threads 1 --no-compile
    python benchmarks/models.py --only resnet50 --db tuning.db --breakdown --json out.json

For each zoo model (``--only``) and thread count (``--threads``): tilewise compiled
untuned (``compile_model(name, target="c -cores=T")``) and, with ``--db``, tuned from
that database; ONNX Runtime (T intra-op threads, sequential); PyTorch eager
(``torch.set_num_threads(T)``, ``torch.inference_mode()``) on a module holding the
same weights (``tilewise.models.torch_zoo``); and torch.compile (inductor, its C++ compiled for T
threads; ``--no-compile`` skips it, and a model inductor cannot compile gets a note).
Every side is built and checked first: its outputs against ONNX Runtime's, the largest
difference relative to the output's scale printed, and a side more than 1e-3 off is
not timed. Then ``--rounds`` rounds, each reading the FMA peak (``fma_peak.py``) and
the copy bandwidth at T threads and timing every side (the median of ``--repeat``
runs after a warm-up; tilewise by its native timer), 0.2 s apart, the sides' order
turning each round; the roof takes the best of the rounds' peak and bandwidth. A
side's figure is the median of its rounds; ``ORT/tw`` is the median of the rounds'
ratios ONNX Runtime ms / tilewise ms (above 1: tilewise faster).

The roof is the time the compiled model would take at the machine's limits: per
kernel of its manifest, the larger of its executed FLOPs over the FMA peak (a Winograd
kernel's multiplies: the direct FLOPs / 2.25 for F(2x2, 3x3), / 4 for F(4x4, 3x3), its
tile read from the config that dispatch runs) and the bytes of its arguments, each read
or written once, over the bandwidth of a 256 MB NumPy copy (read + written, split over
T threads), summed over the kernels. Generated (fused element-wise and reduction)
kernels have no FLOP count in the manifest: they count by their bytes alone. Every
argument is charged at the copy bandwidth, though an activation may stay in cache from
one kernel to the next. ``roof/tw`` is the roof over tilewise's median.
``--breakdown`` prints where tilewise's time goes (``profile()``): per kernel class
(template kernels by template, generated ones by their label) the summed ms, its
share, and the class's roof. ``--json`` writes every round's readings, the roofs per
kernel and the machine's description. Nothing here is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

PAUSE_S = 0.2
MAX_ERROR = 1e-3
#: Executed multiplies of F(m x m, 3 x 3) are the direct sum's over this.
WINOGRAD_SAVING = {2: 2.25, 4: 4.0}
#: A side whose slowest round is this much slower than its fastest gets a note.
UNSURE_SPREAD = 1.25
PEERS = ("onnxruntime", "pytorch", "torch.compile")


@dataclass
class Side:
    """One contender at one thread count: ``timer()`` is a round's seconds per run."""

    label: str
    timer: Callable[[], float] | None = None
    error: float | None = None  # largest |out - ORT's| over the output's scale
    note: str = ""  # why it is not timed
    build_s: float | None = None
    library: object = None  # a tilewise side's ModelLibrary
    rounds: list[float] = field(default_factory=list)


def _python_timer(call: Callable[[], object], repeat: int) -> Callable[[], float]:
    """A side's timer: the median of ``repeat`` calls after a warm-up."""
    from tilewise.model_bench import time_calls

    return lambda: time_calls(call, repeat)


class CopyBandwidth:
    """Bytes read plus written per second by ``dst[...] = src`` of 256 MB, the copy
    split in ``threads`` slices copied at once (NumPy lets go of the GIL to copy)."""

    def __init__(self, nbytes: int = 256 << 20) -> None:
        import numpy as np

        self.src = np.ones(nbytes // 4, np.float32)
        self.dst = np.zeros_like(self.src)

    def __call__(self, threads: int, repeat: int = 3) -> float:
        n = self.src.size
        cuts = [n * i // threads for i in range(threads + 1)]

        def copy(i: int) -> None:
            self.dst[cuts[i]:cuts[i + 1]] = self.src[cuts[i]:cuts[i + 1]]

        samples = []
        with ThreadPoolExecutor(threads) as pool:
            for r in range(repeat + 1):
                t0 = time.perf_counter()
                list(pool.map(copy, range(threads)))
                if r:  # the first one warms up
                    samples.append(time.perf_counter() - t0)
        return 2 * self.src.nbytes / statistics.median(samples)


# -- the sides ------------------------------------------------------------------------


def tilewise_side(label: str, name: str, threads: int, db: str | None, feeds, session,
                  repeat: int) -> Side:
    import tilewise as tw
    from tilewise.model_bench import check_against_ort

    t0 = time.perf_counter()
    try:
        lib = tw.compile_model(name, db=db, target=f"c -cores={threads}")
    except Exception as exc:  # noqa: BLE001  (the rest of the run goes on)
        return Side(label, note=f"did not compile: {type(exc).__name__}: {exc}"[:300])
    side = Side(label, build_s=time.perf_counter() - t0, library=lib)
    try:
        side.error = check_against_ort(lib, session, feeds)
    except Exception as exc:  # noqa: BLE001
        side.note = f"did not run: {type(exc).__name__}: {exc}"[:300]
        return side
    side.timer = lambda: lib.time(feeds, number=1, repeat=repeat).median
    return side


def torch_side(label: str, module, inputs, want: dict, out_name: str, threads: int,
               repeat: int, compile_: bool) -> Side:
    import torch

    from tilewise.model_bench import relative_error

    side = Side(label)
    call = module
    t0 = time.perf_counter()
    try:
        if compile_:
            import torch._inductor.config as inductor

            torch._dynamo.reset()
            inductor.cpp.threads = threads  # its OpenMP loops' width, fixed at compile
            call = torch.compile(module)
        with torch.inference_mode():
            out = call(*inputs)  # torch.compile compiles here
    except Exception as exc:  # noqa: BLE001
        side.note = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"[:300]
        return side
    side.build_s = time.perf_counter() - t0 if compile_ else None
    side.error = relative_error({out_name: out.numpy()}, want)
    side.timer = _python_timer(lambda: call(*inputs), repeat)
    return side


# -- the roof -------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelCost:
    """What one kernel must do: FLOPs executed and bytes moved (None: unknown)."""

    name: str
    kind: str  # its template's name, or a generated kernel's label
    flop: float
    nbytes: int | None
    tile: int | None = None  # Winograd's output tile m

    def seconds(self, peak_flops: float, bandwidth: float) -> tuple[float, float]:
        return self.flop / peak_flops, (self.nbytes or 0) / bandwidth


def kernel_bytes(graph, names: list[str]) -> dict[str, int]:
    """Bytes of each kernel's arguments (the values its fused group reads and writes),
    matching the manifest's kernel names to the graph's groups in run order (groups
    that are views of their input make no kernel and are passed over)."""
    from tilewise.graph.fuse import partition

    groups = partition(graph)
    out, at = {}, 0
    for name in names:
        stem = re.sub(r"^k\d+_", "", name)
        for i in range(at, len(groups)):
            if re.sub(r"\W", "_", groups[i].name)[:40] == stem:
                values = dict.fromkeys([*groups[i].inputs, *groups[i].outputs])
                out[name] = sum(graph.type_of(v).nbytes for v in values)
                at = i + 1
                break
    return out


def winograd_tile(kernel: dict, context) -> int:
    """F(m x m)'s m in the config this kernel runs: the database's best where the
    kernel was tuned, its template's fallback where not."""
    from tilewise.autotune import Task, TaskKey

    task = Task.from_key(TaskKey.from_json(kernel["task"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kernel["tuned"] and context is not None:
            return int(context.query(task)["tile"].val)
        return int(task.config_space.fallback["tile"].val)


def kernel_costs(manifest: dict, graph, context) -> tuple[list[KernelCost], list[str]]:
    notes, sizes = [], {}
    names = [k["name"] for k in manifest["kernels"]]
    if graph is not None:
        sizes = kernel_bytes(graph, names)
    costs = []
    for k in manifest["kernels"]:
        kind = k["task"]["name"] if k["task"] else k["label"]
        flop, tile = float(k["flop"] or 0.0), None
        if kind == "conv2d_nchw_winograd":
            try:
                tile = winograd_tile(k, context)
            except Exception as exc:  # noqa: BLE001
                tile = 2
                notes.append(f"{k['name']}: tile not recoverable ({exc}); F(2x2) assumed")
            flop /= WINOGRAD_SAVING[tile]
        costs.append(KernelCost(k["name"], kind, flop, sizes.get(k["name"]), tile))
    unknown = [c.name for c in costs if c.nbytes is None]
    if unknown:
        notes.append(f"{len(unknown)} of {len(costs)} kernels' bytes unknown (the graph "
                     f"did not import or match), counted as compute only: {unknown[:3]}")
    return costs, notes


def roof(costs: list[KernelCost], peak_gflops: float, bandwidth: float) -> dict:
    per = [c.seconds(peak_gflops * 1e9, bandwidth) for c in costs]
    return {"roof_ms": 1e3 * sum(max(p) for p in per),
            "compute_ms": 1e3 * sum(p[0] for p in per),
            "memory_ms": 1e3 * sum(p[1] for p in per),
            "memory_bound_kernels": sum(m > c for c, m in per),
            "kernels": [{"name": c.name, "kind": c.kind, "flop": c.flop, "bytes": c.nbytes,
                         "winograd_tile": c.tile, "compute_ms": 1e3 * s[0],
                         "memory_ms": 1e3 * s[1]} for c, s in zip(costs, per, strict=True)]}


def breakdown(side: Side, feeds, rounds: int, costs: list[KernelCost], peak: float,
              bandwidth: float) -> list[dict]:
    """Per kernel class: summed median ms of ``profile()``, share, and roof ms."""
    classes: dict[str, dict] = {}
    cost_of = {c.name: c for c in costs}
    for p in side.library.profile(feeds, rounds=rounds):
        c = cost_of[p.name]
        row = classes.setdefault(c.kind, {"kind": c.kind, "kernels": 0, "ms": 0.0,
                                          "roof_ms": 0.0})
        row["kernels"] += 1
        row["ms"] += 1e3 * p.seconds
        row["roof_ms"] += 1e3 * max(c.seconds(peak * 1e9, bandwidth))
    total = sum(r["ms"] for r in classes.values()) or 1.0
    rows = sorted(classes.values(), key=lambda r: -r["ms"])
    for r in rows:
        r["share"] = r["ms"] / total
    return rows


# -- one model at one thread count ------------------------------------------------------


def measure(name: str, threads: int, opts, probes) -> dict:
    import torch

    from tilewise import models
    from tilewise.model_bench import ort_session
    from tilewise.models.torch_zoo import torch_inputs, torch_model

    fma_peak, bandwidth = probes
    onnx_model = models.build(name)
    feeds = models.example_inputs(onnx_model)
    session = ort_session(onnx_model.SerializeToString(), threads)
    out_names = [o.name for o in session.get_outputs()]
    want = dict(zip(out_names, session.run(None, feeds), strict=True))
    torch.set_num_threads(threads)

    sides = [tilewise_side("tilewise", name, threads, None, feeds, session, opts.repeat)]
    if opts.db:
        sides.append(tilewise_side("tuned", name, threads, opts.db, feeds, session,
                                   opts.repeat))
    ort = Side("onnxruntime", error=0.0)
    ort.timer = _python_timer(lambda: session.run(None, feeds), opts.repeat)
    sides.append(ort)
    module, inputs = torch_model(name, onnx_model), torch_inputs(onnx_model, feeds)
    sides.append(torch_side("pytorch", module, inputs, want, out_names[0], threads,
                            opts.repeat, compile_=False))
    if opts.compile:
        sides.append(torch_side("torch.compile", module, inputs, want, out_names[0],
                                threads, opts.repeat, compile_=True))
    notes = []
    for s in sides:
        if s.timer is not None and s.error is not None and not s.error <= MAX_ERROR:
            s.note, s.timer = f"{s.error:.1e} from ONNX Runtime's outputs: not timed", None
        if s.note:
            notes.append(f"{name}, {threads} thread(s), {s.label}: {s.note}")
    print(f"{name}, {threads} thread(s): max relative error against ONNX Runtime: "
          + ", ".join(f"{s.label} {s.error:.1e}" for s in sides
                      if s.error is not None and s.label != "onnxruntime")
          + "; built in " + ", ".join(f"{s.label} {s.build_s:.0f} s" for s in sides
                                      if s.build_s is not None), flush=True)

    timed = [s for s in sides if s.timer is not None]
    peaks, bws = [], []
    with torch.inference_mode():
        for r in range(opts.rounds):
            peaks.append(fma_peak(threads))
            time.sleep(PAUSE_S)
            bws.append(bandwidth(threads))
            start = r % len(timed) if timed else 0
            for s in timed[start:] + timed[:start]:
                time.sleep(PAUSE_S)
                s.rounds.append(s.timer())
    # The roof takes the best reading of each limit: a co-tenant of this shared machine
    # only ever lowers one (a 2-thread peak read 111 GFLOP/s beside a busy core, 234
    # alone), and a roof that a side timed in a quieter moment beats is no roof.
    peak, bw = max(peaks), max(bws)
    row = {"model": name, "threads": threads, "fma_peak_gflops_rounds": peaks,
           "bandwidth_gbs_rounds": [b / 1e9 for b in bws], "fma_peak_gflops": peak,
           "bandwidth_gbs": bw / 1e9, "sides": {}, "roof": {}, "breakdown": {}}
    wide = []
    for s in sides:
        row["sides"][s.label] = {
            "rounds_ms": [1e3 * x for x in s.rounds],
            "median_ms": 1e3 * statistics.median(s.rounds) if s.rounds else None,
            "error": s.error, "note": s.note or None, "build_s": s.build_s}
        if len(s.rounds) > 1 and max(s.rounds) > UNSURE_SPREAD * min(s.rounds):
            wide.append(f"{s.label} {1e3 * min(s.rounds):.1f}-{1e3 * max(s.rounds):.1f}")
    if wide:
        notes.append(f"{name}, {threads} thread(s): rounds read {', '.join(wide)} ms, so "
                     "its ratios are unsure; measure again with more --rounds")
    if ort.rounds:
        row["ort_ratio"] = {s.label: statistics.median(
            o / t for o, t in zip(ort.rounds, s.rounds, strict=True))
            for s in sides if s.rounds and s is not ort}

    graph = None
    if any(s.library is not None for s in sides):
        try:
            from tilewise.model import import_model

            graph = import_model(name)
        except Exception as exc:  # noqa: BLE001
            notes.append(f"{name}: the graph did not import for the roof's bytes: {exc}")
    for s in sides:
        if s.library is None:
            continue
        context = None
        if s.label == "tuned":
            from tilewise.autotune import Database, apply_history_best

            context = apply_history_best(Database(Path(opts.db)))
        costs, why = kernel_costs(s.library.manifest, graph, context)
        notes += [f"{name}, {threads} thread(s), {s.label} roof: {w}" for w in why]
        row["roof"][s.label] = roof(costs, peak, bw)
        if opts.breakdown:
            time.sleep(PAUSE_S)
            row["breakdown"][s.label] = breakdown(s, feeds, opts.rounds, costs, peak, bw)
    row["notes"] = notes
    return row


# -- printing ---------------------------------------------------------------------------


def print_table(rows: list[dict], tuned: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    def fmt(v, spec=".2f"):
        return "-" if v is None else format(v, spec)

    labels = ["tilewise", *(["tuned"] if tuned else []), *PEERS]
    table = Table(title="ms per run (median of rounds), fp32, batch 1; ORT/x: median of "
                        "per-round ORT ms / x ms; roof: the compiled model at the best FMA "
                        "peak and copy bandwidth read in the same rounds")
    cols = ["model", "thr", *labels, "ORT/tw", *(["ORT/tuned"] if tuned else []),
            "roof ms", "roof/tw", *(["roof tuned", "roof/tuned"] if tuned else []),
            "peak GF/s", "copy GB/s", "tw err", *(["tuned err"] if tuned else [])]
    for c in cols:
        table.add_column(c, justify="left" if c == "model" else "right")
    for r in rows:
        sides, ratio = r["sides"], r.get("ort_ratio", {})
        cells = [r["model"], str(r["threads"])]
        cells += [fmt(sides.get(lb, {}).get("median_ms")) for lb in labels]
        cells += [fmt(ratio.get(lb)) for lb in ["tilewise", *(["tuned"] if tuned else [])]]
        for lb in ["tilewise", *(["tuned"] if tuned else [])]:
            ms = r["roof"].get(lb, {}).get("roof_ms")
            got = sides.get(lb, {}).get("median_ms")
            cells += [fmt(ms), fmt(ms / got if ms and got else None)]
        cells += [fmt(r["fma_peak_gflops"], ".0f"), fmt(r["bandwidth_gbs"], ".1f")]
        cells += [fmt(sides.get(lb, {}).get("error"), ".1e")
                  for lb in ["tilewise", *(["tuned"] if tuned else [])]]
        table.add_row(*cells)
    console = Console(width=200)
    console.print(table)
    for r in rows:
        for label, classes in r["breakdown"].items():
            t = Table(title=f"{r['model']}, {r['threads']} thread(s), {label}: where the "
                            "time goes (profile(), median per kernel, summed per class)")
            for c in ("class", "kernels", "ms", "share", "roof ms", "roof/ms"):
                t.add_column(c, justify="left" if c == "class" else "right")
            for c in classes:
                t.add_row(c["kind"][:60], str(c["kernels"]), fmt(c["ms"]),
                          fmt(c["share"], ".0%"), fmt(c["roof_ms"]),
                          fmt(c["roof_ms"] / c["ms"] if c["ms"] else None))
            console.print(t)
    for note in sorted({n for r in rows for n in r["notes"]}):
        console.print(f"note: {note}", markup=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated zoo models (default: all)")
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=5, help="timed runs a side and round")
    ap.add_argument("--db", help="also compile tuned from this tuning database")
    ap.add_argument("--no-compile", dest="compile", action="store_false",
                    help="skip torch.compile")
    ap.add_argument("--breakdown", action="store_true",
                    help="where tilewise's time goes, per kernel class")
    ap.add_argument("--json", type=Path, help="also write every reading here")
    opts = ap.parse_args()
    # NumPy's BLAS serves only the checks here: one thread, none left spinning.
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    from compare import machine
    from fma_peak import FmaPeak

    from tilewise.models.torch_zoo import NAMES

    names = opts.only.split(",") if opts.only else list(NAMES)
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        sys.exit(f"unknown model(s) {unknown}; have {list(NAMES)}")
    if opts.rounds < 1 or opts.repeat < 1:
        sys.exit("--rounds and --repeat must be at least 1")
    if opts.db and not Path(opts.db).is_file():
        sys.exit(f"no tuning database at {opts.db}")
    import onnxruntime
    import torch

    import tilewise.ops  # noqa: F401  (registers the templates the manifests name)

    if opts.compile:
        import torch._inductor.config as inductor

        inductor.compile_threads = 1  # no pool of compile workers left beside the timers
    start = machine() | {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__}
    probes = (FmaPeak(), CopyBandwidth())
    rows = []
    for name in names:
        for t in opts.threads:
            rows.append(measure(name, t, opts, probes))
    print_table(rows, tuned=bool(opts.db))
    if opts.json:
        opts.json.write_text(json.dumps(
            {"machine": start, "options": {k: (str(v) if isinstance(v, Path) else v)
                                           for k, v in vars(opts).items()},
             "max_error": MAX_ERROR, "pause_s": PAUSE_S,
             "winograd_saving": WINOGRAD_SAVING, "results": rows}, indent=1))


if __name__ == "__main__":
    main()
