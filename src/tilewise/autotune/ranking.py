"""How a task's readings name its best config; the tuner and the database share it.

A config read more than once is judged by the upper median of its latest ``RECENT``
readings: the rounds of the last confirming pass it took part in, which the leader
and the fallback share (:meth:`~tilewise.autotune.tuners.base.Tuner.confirm`). On a
shared machine whose speed moves for minutes at a time, readings pooled over a whole
run compare configs across spells: gemm-1024 on one Xeon core, the fallback read
87-105 GFLOP/s in two slow passes and a config read 113-121 in a fast third, and that
config, handed back, ran at 0.83x the fallback. Once any config has been read more
than once, only re-measured configs can lead: the best single reading out of hundreds
on a noisy machine is more often luck than speed.

>>> leader({"a": [2.0, 3.0, 3.0], "b": [2.5], "c": [2.9, 2.7]})
'c'
>>> leader({"b": [2.5], "a": [2.6]})
'b'
>>> leader({"slow spell, then fast": [3.0, 3.0, 3.0, 2.0, 2.0, 2.0], "fast": [2.1, 2.1, 2.1]})
'slow spell, then fast'
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)


def upper_median(values: Sequence[Any]) -> Any:
    """The middle value, the larger of the two middle ones for an even count: one of
    the values, and never the lucky half of a pair of readings."""
    return sorted(values)[len(values) // 2]


#: Readings that judge a re-measured config: the rounds of one confirming pass (as
#: many as Tuner.confirm reads by default).
RECENT = 3


def standing(values: Sequence[Any]) -> Any:
    """What a config's readings (oldest first) say of it: the upper median of the latest
    ``RECENT`` (a single reading: itself)."""
    return upper_median(values[-RECENT:])


def leader(readings: Mapping[K, Sequence[Any]]) -> K | None:
    """The key of ``readings`` (config -> its readings oldest first, lower is faster)
    that leads: the lowest :func:`standing` among the configs read more than once, or
    among all of them when none was; ties go to the lower key. None when there are
    none."""
    confirmed = [k for k, values in readings.items() if len(values) > 1]
    pool = confirmed or list(readings)
    if not pool:
        return None
    return min(pool, key=lambda k: (standing(readings[k]), k))
