"""GATuner: a genetic algorithm over knob-index vectors (fitness-proportional parents,
uniform crossover, per-knob mutation, elites kept)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tilewise.autotune.record import MeasureInput, MeasureResult
from tilewise.autotune.space import ConfigEntity
from tilewise.autotune.task import Task
from tilewise.autotune.tuners.base import Tuner


class GATuner(Tuner):
    """>>> GATuner(task, seed=0, pop_size=32, elite_num=3).tune(128, option)  # doctest: +SKIP"""

    def __init__(
        self,
        task: Task,
        seed: int = 0,
        pop_size: int = 100,
        elite_num: int = 3,
        mutation_prob: float = 0.1,
    ) -> None:
        super().__init__(task, seed)
        self.pop_size = min(pop_size, self.space.size)
        self.elite_num = min(elite_num, self.pop_size)
        self.mutation_prob = mutation_prob
        self.fitness: dict[int, float] = {}
        self.population: list[int] = []
        self._queue: list[int] = []  # members of the current generation still to measure

    def update(self, inputs: Sequence[MeasureInput], results: Sequence[MeasureResult]) -> None:
        super().update(inputs, results)
        for inp, res in zip(inputs, results, strict=True):
            self.fitness[inp.config.index] = self.throughput(res)

    def next_batch(self, n: int) -> list[ConfigEntity]:
        batch: list[int] = []
        while len(batch) < n and len(self.seen) + len(batch) < self.space.size:
            if not self._queue:
                self._next_generation(self.seen | set(batch))
                if not self._queue:
                    break
            index = self._queue.pop(0)
            if index not in self.seen and index not in batch:
                batch.append(index)
        return self._propose(batch)

    def _next_generation(self, taken: set[int]) -> None:
        """Breed the next population; its children (the queue) are none of ``taken``
        (proposed before, or in the batch being filled)."""
        parents = self._parents()
        if len(parents) < 2:
            self.population = self.space.sample(self.pop_size, self.rng, exclude=taken)
            self._queue = list(self.population)
            return
        weights = np.array([self.fitness.get(p, 0.0) for p in parents]) + 1e-12
        weights /= weights.sum()
        elites = sorted(parents, key=lambda p: -self.fitness.get(p, 0.0))[: self.elite_num]
        vectors = {p: self.space.knob_index_vector(p) for p in parents}
        sizes = [len(k) for k in self.space.knobs]
        children: list[int] = []
        attempts = 0
        while len(children) < self.pop_size - len(elites) and attempts < 20 * self.pop_size:
            attempts += 1
            a, b = self.rng.choice(len(parents), size=2, p=weights)
            va, vb = vectors[parents[a]], vectors[parents[b]]
            genes = [va[i] if self.rng.random() < 0.5 else vb[i] for i in range(len(sizes))]
            for i, size in enumerate(sizes):
                if self.rng.random() < self.mutation_prob:
                    genes[i] = int(self.rng.integers(size))
            child = self.space.canonical_index(self.space.index_of(genes))
            if child not in taken and child not in children and self.space.is_valid(child):
                children.append(child)
        missing = self.pop_size - len(elites) - len(children)
        if missing > 0:  # the neighbourhood is exhausted: fill with fresh random configs
            children += self.space.sample(missing, self.rng, exclude=taken | set(children))
        self.population = elites + children
        self._queue = list(children)

    def _parents(self) -> list[int]:
        """The current population, or (first generation after a resume) the best measured."""
        if self.population:
            return [p for p in self.population if p in self.fitness]
        ranked = sorted(self.fitness, key=lambda p: (-self.fitness[p], p))
        return ranked[: self.pop_size]
