"""How a task's readings name its best config; the tuner and the database share it.

A config is judged by the upper median of its readings. Once any config has been read
more than once (the leaders are re-measured after a search), only re-measured configs
can lead: the best single reading out of hundreds on a noisy machine is more often
luck than speed, and a leader's median, re-measured, loses to it.

>>> leader({"a": [2.0, 3.0, 3.0], "b": [2.5], "c": [2.9, 2.7]})
'c'
>>> leader({"b": [2.5], "a": [2.6]})
'b'
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)


def upper_median(values: Sequence[Any]) -> Any:
    """The middle value, the larger of the two middle ones for an even count: one of
    the values, and never the lucky half of a pair of readings."""
    return sorted(values)[len(values) // 2]


def leader(readings: Mapping[K, Sequence[Any]]) -> K | None:
    """The key of ``readings`` (config -> its readings, lower is faster) that leads:
    the lowest upper median among the configs read more than once, or among all of
    them when none was; ties go to the lower key. None when there are none."""
    confirmed = [k for k, values in readings.items() if len(values) > 1]
    pool = confirmed or list(readings)
    if not pool:
        return None
    return min(pool, key=lambda k: (upper_median(readings[k]), k))
