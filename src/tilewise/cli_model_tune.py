"""``tilewise model tune``: tune a whole model's kernels under one budget.

    tilewise model tune resnet50 --db tuning.db --threads 2 --time-budget 900
    tilewise model tune model.onnx --db tuning.db --trials 400 --scheduler round-robin
    tilewise model tune resnet18 --db gen.db --trials 400 --ignore-templates  # generated
    tilewise model bench resnet50 --db tuning.db --threads 2       # the tuned model

Killed and run again, it resumes every task from the database.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

from .cli_args import number, whole
from .cli_farm import add_farm_tune_options, close_measure, farm_measure_option, tune_target
from .errors import ModelError


def cmd_tune(opts: argparse.Namespace) -> int:
    from .cli_model import _onnx_model, _shapes, _target
    from .model_tune import tune_model

    if opts.time_budget is None and opts.trials is None:
        raise ModelError("give --time-budget SECONDS or --trials N")
    target = _target(opts) if opts.farm is None else _farm_target(opts)
    option = farm_measure_option(opts)  # None: measured here
    display = _Display(quiet=opts.json)
    finished = False
    try:
        with display:
            report = tune_model(_onnx_model(opts.model), opts.db, target,
                                budget_s=opts.time_budget, trials=opts.trials,
                                tuner=opts.tuner, scheduler=opts.scheduler,
                                transfer=not opts.no_transfer, seed=opts.seed,
                                input_shapes=_shapes(opts.input_shape),
                                confirm=not opts.no_confirm, measure=option,
                                progress=display.update,
                                templates=not opts.ignore_templates,
                                layouts=not opts.nchw)
        finished = True
    finally:
        if option is not None:
            close_measure(option, finished)
    if opts.json:
        print(json.dumps(report.to_json()))
        return 0
    print(_table(report))
    flight = f", up to {report.in_flight} tasks in flight" if report.in_flight > 1 else ""
    print(f"{report.trials} trials in {report.rounds} rounds{flight}, {report.seconds:.0f} s "
          f"(resumed {report.resumed} records, leaders re-measured "
          f"{report.confirmed}); kernels per run: untuned "
          f"{_fmt(report.untuned_s)} -> {_fmt(report.estimate_s)} ms")
    searched = report.measure_s + report.tuner_s
    if searched > 0:
        print(f"building and running candidates {report.measure_s:.0f} s, the tuners' own "
              f"work {report.tuner_s:.0f} s ({report.tuner_s / searched:.0%})")
    print(f"database: {report.database}; run it: tilewise model bench {opts.model} "
          f"--db {report.database}" + (f" --threads {opts.threads}" if opts.threads else "")
          + (" --ignore-templates" if opts.ignore_templates else "")
          + (" --nchw" if opts.nchw else ""))
    return 0


def _farm_target(opts: argparse.Namespace) -> str:
    """With ``--farm``: the target the farm's ``--device`` devices describe (their
    cores included)."""
    if opts.threads is not None:
        raise ModelError("with --farm the device describes its own cores; leave --threads out")
    return tune_target(opts)


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}" if math.isfinite(seconds) else "-"


def _table(report) -> str:
    rows = sorted(report.units, key=lambda u: -u.share)
    lines = [f"{'share':>6} {'best ms':>9} {'x runs':>6} {'trials':>6}  task"]
    for u in rows:
        lead = "" if u.leads else "  (behind its operator's other template)"
        lines.append(f"{100 * u.share:5.1f}% {_fmt(u.best_s):>9} {u.weight:6.0f} "
                     f"{u.trials:6d}  {u.task}{lead}")
    return "\n".join(lines)


class _Display:
    """The progress on stderr: a live table on a terminal, else a line every 10 s."""

    def __init__(self, quiet: bool) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.quiet = quiet
        self.live = None
        self.last = 0.0

    def __enter__(self) -> _Display:
        if not self.quiet and self.console.is_terminal:
            from rich.live import Live

            self.live = Live("", console=self.console, refresh_per_second=2)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def update(self, report, left: float | None) -> None:
        head = (f"tuning: {report.trials} trials, {report.rounds} rounds, "
                f"{report.seconds:.0f} s" + (f", {left:.0f} s left" if left is not None
                                            else "") +
                f"; kernels {_fmt(report.untuned_s)} -> "
                f"{_fmt(report.estimate_s)} ms per run")
        if self.live is not None:
            from rich.text import Text

            self.live.update(Text(head + "\n" + _table(report)))
        elif not self.quiet and time.monotonic() - self.last >= 10:
            self.last = time.monotonic()
            print(head, file=sys.stderr, flush=True)


def add_tune_parser(verbs) -> None:
    from .autotune.task_scheduler import STRATEGIES
    from .cli_model import model_arguments
    from .model_tune import TUNERS

    p = verbs.add_parser("tune", help="tune a model's kernels under one budget")
    model_arguments(p, "tuning database (default: per-user file)")
    p.add_argument("--time-budget", type=number(0, 10**7, above=True), default=None,
                   metavar="SECONDS",
                   help="wall time of this run")
    p.add_argument("--trials", type=whole(1, 10**6), default=None,
                   help="measurements of this run (whichever of the two ends first)")
    p.add_argument("--tuner", choices=TUNERS, default="model",
                   help="each task's tuner (default: the cost model)")
    p.add_argument("--scheduler", choices=STRATEGIES, default="gradient",
                   help="which task gets the next round (default: gradient)")
    p.add_argument("--no-transfer", action="store_true",
                   help="do not pre-train the cost model on the database's other records")
    p.add_argument("--no-confirm", action="store_true",
                   help="do not re-measure each task's leaders beside its fallback at "
                   "the end")
    p.add_argument("--seed", type=whole(0, 2**32 - 1), default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    add_farm_tune_options(p)
    # How the farm's devices time a candidate: as the model tuner does here.
    p.set_defaults(func=cmd_tune, number=1, repeat=3, min_repeat_ms=10.0, timeout=10.0)
