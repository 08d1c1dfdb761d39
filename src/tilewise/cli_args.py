"""The command's edge: argument types that refuse nonsense, a parser whose errors are
one line, SIGTERM turned into an orderly stop, and any failure into one line of text.

    >>> ap = OneLineParser(prog="tilewise")
    >>> _ = ap.add_argument("--trials", type=whole(1, 10**6))
"""

from __future__ import annotations

import argparse
import math
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

from .autotune.measure.lifeline import run_or_hold

#: Exit statuses: a bad command line or input, and a run ended by SIGTERM (128 + 15).
EXIT_USAGE = 2
EXIT_TERMINATED = 128 + signal.SIGTERM

#: The longest message printed; a database's damaged text can be kilobytes of binary.
_MAX_MESSAGE = 400


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a mistake reported as one line (``--help`` shows the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {one_line(message)} (see {self.prog} --help)\n")


def whole(least: int, most: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``least`` to ``most``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not least <= value <= most:
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {least} to {most}, got {text!r}")
        return value

    return parse


def number(least: float, most: float, above: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number from ``least`` (exclusive where ``above``) to
    ``most``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        low_ok = value > least if above else value >= least
        if not (math.isfinite(value) and low_ok and value <= most):
            low = f"above {least:g}" if above else f"from {least:g}"
            raise argparse.ArgumentTypeError(
                f"must be a number {low} to {most:g}, got {text!r}")
        return value

    return parse


def one_line(message: object) -> str:
    """``message`` as one printable line of reasonable length."""
    text = " ".join("".join(c if c.isprintable() else " " for c in str(message)).split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _terminate() -> None:
    raise Terminated


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that a run unwinds as on Ctrl-C: the
    measurement children and the build pool are ended, stored batches kept."""


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (once: a second SIGTERM
    ends the process at once)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; a caller's thread keeps its own
        return

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        run_or_hold(_terminate)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
