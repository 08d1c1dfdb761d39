"""Run one function in a fresh child process with a time limit, so that a crash or a
hang of native code becomes a value instead of a dead tuner.

>>> run_isolated(abs, (-3,), timeout=30).value
3
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from tilewise.autotune.measure.lifeline import end_with, holding_signals

# Fork a clean, single-threaded server instead of the tuner (which may hold OpenMP and
# LightGBM threads). Preloading NumPy and the measuring code keeps each child's start
# cheap: importing tilewise in every child cost ~0.1 s per measurement, a tenth of a
# 200-trial run's time.
_PRELOAD = ["numpy", "tilewise.autotune.measure.runner"]


class Outcome(Enum):
    RETURNED = "returned"
    RAISED = "raised"
    CRASHED = "crashed"
    TIMED_OUT = "timed_out"


@dataclass(frozen=True)
class IsolatedResult:
    outcome: Outcome
    value: Any = None
    message: str = ""


def process_context() -> multiprocessing.context.BaseContext:
    """The multiprocessing context for every measurement child."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def _child(
    conn: multiprocessing.connection.Connection, fn: Callable[..., Any], args: tuple,
    tuner: int,
) -> None:
    end_with(tuner)  # a hung kernel must not outlive a killed tuner
    try:
        value = fn(*args)
    except BaseException as err:  # report everything; the parent classifies it
        conn.send((False, f"{type(err).__name__}: {err}"))
    else:
        conn.send((True, value))
    conn.close()


def run_isolated(fn: Callable[..., Any], args: tuple, timeout: float) -> IsolatedResult:
    """``fn(*args)`` in a child process; ``fn`` and ``args`` must be picklable."""
    ctx = process_context()
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args, os.getpid()), daemon=True)
    try:
        with holding_signals():
            proc.start()
        send.close()
        if recv.poll(timeout):
            try:
                ok, payload = recv.recv()
            except EOFError:  # died before sending: a crash
                proc.join()
                return IsolatedResult(Outcome.CRASHED, message=_exit_message(proc.exitcode))
            proc.join(timeout=5)
            if ok:
                return IsolatedResult(Outcome.RETURNED, value=payload)
            return IsolatedResult(Outcome.RAISED, message=payload)
        proc.kill()
        proc.join()
        return IsolatedResult(Outcome.TIMED_OUT, message=f"no result within {timeout:g} s")
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
        send.close()
        recv.close()


def _exit_message(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code} before reporting a result"
