"""Static memory planning: every intermediate activation gets an offset in one arena.

A value lives from the step that writes it to the last step that reads it (both
included, so a kernel's output never shares bytes with its own inputs). Values are
placed largest first, each at the lowest cache-line offset that no value alive at the
same time occupies (the greedy by-size heuristic of TFLite's arena planner). The arena
is reported beside its lower bound, the largest total of simultaneously live values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

LINE = 64


@dataclass(frozen=True)
class MemoryPlan:
    offsets: Mapping[str, int]  # value -> byte offset in the arena
    arena_bytes: int
    peak_live_bytes: int  # the most bytes alive at once: no plan can use less


def _up(n: int) -> int:
    return -(-n // LINE) * LINE


def plan_memory(steps: Sequence[tuple[Sequence[str], Sequence[str]]],
                sizes: Mapping[str, int]) -> MemoryPlan:
    """Offsets for the values in ``sizes`` (bytes), given each step's (reads, writes)
    in run order; values not in ``sizes`` (inputs, outputs, constants) are ignored."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for t, (reads, writes) in enumerate(steps):
        for v in writes:
            if v in sizes:
                first.setdefault(v, t)
                last[v] = max(last.get(v, t), t)
        for v in reads:
            if v in sizes:
                first.setdefault(v, t)
                last[v] = t
    placed: list[tuple[int, int, int, int]] = []  # (start, end, offset, bytes)
    offsets: dict[str, int] = {}
    order = sorted(first, key=lambda v: (-sizes[v], first[v], v))
    for v in order:
        start, end, size = first[v], last[v], _up(sizes[v])
        busy = sorted((o, o + b) for s, e, o, b in placed if s <= end and start <= e)
        offset = 0
        for lo, hi in busy:
            if offset + size <= lo:
                break
            offset = max(offset, hi)
        offsets[v] = offset
        placed.append((start, end, offset, size))
    arena = max((o + b for _, _, o, b in placed), default=0)
    peak = 0
    for t in range(len(steps)):
        peak = max(peak, sum(_up(sizes[v]) for v in first if first[v] <= t <= last[v]))
    return MemoryPlan(offsets, arena, peak)
