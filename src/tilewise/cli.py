"""The ``tilewise`` command: tune operators, inspect and exchange tuning records.

    tilewise tune gemm M=512 N=512 K=512 --trials 64
    tilewise best --json
    tilewise ops
    tilewise export --db tuning.db records.jsonl
    tilewise plot --db tuning.db -o curves.png
    tilewise model compile resnet18 -o resnet18.tw
    tilewise model bench resnet18 --threads 2

Every command is a thin layer over the Python API (``tilewise.autotune``); bad
arguments print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sqlite3
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

from .cli_args import (
    EXIT_TERMINATED,
    EXIT_USAGE,
    OneLineParser,
    Terminated,
    number,
    one_line,
    stop_on_sigterm,
    whole,
)
from .cli_farm import (
    add_farm_parser,
    add_farm_tune_options,
    close_farm,
    farm_measure_option,
    farm_report,
    tune_target,
)
from .cli_model import add_model_parser
from .errors import TilewiseError

#: The largest shape or count an operator argument may take: kernels index in 32 bits.
_MAX_ARG = 2**31 - 1


class UsageError(TilewiseError):
    """A bad command line: reported in one line, exit status 2."""


def _templates():
    from . import ops  # noqa: F401 - registers the operator templates
    from .autotune import list_templates

    return {t.name: t for t in list_templates()}


def _template_params(func) -> list[inspect.Parameter]:
    return list(inspect.signature(func).parameters.values())[1:]  # drop cfg


def parse_op_args(name: str, pairs: Sequence[str]) -> tuple[Any, ...]:
    """``["M=512", "N=512"]`` -> positional args of template ``name``, typed by its
    signature (ints for shapes, strings for dtypes)."""
    templates = _templates()
    if name not in templates:
        raise UsageError(f"unknown operator {name!r}; known: {', '.join(sorted(templates))}")
    params = _template_params(templates[name].func)
    given: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"argument {pair!r} must look like NAME=VALUE")
        if key not in {p.name for p in params}:
            names = " ".join(p.name for p in params)
            raise UsageError(f"{name} has no argument {key!r}; it takes: {names}")
        given[key] = value
    args = []
    for p in params:
        if p.name not in given:
            if p.default is inspect.Parameter.empty:
                raise UsageError(f"{name} needs {p.name}=VALUE")
            args.append(p.default)
            continue
        wants_int = p.annotation in (int, "int") or (
            isinstance(p.default, int) and not isinstance(p.default, bool)
        )
        wants_float = p.annotation in (float, "float") or isinstance(p.default, float)
        value = given[p.name]
        if wants_float:
            try:
                args.append(float(value))
            except ValueError:
                raise UsageError(f"{p.name} must be a number, got {value!r}") from None
        elif wants_int:
            try:
                number = int(value)
            except ValueError:
                raise UsageError(f"{p.name} must be an integer, got {value!r}") from None
            # Shapes and strides are positive; a padding (its default 0) may be 0.
            if number < 0 or (number == 0 and p.default != 0):
                least = "at least 0" if p.default == 0 else "positive"
                raise UsageError(f"{p.name} must be {least}, got {number}")
            if number > _MAX_ARG:
                raise UsageError(f"{p.name} must be at most {_MAX_ARG}, got {number}")
            args.append(number)
        elif p.name == "dtype":
            from .ir.dtype import as_dtype

            args.append(as_dtype(value).name)  # an unknown name raises, listing the known
        else:
            args.append(value)
    return tuple(args)


def _database(path: str | None, create: bool = True):
    """The database at ``path`` (None: the per-user default); a command that only reads
    refuses a path that holds none rather than make an empty one there."""
    from pathlib import Path

    from .autotune import Database

    if not create and path is not None and not Path(path).exists():
        raise UsageError(f"no tuning database at {path}")
    return Database(path)


def _progress(total: int, quiet: bool, label: str = "tuning"):
    """A Rich progress bar on stderr and the callback that advances it."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    progress = Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("best {task.fields[best]:.1f} GFLOP/s"),
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
        print(
            f"{t}: measured {report['trials']} (resumed {report['resumed']}, "
            f"errors {report['errors']}, rejected by the template {report['rejected']}, "
            f"twins of measured kernels skipped {report['twins']}, "
            f"leaders re-measured {report['confirmed']}) "
            f"in {report['seconds']} s; best "
            + (f"{gf:.1f} GFLOP/s" if gf is not None else "no valid config")
        )
        if best is not None:
            print(f"best config: {best.config}")
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
    progress, callback = _progress(opts.trials, opts.json, task.name)
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
                confirm=opts.confirm,
            )
        finished = True
    finally:
        # Interrupted, the builds under way are abandoned: their workers end now rather
        # than keep the command from exiting.
        option.builder.close(wait=finished)
        close_farm(option)
    best = db.best(task)
    flop = task.flop or 0.0
    report = {
        "task": task.key.to_json(),
        "trials": summary.measured,
        "resumed": summary.resumed,
        "errors": summary.errors,
        "rejected": summary.rejected,
        "twins": summary.twins,
        "confirmed": summary.confirmed,
        "best_gflops": flop / best.result.mean / 1e9 if best is not None and flop else None,
        "best_config": best.config.to_json() if best is not None else None,
        "records_in_db": len(db.records(task)),
        "database": str(db.path),
        "seconds": round(time.perf_counter() - start, 2),
        **farm_report(option),
    }
    return task, report, best


def cmd_best(opts: argparse.Namespace) -> int:
    from .autotune import Task, apply_history_best

    templates = _templates()
    db = _database(opts.db, create=False)
    context = apply_history_best(db)
    rows = []
    for key in db.tasks():
        best = db.best(key)
        if best is None:
            continue
        try:
            task = Task.from_key(key)
            flop = task.flop or 0.0
        except TilewiseError:
            task, flop = None, 0.0
        gflops = flop / best.result.mean / 1e9 if flop else None
        rows.append(
            {
                "task": key.to_json(),
                "seconds": best.result.mean,
                "gflops": gflops,
                "config": best.config.to_json(),
                "records": len(db.records(key)),
                "dispatched_by": _dispatched_by(task, templates, context),
            }
        )
    if opts.json:
        print(json.dumps(rows))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"best records in {db.path}")
    for col in ("task", "target", "GFLOP/s", "ms", "records", "dispatched by"):
        table.add_column(col, justify="right" if col in ("GFLOP/s", "ms", "records") else "left")
    for r in rows:
        t = r["task"]
        gf = f"{r['gflops']:.1f}" if r["gflops"] else "-"
        table.add_row(
            f"{t['name']}{tuple(t['args'])}",
            t["target"],
            gf,
            f"{r['seconds'] * 1e3:.3f}",
            str(r["records"]),
            r["dispatched_by"] or "-",
        )
    Console().print(table)
    return 0


def _dispatched_by(task, templates, context) -> str | None:
    """The operator whose dispatch runs ``task``'s best record: its own template's, or
    the one it implements (where it ran faster than the others); None where dispatch
    runs another implementation, or the template is not registered here."""
    from .autotune import Task

    if task is None or task.name not in templates:
        return None
    op = templates[task.name].implements or task.name
    try:
        with warnings.catch_warnings():  # a template without records is not chosen anyway
            warnings.simplefilter("ignore")
            chosen, _ = context.choose(Task(op, task.args, task.target))
    except TilewiseError:
        return None
    return op if chosen == task else None


def cmd_ops(opts: argparse.Namespace) -> int:
    templates = _templates()
    for name in sorted(templates):
        params = _template_params(templates[name].func)
        sig = " ".join(
            p.name if p.default is inspect.Parameter.empty else f"[{p.name}={p.default}]"
            for p in params
        )
        doc = (inspect.getdoc(templates[name].func) or "").splitlines()
        also = templates[name].implements
        print(f"{name:20s} {sig}" + (f"    {doc[0]}" if doc else "")
              + (f" (implements {also})" if also else ""))
    return 0


def cmd_export(opts: argparse.Namespace) -> int:
    db = _database(opts.db, create=False)
    try:
        n = db.export_jsonl(opts.file)
    except OSError as exc:
        raise UsageError(f"cannot write {opts.file}: {exc.strerror or exc}") from None
    print(f"exported {n} records to {opts.file}")
    return 0


def cmd_import(opts: argparse.Namespace) -> int:
    db = _database(opts.db)
    try:
        n = db.import_jsonl(opts.file)
    except OSError as exc:
        raise UsageError(f"cannot read {opts.file}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError) as exc:  # not JSON, or JSON of something else
        raise UsageError(f"{opts.file} is not JSON Lines of tuning records "
                         f"({type(exc).__name__}: {exc}); nothing was imported") from None
    print(f"imported {n} records from {opts.file}")
    return 0


def cmd_plot(opts: argparse.Namespace) -> int:
    from .autotune.plot import plot_tuning_curves

    _templates()
    n = plot_tuning_curves(_database(opts.db, create=False), opts.output)
    print(f"wrote {opts.output} ({n} curves)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = OneLineParser(prog="tilewise", description="Auto-tune tensor operators.")
    sub = ap.add_subparsers(dest="command", required=True)
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
        default=5,
        metavar="N",
        help="re-measure the N leading configs three times more after the search and rank "
        "them by their median (default 5; 0 to skip)",
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
    best = sub.add_parser("best", help="best record per task")
    best.add_argument("--db")
    best.add_argument("--json", action="store_true")
    best.set_defaults(func=cmd_best)
    sub.add_parser("ops", help="the registered operator templates").set_defaults(func=cmd_ops)
    for name, func, verb in (("export", cmd_export, "write"), ("import", cmd_import, "read")):
        p = sub.add_parser(name, help=f"{verb} records as JSON Lines")
        p.add_argument("--db")
        p.add_argument("file")
        p.set_defaults(func=func)
    plot = sub.add_parser("plot", help="best-so-far GFLOP/s against trials (needs matplotlib)")
    plot.add_argument("--db")
    plot.add_argument("-o", "--output", default="curves.png")
    plot.set_defaults(func=cmd_plot)
    add_model_parser(sub)
    add_farm_parser(sub)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        opts = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line error (or the help)
        return int(exc.code or 0)
    try:
        with stop_on_sigterm():
            return int(opts.func(opts))
    except TilewiseError as exc:
        return _fail(exc)
    except sqlite3.Error as exc:  # the database failed under a command: locked, damaged
        return _fail(f"the tuning database {_database_path(opts)} failed: {exc}")
    except OSError as exc:  # a file, a pipe or the disk
        where = f" ({exc.filename})" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}")
    except MemoryError:
        return _fail("out of memory")
    except KeyboardInterrupt:
        print("tilewise: interrupted; finished measurements are in the database", file=sys.stderr)
        return 130
    except Terminated:
        print("tilewise: terminated; finished measurements are in the database", file=sys.stderr)
        return EXIT_TERMINATED


def _database_path(opts: argparse.Namespace) -> str:
    from .autotune.database import default_database_path

    return str(getattr(opts, "db", None) or default_database_path())


def _fail(problem: object) -> int:
    print(f"tilewise: {one_line(problem)}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
