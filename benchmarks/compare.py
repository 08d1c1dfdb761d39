"""tilewise against the libraries users would pick instead, on this machine, same run.

    python benchmarks/compare.py                                   # every workload, 200 trials
    python benchmarks/compare.py --only resnet-c3-3x3,gemm-512 --trials 64 --json out.json
    python benchmarks/compare.py --only gemm-512 --no-tvm           # skip MetaSchedule
    python benchmarks/compare.py --only resnet-c3-3x3 --winograd    # 3x3 by Winograd
    python benchmarks/compare.py --winograd resnet-c2-3x3,resnet-c3-3x3  # those two only

For every workload of ``shared/bench/workloads.json`` (or the ``--only`` subset) and
every thread count (``--threads``, default 1 and 2), a child process with
OMP/OPENBLAS/MKL_NUM_THREADS set measures: tilewise tuned until ``--db`` (default a
fresh file) holds ``--trials`` of the task's configs (ModelTuner; a database that
already holds them is only re-measured, so a second run costs no tuning), then its
fallback config and the best of those trials re-measured ``--rounds`` times, each
round in a fresh child, alternating with NumPy (gemm, batch_matmul) and PyTorch CPU
when installed (``pip install torch``), also in a fresh child per round: the median of
rounds, and a passing disturbance of a shared machine falls on every contender; TVM
MetaSchedule when installed (``pip install -e '.[metaschedule]'``): the plain TE
compute tuned until its database in ``--tvm-work-dir`` (one folder per workload and
thread count) holds ``--tvm-trials`` records (default 256; 0 or ``--no-tvm`` skips
it; a folder that holds them already costs no tuning), its best schedule checked and
timed in each round beside the others. Each side runs in its own child process.
Kernels are built first and timed after: nothing compiles while a timer runs.
The peers' child also reads the machine's fp32 FMA peak at the same thread count
(``benchmarks/fma_peak.py``), the roof every contender is under. Prints one table of
GFLOP/s medians with the ratio of tuned tilewise to the best peer and to the FMA
peak, the tuned config re-measured over its reading when the tuner chose it
("tuned/search": how well a tuning result holds), and both tuning wall times, and
writes JSON with the machine's description. A row where any side's rounds differ by
more than a quarter gets a note (:func:`spread_notes`): a slow spell fell on it, and
its ratios want measuring again.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKLOADS = Path(__file__).resolve().parents[2] / "shared/bench/workloads.json"
PARTS = ("tilewise", "peers", "metaschedule")
PEERS = ("numpy", "pytorch", "metaschedule")  # GFLOP/s keys of a row, in the table's order


def load_workloads() -> list[dict]:
    data = json.loads(WORKLOADS.read_text())
    out = []
    for kind in ("gemm", "conv2d", "depthwise_conv2d", "batch_matmul"):
        out += [{**w, "kind": kind} for w in data.get(kind, [])]
    return out


def tilewise_task(w: dict, winograd: bool = False) -> tuple[str, tuple]:
    """(template name, args) of a workload; batch 1, fp32. With ``winograd``, a 3x3
    convolution at stride 1 goes to ``conv2d_nchw_winograd``."""
    k = w["kind"]
    if k == "gemm":
        return "gemm", (w["M"], w["N"], w["K"])
    if k == "conv2d":
        args = (1, w["C"], w["H"], w["W"], w["K"], w["R"], w["S"], w["stride"], w["pad"])
        if winograd and (w["R"], w["S"], w["stride"]) == (3, 3, 1):
            return "conv2d_nchw_winograd", args
        return "conv2d_nchw", args
    if k == "depthwise_conv2d":
        return "depthwise_conv2d_nchw", (1, w["C"], w["H"], w["W"], w["R"], w["S"],
                                         w["stride"], w["pad"])
    if k == "batch_matmul":
        return "batch_matmul", (w["B"], w["M"], w["N"], w["K"])
    raise ValueError(f"unknown workload kind {k}")


def _time_py(fn, number: int, repeat: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return statistics.median(times)


def _rounds(fn, number: int, repeat: int, rounds: int) -> list[float]:
    """``rounds`` readings of :func:`_time_py`, as tilewise's configs are measured."""
    return [_time_py(fn, number, repeat) for _ in range(rounds)]


def _peer(res: dict, name: str, flop: float, seconds: list[float]) -> None:
    res[f"{name}_rounds"] = [flop / t / 1e9 for t in seconds]
    res[name] = statistics.median(res[f"{name}_rounds"])


def _numbers(flop: float) -> int:
    """Runs per repeat: about 20 ms of work at ~100 GFLOP/s, at least 3."""
    return max(3, min(200, int(2e9 / flop)))


#: While tuning, each repeat runs a config as many times as last this long, from one
#: run up: a slow config, or a large workload, is not run three times over to fill a
#: repeat (gemm-2048, 0.17-0.2 s a run: 10 runs a measurement, 2.5 s of the 4.5 s a
#: trial took; the final rounds keep ``_numbers``).
TUNE_REPEAT_MS = 20.0


def peers(w: dict, arrays: list, threads: int, repeat: int,
          rounds: int = 1) -> tuple[dict, list[str]]:
    """GFLOP/s of NumPy and PyTorch on the same inputs; and notes on what was skipped."""
    import numpy as np

    from tilewise.autotune import Task
    from tilewise.runtime import empty

    name, args = tilewise_task(w)
    flop = Task(name, args, "c").flop
    n = _numbers(flop)
    res, notes = {}, []
    if w["kind"] in ("gemm", "batch_matmul"):
        a, b, c = arrays[0], arrays[1], empty(arrays[-1].shape, arrays[-1].dtype)
        _peer(res, "numpy", flop, _rounds(lambda: np.matmul(a, b, out=c), n, repeat, rounds))
    try:
        import torch
    except ImportError:
        notes.append("PyTorch: not installed (pip install torch)")
        return res, notes
    torch.set_num_threads(threads)
    with torch.no_grad():
        _peer(res, "pytorch", flop, _rounds(pytorch_call(w, arrays), n, repeat, rounds))
    return res, notes


def pytorch_call(w: dict, arrays: list):
    """PyTorch's call for workload ``w`` on tilewise's ``arrays`` (its inputs first)."""
    import torch

    from tilewise.runtime import empty

    t = [torch.from_numpy(x) for x in arrays[:2]]
    if w["kind"] == "conv2d":
        return lambda: torch.nn.functional.conv2d(t[0], t[1], stride=w["stride"], padding=w["pad"])
    if w["kind"] == "depthwise_conv2d":
        return lambda: torch.nn.functional.conv2d(t[0], t[1], stride=w["stride"],
                                                  padding=w["pad"], groups=w["C"])
    out = torch.from_numpy(empty(arrays[-1].shape, arrays[-1].dtype))
    mm = torch.mm if w["kind"] == "gemm" else torch.bmm
    return lambda: mm(t[0], t[1], out=out)


def _measure(task, configs: dict, builder, runner, rounds: int, first: int = 0) -> dict:
    """Build every config of ``configs`` (label -> config) before any timer starts, then
    check and time them in turn, ``rounds`` times, each time in a fresh child process
    exactly as the tuner measured them (:meth:`MeasureOption.measure_rounds`): nothing
    left in this process (idle thread pools, the model) can disturb the timing, and
    alternating the configs spreads a passing disturbance of this shared machine over
    all of them. The configs start at the ``first``-th (modulo their number): each of
    compare.py's rounds, a child of its own, starts one further along, so that no
    config is timed first, or last, in every round. GFLOP/s: the median over rounds of
    each round's median; every round's value is kept."""
    from tilewise.autotune import MeasureInput, MeasureOption

    labels = list(configs)
    start = first % len(labels)
    labels = labels[start:] + labels[:start]
    inputs = [MeasureInput(task, configs[label]) for label in labels]
    out: dict = {f"{label}_config": str(c) for label, c in configs.items()}
    per: dict[str, list[float]] = {label: [] for label in configs}
    for results in MeasureOption(builder, runner).measure_rounds(inputs, rounds):
        for label, res in zip(labels, results, strict=True):
            if res.ok:
                per[label].append(task.flop / statistics.median(res.costs) / 1e9)
            else:
                out[f"{label}_error"] = f"{res.error.name}: {res.error_msg[:200]}"
    for label, values in per.items():
        out[f"{label}_correct"] = f"{label}_error" not in out
        if values:
            out[label] = statistics.median(values)
            out[f"{label}_rounds"] = values
    return out


def _tune(task, trials: int, db, tune: bool = True) -> dict:
    """With ``tune``, tune ``task`` until ``db`` holds ``trials`` of its configs (a
    database that already holds them costs no tuning: the run re-measures), then
    re-measure the leaders (``Tuner.confirm``). The best by the median of its readings,
    as the tuner saw it."""
    from tilewise import autotune as at

    out: dict = {}

    def measured():  # configs the template rejected spent no trial
        return {r.config.index: r for r in db.records(task) if not r.result.rejected}

    done = len(measured())
    if tune and done < trials:
        tuner = at.ModelTuner(task, seed=0)
        option = at.measure_option(builder=at.LocalBuilder(),
                                   runner=at.LocalRunner(number=1, repeat=3,
                                                         min_repeat_ms=TUNE_REPEAT_MS))
        t0 = time.perf_counter()
        summary = tuner.tune(trials - done, option, database=db, confirm=5)
        out["tune_s"] = time.perf_counter() - t0
        out["confirmed"] = summary.confirmed
        option.builder.close()
    configs = measured()
    out["trials"] = len(configs)
    out["tune_errors"] = sum(not r.result.ok for r in configs.values())
    best = db.best(task)
    if best is not None:
        out["tuned_during_search"] = task.flop / best.result.mean / 1e9
        out["tuned_config_index"] = best.config.index
    return out


def child(names: list[str], threads: int, opts: argparse.Namespace) -> dict:
    """Measure one side in this process: ``opts.part`` is one of ``PARTS``. The sides
    run in separate processes so that no library's idle thread pool (BLAS, OpenMP and
    TVM threads spin for a while after each call) competes with another side's timing."""
    import numpy as np

    import tilewise.ops  # noqa: F401  (registers the templates)
    from tilewise import autotune as at
    from tilewise.runtime import aligned

    part, trials, repeat = opts.part, opts.trials, opts.repeat
    if part == "metaschedule":
        import _metaschedule as tvm_peer  # beside this file; imports TVM lazily

        if note := tvm_peer.missing():
            return {"threads": threads, "rows": [], "notes": [note]}
    if part == "peers":
        from fma_peak import FmaPeak  # beside this file

        fma_peak = FmaPeak()
    target = f"c -cores={threads}"
    rows, notes = [], set()
    for w in [w for w in load_workloads() if w["name"] in names]:
        winograd = opts.winograd == "all" or w["name"] in opts.winograd.split(",")
        name, args = tilewise_task(w, winograd)
        task = at.Task(name, args, target)
        flop = task.flop
        arrays, expected = task.reference()(np.random.default_rng(0))
        # Every contender reads the same cache-line-aligned inputs, as tilewise's
        # measurements and PyTorch's own allocator give them.
        arrays = [aligned(a) for a in arrays]
        number = _numbers(flop)
        row = {"workload": w["name"], "template": name, "args": list(args), "threads": threads}
        if part == "peers":
            got, why = peers(w, arrays, threads, repeat, opts.rounds)
            row.update(got)
            row["fma_peak_rounds"] = [fma_peak(threads) for _ in range(opts.rounds)]
            notes.update(why)
            rows.append(row)
            continue
        if part == "metaschedule":
            row.update(tvm_peer.measure(w, arrays, expected, flop, tvm_peer.MeasureOptions(
                opts.tvm_trials, threads, Path(opts.tvm_work_dir) / f"{w['name']}-{threads}t",
                number, repeat, tune=opts.tune)))
            if "metaschedule_error" in row:
                notes.add(f"TVM MetaSchedule failed on {w['name']}, {threads} thread(s): "
                          f"{row['metaschedule_error']}")
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            continue

        configs = {"fallback": task.config_space.fallback}
        if trials > 0:
            row.update(_tune(task, trials, at.Database(opts.db), tune=opts.tune))
            if "tuned_config_index" in row:
                configs["tuned"] = task.config_space.get(row.pop("tuned_config_index"))
        builder = at.LocalBuilder()
        row.update(_measure(task, configs, builder, at.LocalRunner(number=number, repeat=repeat),
                            opts.rounds, first=opts.round))
        builder.close()
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return {"threads": threads, "rows": rows, "notes": sorted(notes)}


def machine() -> dict:
    from tilewise.target import Target

    return Target.from_str("c").describe() | {
        "python": platform.python_version(),
        "load_avg_at_start": os.getloadavg(),
    }


def print_table(results: list[dict], trials: int, tvm_trials: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"GFLOP/s (median), fp32, batch 1; tuned = {trials} trials, "
                        f"metaschedule = {tvm_trials} trials")
    for col in ("workload", "thr", "fallback", "tuned", "numpy", "pytorch", "metaschedule",
                "tuned/best peer", "FMA peak", "tuned/peak", "fallback/tuned", "tuned/search",
                "tune s", "ms tune s"):
        table.add_column(col, justify="left" if col == "workload" else "right")

    def fmt(v, spec=".1f"):
        return "-" if v is None else format(v, spec)

    for res in results:
        for r in res["rows"]:
            best_peer = max([r[p] for p in PEERS if p in r], default=None)
            tuned = r.get("tuned")
            table.add_row(
                r["workload"], str(r["threads"]), fmt(r.get("fallback")), fmt(tuned),
                *(fmt(r.get(p)) for p in PEERS),
                fmt(tuned / best_peer if tuned and best_peer else None, ".2f"),
                fmt(r.get("fma_peak")),
                fmt(tuned / r["fma_peak"] if tuned and r.get("fma_peak") else None, ".2f"),
                fmt(r["fallback"] / tuned if tuned and r.get("fallback") else None, ".2f"),
                fmt(tuned / r["tuned_during_search"]
                    if tuned and r.get("tuned_during_search") else None, ".2f"),
                fmt(r.get("tune_s"), ".0f"), fmt(r.get("metaschedule_tune_s"), ".0f"))
    console = Console(width=180)
    console.print(table)
    for note in sorted({n for res in results for n in res["notes"]}):
        console.print(f"note: {note}", markup=False)  # "[metaschedule]" is no style


def _merge_round(merged: dict, row: dict) -> None:
    """Fold one child's row into ``merged``: readings per round accumulate and the
    row's value is their median; a config wrong in any round is wrong."""
    for key, value in row.items():
        if key.endswith("_rounds"):
            readings = merged.setdefault(key, [])
            readings.extend(value)
            merged[key[: -len("_rounds")]] = statistics.median(readings)
        elif key.endswith("_correct"):
            merged[key] = merged.get(key, True) and value
        elif key not in merged:
            merged[key] = value


#: Readings of one side whose slowest round is this much below its fastest mark the row
#: as measured in a slow spell (on the 2-core VMs, a co-tenant taking a core halves a
#: round of a two-thread kernel).
UNSURE_SPREAD = 1.25


def spread_notes(row: dict) -> list[str]:
    """A note on ``row`` (merged from several rounds) where some side's rounds differ by
    more than :data:`UNSURE_SPREAD`: its median, and the ratios built on it, are unsure."""
    wide = []
    for side in ("fallback", "tuned", *PEERS):
        readings = row.get(f"{side}_rounds", [])
        if len(readings) > 1 and max(readings) > UNSURE_SPREAD * min(readings):
            wide.append(f"{side} {min(readings):.0f}-{max(readings):.0f}")
    if not wide:
        return []
    return [f"{row['workload']}, {row['threads']} thread(s): rounds read {', '.join(wide)} "
            "GFLOP/s, so its ratios are unsure; measure it again with more --rounds (the "
            "same --db tunes nothing again)"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", help="comma-separated workload names (default: all)")
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=3,
                    help="times each config and peer is measured, alternating (median)")
    ap.add_argument("--db", help="tuning database (default: a fresh file per run)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--tvm-trials", type=int, default=256,
                    help="MetaSchedule's max_trials_global (0: skip MetaSchedule)")
    ap.add_argument("--no-tvm", dest="tvm_trials", action="store_const", const=0,
                    help="skip MetaSchedule (same as --tvm-trials 0)")
    ap.add_argument("--tvm-work-dir",
                    help="MetaSchedule's logs and databases (default: in the run's temp dir)")
    ap.add_argument("--winograd", nargs="?", const="all", default="",
                    metavar="NAMES",
                    help="tune the 3x3 convolutions at stride 1 (or those of the "
                         "comma-separated workloads NAMES) with conv2d_nchw_winograd; "
                         "GFLOP/s are still the direct sum's FLOPs over the time")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--part", default="tilewise", help=argparse.SUPPRESS)
    ap.add_argument("--no-tune", dest="tune", action="store_false", help=argparse.SUPPRESS)
    ap.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    opts = ap.parse_args()
    known = [w["name"] for w in load_workloads()]
    names = opts.only.split(",") if opts.only else known
    unknown = sorted(set(names) - set(known))
    if unknown:
        sys.exit(f"unknown workload(s) {unknown}; have {known}")
    if opts.child is not None:
        print(json.dumps(child(names, opts.child, opts)))
        return
    tmp = Path(tempfile.mkdtemp(prefix="tw-compare-"))
    db = opts.db or str(tmp / "tuning.db")
    tvm_work_dir = opts.tvm_work_dir or str(tmp / "metaschedule")
    parts = PARTS if opts.tvm_trials > 0 else PARTS[:2]
    results, start = [], machine()

    def run_part(part: str, name: str, threads: int, r: int) -> dict:
        """Round ``r`` of one side, in a fresh child (round 0 tunes)."""
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), TVM_NUM_THREADS=str(threads))
        # tilewise's side uses BLAS only for the reference results: one thread, or
        # BLAS threads left spinning after them steal a core from the first timing.
        blas = "1" if part == "tilewise" else str(threads)
        env.update(OPENBLAS_NUM_THREADS=blas, MKL_NUM_THREADS=blas)
        out = subprocess.run(
            [sys.executable, __file__, "--only", name, "--child", str(threads),
             "--trials", str(opts.trials), "--repeat", str(opts.repeat),
             "--rounds", "1", "--db", db,
             "--tvm-trials", str(opts.tvm_trials), "--tvm-work-dir", tvm_work_dir,
             "--part", part, "--round", str(r), *([] if r == 0 else ["--no-tune"]),
             *(["--winograd", opts.winograd] if opts.winograd else [])],
            env=env, stdout=subprocess.PIPE, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    for t in opts.threads:
        rows, notes = [], set()
        for name in names:
            # Round by round, tilewise's configs then the peers, each in a fresh child
            # (the first tilewise round tunes; later ones only re-measure, even where
            # the space held fewer valid configs than --trials): a row's contenders are
            # timed minutes apart at most, and a slow spell of this shared machine
            # falls on all of them.
            merged: dict = {}
            for r in range(max(opts.rounds, 1)):
                for part in parts:
                    side = run_part(part, name, t, r)
                    notes.update(side["notes"])
                    for row in side["rows"]:
                        _merge_round(merged, row)
            if merged:
                rows.append(merged)
                notes.update(spread_notes(merged))
        notes_out = sorted(notes)
        if opts.tvm_trials <= 0:
            notes_out.append("TVM MetaSchedule: skipped (--tvm-trials 0 or --no-tvm)")
        results.append({"threads": t, "rows": rows, "notes": notes_out})
    print_table(results, opts.trials, opts.tvm_trials)
    if opts.json:
        opts.json.write_text(json.dumps(
            {"machine": start, "trials": opts.trials, "database": db,
             "tvm_trials": opts.tvm_trials, "tvm_work_dir": tvm_work_dir, "results": results},
            indent=2))


if __name__ == "__main__":
    main()
