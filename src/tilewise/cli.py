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
import warnings
from collections.abc import Sequence
from typing import Any

from .cli_args import (
    EXIT_TERMINATED,
    EXIT_USAGE,
    OneLineParser,
    Terminated,
    one_line,
    stop_on_sigterm,
)
from .cli_farm import add_farm_parser
from .cli_model import add_model_parser
from .cli_tune import add_tune_parser
from .errors import TilewiseError
from .target import EMULATED_NOTE, is_emulated

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
        emulated = is_emulated(key.target)
        gflops = flop / best.result.mean / 1e9 if flop and not emulated else None
        rows.append(
            {
                "task": key.to_json(),
                "seconds": best.result.mean,
                "emulated": emulated,
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
        ms = f"{r['seconds'] * 1e3:.3f}"
        if r["emulated"]:
            gf, ms = "emulated", "-"
        table.add_row(
            f"{t['name']}{tuple(t['args'])}",
            t["target"],
            gf,
            ms,
            str(r["records"]),
            r["dispatched_by"] or "-",
        )
    Console().print(table)
    if any(r["emulated"] for r in rows):
        print(f"emulated: checked against NumPy under an emulator; {EMULATED_NOTE}")
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
    add_tune_parser(sub)
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
