"""Simulated annealing over a config space, scored by a cost model: parallel chains that
step to a neighbouring config (one knob changed), keeping the top-k configs seen.

Example::

    top = anneal(space, score, num=32, exclude=visited, rng=rng)
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from tilewise.autotune.space import ConfigSpace

#: Scores configs (by index); higher is better.
ScoreFunction = Callable[[Sequence[int]], np.ndarray]


@dataclass(frozen=True)
class AnnealingOptions:
    """``parallel_size`` chains for up to ``n_iter`` steps; the temperature falls linearly
    from ``temp_start`` to ``temp_end``; stop after ``early_stop`` steps without a new
    top-k entry."""

    n_iter: int = 200
    parallel_size: int = 128
    temp_start: float = 1.0
    temp_end: float = 0.0
    early_stop: int = 50


def anneal(
    space: ConfigSpace,
    score: ScoreFunction,
    num: int,
    exclude: Collection[int],
    rng: np.random.Generator,
    options: AnnealingOptions = AnnealingOptions(),
    init: Sequence[int] = (),
    deadline: float | None = None,
) -> list[int]:
    """The ``num`` best-scoring configs found, best first, none in ``exclude``; with
    ``deadline`` (a ``time.perf_counter()`` reading), no step starts that would end
    after it, were it to take as long as the step before."""
    n_chains = min(options.parallel_size, space.size)
    points = list(dict.fromkeys(int(i) for i in init))[:n_chains]
    points += space.sample(n_chains - len(points), rng, exclude=points)
    scores = np.asarray(score(points), dtype=np.float64)

    heap: list[tuple[float, int]] = []  # min-heap of the top ``num`` (score, index)
    in_heap: set[int] = set()

    def offer(index: int, value: float) -> bool:
        if index in exclude or index in in_heap:
            return False
        if len(heap) < num:
            heapq.heappush(heap, (value, index))
        elif value > heap[0][0]:
            _, dropped = heapq.heapreplace(heap, (value, index))
            in_heap.discard(dropped)
        else:
            return False
        in_heap.add(index)
        return True

    for p, v in zip(points, scores, strict=True):
        offer(p, float(v))

    temps = np.linspace(options.temp_start, options.temp_end, max(options.n_iter, 1))
    quiet = 0
    step_s = 0.0  # the last step's seconds: the next one is expected to take as long
    for temp in temps:
        if quiet >= options.early_stop:
            break
        began = time.perf_counter()
        if deadline is not None and began + step_s > deadline:
            break
        proposals = space.random_neighbours(points, rng)
        new_scores = np.asarray(score(proposals), dtype=np.float64)
        improved = False
        for q, v in zip(proposals, new_scores, strict=True):
            improved |= offer(q, float(v))
        quiet = 0 if improved else quiet + 1
        gain = np.minimum(0.0, new_scores - scores) / (temp + 1e-5)
        accept = rng.random(len(points)) < np.exp(gain)
        points = [q if a else p for p, q, a in zip(points, proposals, accept, strict=True)]
        scores = np.where(accept, new_scores, scores)
        step_s = time.perf_counter() - began

    return [index for _, index in sorted(heap, key=lambda t: (-t[0], t[1]))]
