"""Children that end with their tuner: a build worker or a measuring child whose tuner
died (SIGKILL, a crash) exits at once, instead of living on with its memory and the
tuner's stderr, which a caller waiting on that output would wait on forever. And a
tuner stopped by a signal stops between child starts, never inside one.

>>> import os
>>> end_with(os.getpid())  # in a child: exit when process ``pid`` ends
"""

from __future__ import annotations

import os
import select
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Seconds between two checks where the kernel offers no pidfd to wait on.
_POLL_S = 0.5


def end_with(pid: int) -> None:
    """Tie this child to process ``pid``, its tuner: exit as soon as ``pid`` ends, and
    leave SIGINT and SIGTERM to it. A signal to the whole process group (Ctrl-C, or
    ``timeout``'s SIGTERM) then stops the tuner in order and the tuner ends its
    children, instead of each child printing its own traceback and breaking its pool
    in the middle of a call.

    The children are forked by the forkserver, not by the tuner, so the kernel's
    parent-death signal (``PR_SET_PDEATHSIG``) and ``os.getppid()`` watch the wrong
    process: a daemon thread waits on the tuner's own pid instead.
    """
    if pid == os.getpid():
        return
    for stop in (signal.SIGINT, signal.SIGTERM):
        # A handler, not SIG_IGN: the compiler a worker runs must still die of them.
        signal.signal(stop, _leave_to_the_tuner)
    threading.Thread(target=_watch, args=(pid,), name="tilewise-lifeline", daemon=True).start()


def _leave_to_the_tuner(signum: int, frame: object) -> None:
    pass


def _watch(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(1)  # the tuner is gone already
    except (AttributeError, OSError):  # no pidfd here (not Linux, or a kernel before 5.3)
        while _alive(pid):
            threading.Event().wait(_POLL_S)
        os._exit(1)
    waiter = select.poll()
    waiter.register(fd, select.POLLIN)  # readable once the process has ended
    waiter.poll()
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, only not ours to signal
        return True
    return True


class _Hold:
    depth = 0
    pending: Callable[[], None] | None = None


@contextmanager
def holding_signals() -> Iterator[None]:
    """Within the block, an action handed to :func:`run_or_hold` waits for its end.

    Starting a child streams it to the forkserver; a stop raised in the middle leaves
    a half-sent child that dies with a traceback on the tuner's stderr. Only the main
    thread holds: signal handlers run there, and nowhere else."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _Hold.depth += 1
    try:
        yield
    finally:
        _Hold.depth -= 1
        if _Hold.depth == 0 and _Hold.pending is not None:
            action, _Hold.pending = _Hold.pending, None
            action()


def run_or_hold(action: Callable[[], None]) -> None:
    """Run ``action`` (a signal handler's, which may raise) now, or at the end of the
    current :func:`holding_signals` block."""
    if _Hold.depth:
        _Hold.pending = action
    else:
        action()
