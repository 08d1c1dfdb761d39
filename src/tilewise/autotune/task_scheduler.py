"""Which task of a network to tune next: the allocation of one budget across its kernels.

A network's latency is ``sum over its operators of weight x latency`` (weight: how many
times the operator runs), where an operator's latency is the best of the templates that
implement it (a 3x3 convolution: direct or Winograd). Each *unit* is one template's task
of one operator; the scheduler hands out rounds of trials to units.

``round-robin`` cycles through the units (AutoTVM's way: each task in turn). ``gradient``
(Ansor's task scheduler) first gives every unit one round, then the round goes to the
unit whose next trials are expected to cut the network's latency most per trial:

    gradient = alpha * backward + (1 - alpha) * forward
    backward = w * (drop of the operator's latency over the unit's last round) / its trials
    forward  = w * (the operator's latency) / (the unit's trials so far) / (1 + stale)

``backward`` is what the last round bought; ``forward`` the optimistic guess that the
unit's latency falls by as much again as its average trial bought (Ansor's ``-g/t``),
shrunk by the rounds in a row that found nothing faster (``stale``). The budget is wall
time, and a trial of a large convolution builds and runs several times longer than one
of a small kernel: the gradient is divided by the unit's seconds per trial (its rounds'
wall time over its trials; the units' mean where it has none yet). A unit behind
another template of its operator counts only what it could win below that one. With
probability ``eps`` a random unit gets the round (exploration).
A unit whose space is exhausted gets none, nor one whose round is still being measured
(a farm measures several units' rounds at once). The arithmetic is pure: the driver
(``tilewise.model_tune``) measures and reports back with :meth:`TaskScheduler.record`.

>>> s = TaskScheduler([Unit("a", group=0, weight=2), Unit("b", group=1, weight=1)])
>>> s.record(s.pick(), trials=8, best=1.0)
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from tilewise.errors import TuningError

STRATEGIES = ("gradient", "round-robin")


@dataclass
class Unit:
    """One template's task of one operator (``group``), run ``weight`` times a pass.

    ``history``: (trials so far, best seconds) after each round; ``exhausted``: its
    space has nothing left to measure; ``seconds``: the wall time of its rounds, and
    ``timed``: the trials they measured."""

    name: str
    group: int
    weight: float = 1.0
    trials: int = 0
    best: float = math.inf
    history: list[tuple[int, float]] = field(default_factory=list)
    exhausted: bool = False
    seconds: float = 0.0
    timed: int = 0

    @property
    def trial_s(self) -> float:
        """Seconds per timed trial (0 before any)."""
        return self.seconds / self.timed if self.timed else 0.0


class TaskScheduler:
    """Hands out rounds of trials to ``units`` by ``strategy`` (see the module)."""

    def __init__(self, units: Sequence[Unit], strategy: str = "gradient", alpha: float = 0.2,
                 eps: float = 0.05, seed: int = 0) -> None:
        if strategy not in STRATEGIES:
            raise TuningError(f"unknown scheduler {strategy!r}; choose one of "
                              f"{', '.join(STRATEGIES)}")
        if not units:
            raise TuningError("no tasks to schedule")
        if not 0 <= alpha <= 1 or not 0 <= eps <= 1:
            raise TuningError("alpha and eps must lie in [0, 1]")
        self.units = list(units)
        self.strategy = strategy
        self.alpha, self.eps = alpha, eps
        self.rng = np.random.default_rng(seed)
        self._next = 0  # round-robin's position

    # -- the network's latency ----------------------------------------------------------
    def group_best(self, group: int) -> float:
        return min((u.best for u in self.units if u.group == group), default=math.inf)

    def estimate(self) -> float:
        """The network's latency from the best measured of each operator (inf while an
        operator has none)."""
        weights = {u.group: u.weight for u in self.units}
        return sum(w * self.group_best(g) for g, w in weights.items())

    def share(self, unit: Unit) -> float:
        """The unit's operator's share of the estimated latency, if it leads it."""
        total = self.estimate()
        if not math.isfinite(total) or total <= 0 or unit.best > self.group_best(unit.group):
            return 0.0
        return unit.weight * unit.best / total

    # -- allocation ------------------------------------------------------------------
    def pick(self, busy: Collection[Unit] = ()) -> Unit | None:
        """The unit that gets the next round; None when every space is exhausted or
        every other unit is ``busy`` (its round still in flight, so what it bought is not
        known yet: a driver with several rounds in flight asks again as one lands)."""
        busy_ids = {id(u) for u in busy}
        live = [u for u in self.units if not u.exhausted and id(u) not in busy_ids]
        if not live:
            return None
        fresh = [u for u in live if not u.history]
        if fresh:  # every unit is measured once before any is preferred
            return fresh[0]
        if self.strategy == "round-robin":
            for _ in range(len(self.units)):
                unit = self.units[self._next % len(self.units)]
                self._next += 1
                if not unit.exhausted and id(unit) not in busy_ids:
                    return unit
        if self.eps and self.rng.random() < self.eps:
            return live[int(self.rng.integers(len(live)))]
        each = self._mean_trial_s()
        # the steepest descent per second of tuning is the most negative
        return min(live, key=lambda u: self.gradient(u) / (u.trial_s or each))

    def _mean_trial_s(self) -> float:
        """Seconds per trial over the units' timed rounds (1 before any)."""
        timed = sum(u.timed for u in self.units)
        return sum(u.seconds for u in self.units) / timed if timed else 1.0

    def gradient(self, unit: Unit) -> float:
        """d(network latency) / d(trials of ``unit``), estimated (negative: it falls)."""
        rival = min((u.best for u in self.units if u.group == unit.group and u is not unit),
                    default=math.inf)
        if not math.isfinite(min(unit.best, rival)):  # nothing of the operator runs yet
            return -math.inf
        trials = max(unit.trials, 1)
        # Optimistic: the next trial buys as much as the average one did from nothing
        # (latency / trials); the operator gains only what gets below its other template.
        hoped = unit.best * (1 - 1 / trials) if math.isfinite(unit.best) else rival
        forward = -unit.weight * max(0.0, min(unit.best, rival) - min(hoped, rival))
        forward /= 1 + _stale_rounds(unit.history)
        backward = 0.0
        if len(unit.history) >= 2:
            (t0, b0), (t1, b1) = unit.history[-2], unit.history[-1]
            if t1 > t0 and math.isfinite(b0):
                backward = -unit.weight * (min(b0, rival) - min(b1, rival)) / (t1 - t0)
        return self.alpha * backward + (1 - self.alpha) * forward

    def record(self, unit: Unit | None, trials: int, best: float,
               exhausted: bool = False, seconds: float | None = None) -> None:
        """After a round of ``unit``: its trials so far and best seconds; ``seconds``:
        the round's wall time, where it was timed."""
        if unit is None:
            return
        if seconds is not None and trials > unit.trials:
            unit.seconds += seconds
            unit.timed += trials - unit.trials
        unit.trials, unit.best = trials, best
        unit.history.append((trials, best))
        unit.exhausted = exhausted


def _stale_rounds(history: list[tuple[int, float]]) -> int:
    """Rounds at the end of ``history`` that found nothing faster: a task that stopped
    improving loses the scheduler's optimism round by round."""
    stale = 0
    for (_, before), (_, after) in zip(history[-2::-1], history[:0:-1], strict=True):
        if after < before:
            break
        stale += 1
    return stale


__all__ = ["STRATEGIES", "TaskScheduler", "Unit"]
