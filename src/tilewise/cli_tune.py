"""``tilewise tune``: tune one operator's workload on this machine or on a farm's
devices, with a progress bar, into a tuning database.

    tilewise tune gemm M=512 N=512 K=512 --trials 64
    tilewise tune conv2d_nchw N=1 C=64 H=56 W=56 K=64 R=3 S=3 pad=1 --implementations

A target run under an emulator (``c -mtriple=aarch64-linux-gnu``, here or on a farm
device) is tuned for correctness: every config is checked against NumPy, and the
report gives no speed, since the times are the emulator's; nor are its leaders
re-measured unless ``--confirm N`` asks (ranking them by the emulator's times again
would confirm nothing about the device).
"""

from __future__ import annotations

import argparse
import json
import time

from .cli_args import number, whole
from .cli_farm import (
    add_farm_tune_options,
    close_measure,
    farm_measure_option,
    farm_report,
    tune_target,
)
from .target import EMULATED_NOTE, is_emulated

#: Leaders re-measured after the search, unless ``--confirm`` says otherwise; none for
#: an emulated target, whose times rank nothing on the device.
CONFIRM_TOP = 5


def add_tune_parser(sub) -> None:
    """The ``tune`` verb and its options, on the ``tilewise`` command's subparsers."""
    tune = sub.add_parser("tune", help="tune an operator on this machine")
    tune.add_argument("op", help="operator template, e.g. gemm (see 'tilewise ops')")
    tune.add_argument("args", nargs="*", metavar="ARG=VALUE", help="workload, e.g. M=512")
    tune.add_argument("--target", default="c", help="target string (default: c, the host)")
    tune.add_argument("--trials", type=whole(1, 10**6), default=64,
                      help="configs to measure (default 64)")
    tune.add_argument("--tuner", choices=["model", "random", "grid", "ga"], default="model")
    tune.add_argument(
        "--feature",
        choices=["ir", "knob"],
        default="ir",
        help="cost-model features of the model tuner (default: loop IR)",
    )
    tune.add_argument("--db", help="tuning database (default: per-user file)")
    tune.add_argument("--seed", type=whole(0, 2**31 - 1), default=0)
    # One run per repeat, raised until the repeat lasts 10 ms: a fast kernel is still
    # averaged over several calls (gemm-512: 5 on one core, 8 on two; it was a fixed 4),
    # while a slow config or a large operator is not run over and over (gemm-2048 on
    # one core, compare.py's tuning at 20 ms: 2.45 -> 1.37 s a measurement).
    tune.add_argument("--number", type=whole(1, 10**6), default=1,
                      help="runs per timing repeat, at least (default 1)")
    tune.add_argument("--repeat", type=whole(1, 10**4), default=3,
                      help="timing repeats (default 3)")
    tune.add_argument("--min-repeat-ms", type=number(0, 60_000), default=10.0,
                      help="runs per repeat raised until a repeat lasts this long (default 10)")
    tune.add_argument("--timeout", type=number(0, 86_400, above=True), default=10.0,
                      help="seconds per build or run")
    tune.add_argument("--early-stopping", type=whole(1, 10**6), default=None)
    tune.add_argument(
        "--confirm",
        type=whole(0, 1000),
        default=None,
        metavar="N",
        help=f"re-measure the N leading configs three times more after the search and rank "
        f"them by their median (default {CONFIRM_TOP}, or 0 for a target run under an "
        "emulator, whose times are not the device's; 0 to skip)",
    )
    tune.add_argument(
        "--implementations",
        action="store_true",
        help="also tune every template implementing the operator for these arguments "
        "(conv2d_nchw: the Winograd template), --trials each, and say which dispatch picks",
    )
    tune.add_argument("--json", action="store_true",
                      help="print one JSON object at the end (one per tuned template)")
    add_farm_tune_options(tune)
    tune.set_defaults(func=cmd_tune)


def _progress(total: int, quiet: bool, label: str = "tuning", emulated: bool = False):
    """A Rich progress bar on stderr and the callback that advances it (without the
    best speed where the times are an emulator's)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    progress = Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(EMULATED_NOTE if emulated else "best {task.fields[best]:.1f} GFLOP/s"),
        TextColumn("errors {task.fields[errors]}"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet or not console.is_terminal,
    )
    bar = progress.add_task("tune", total=total, best=0.0, errors=0)
    state = {"errors": 0}

    def callback(tuner, inputs, results) -> None:
        trials = [r for r in results if not r.rejected]
        state["errors"] += sum(not r.ok for r in trials)
        best = (tuner.task.flop or 0) / tuner.best_cost / 1e9 if tuner.best_config else 0.0
        progress.update(bar, advance=len(trials), best=best, errors=state["errors"])

    return progress, callback


def cmd_tune(opts: argparse.Namespace) -> int:
    from . import autotune as at
    from .autotune.measure.workload import check_measurable
    from .cli import _database, parse_op_args

    args = parse_op_args(opts.op, opts.args)
    task = at.Task(opts.op, args, tune_target(opts))
    tasks = task.implementations() if opts.implementations else [task]
    if getattr(opts, "farm", None) is None:  # a farm's devices answer for themselves
        for t in tasks:
            check_measurable(t)
    db = _database(opts.db)
    tuned = [_tune(t, opts, db) for t in tasks]
    if opts.implementations:
        chosen, _ = at.apply_history_best(db).choose(task)
        for t, report, _ in tuned:
            report["dispatched"] = t == chosen
    for t, report, best in tuned:
        if opts.json:
            print(json.dumps(report))
            continue
        gf = report["best_gflops"]
        if report["emulated"]:
            outcome = (f"every config checked against NumPy under emulation; {EMULATED_NOTE}"
                       if best is not None else "no valid config")
        else:
            outcome = "best " + (f"{gf:.1f} GFLOP/s" if gf is not None else "no valid config")
        confirmed = (f"leaders re-measured {report['confirmed']}"
                     if report["confirm"] or not report["emulated"]
                     else "leaders not re-measured under emulation")
        print(
            f"{t}: measured {report['trials']} (resumed {report['resumed']}, "
            f"errors {report['errors']}, rejected by the template {report['rejected']}, "
            f"{confirmed}) in {report['seconds']} s; {outcome}"
        )
        if best is not None:
            fastest = " (fastest under emulation, not on the device)" if report["emulated"] else ""
            print(f"best config{fastest}: {best.config}")
        print(f"database: {db.path} ({report['records_in_db']} records for this task)")
    if opts.implementations and not opts.json:
        print(f"dispatch of {opts.op} picks {chosen.name}")
    return 0


def _tune(task, opts: argparse.Namespace, db):
    """Tune ``task`` into ``db`` as ``opts`` say: ``(task, report, best record)``."""
    from . import autotune as at

    tuners = {
        "model": lambda: at.ModelTuner(task, seed=opts.seed, feature=opts.feature),
        "random": lambda: at.RandomTuner(task, seed=opts.seed),
        "grid": lambda: at.GridSearchTuner(task, seed=opts.seed),
        "ga": lambda: at.GATuner(task, seed=opts.seed),
    }
    tuner = tuners[opts.tuner]()
    option = farm_measure_option(opts) or at.measure_option(
        builder=at.LocalBuilder(timeout=opts.timeout),
        runner=at.LocalRunner(
            number=opts.number,
            repeat=opts.repeat,
            timeout=opts.timeout,
            min_repeat_ms=opts.min_repeat_ms,
        ),
    )
    emulated = is_emulated(task.target)
    confirm = opts.confirm if opts.confirm is not None else 0 if emulated else CONFIRM_TOP
    progress, callback = _progress(opts.trials, opts.json, task.name, emulated)
    start = time.perf_counter()
    finished = False
    try:
        with progress:
            summary = tuner.tune(
                opts.trials,
                option,
                callbacks=[callback],
                database=db,
                early_stopping=opts.early_stopping,
                confirm=confirm,
            )
        finished = True
    finally:
        close_measure(option, finished)
    best = db.best(task)
    flop = task.flop or 0.0
    report = {
        "task": task.key.to_json(),
        "trials": summary.measured,
        "resumed": summary.resumed,
        "errors": summary.errors,
        "rejected": summary.rejected,
        "confirm": confirm,  # leaders asked to be re-measured
        "confirmed": summary.confirmed,
        "best_gflops": (flop / best.result.mean / 1e9
                        if best is not None and flop and not emulated else None),
        # the times are the emulator's: the report names no speed, the records keep them
        "emulated": emulated,
        "best_config": best.config.to_json() if best is not None else None,
        "records_in_db": len(db.records(task)),
        "database": str(db.path),
        "seconds": round(time.perf_counter() - start, 2),
        **farm_report(option),
    }
    return task, report, best
