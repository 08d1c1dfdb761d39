"""The static memory plan: values alive at once never share bytes, and the arena is
no larger than it must be on chains and diamonds."""

from __future__ import annotations

import random

from tilewise.graph.memory import LINE, plan_memory


def _overlap(a, b):
    return a[0] < b[1] and b[0] < a[1]


def _check(steps, sizes, plan):
    alive = {}
    for t, (reads, writes) in enumerate(steps):
        for v in [*reads, *writes]:
            if v in sizes:
                lo, hi = alive.get(v, (t, t))
                alive[v] = (min(lo, t), max(hi, t))
    for a in alive:
        for b in alive:
            if a < b and _overlap((alive[a][0], alive[a][1] + 1), (alive[b][0], alive[b][1] + 1)):
                ra = (plan.offsets[a], plan.offsets[a] + sizes[a])
                rb = (plan.offsets[b], plan.offsets[b] + sizes[b])
                assert not _overlap(ra, rb), (a, b)
    assert all(o % LINE == 0 for o in plan.offsets.values())
    assert plan.arena_bytes >= plan.peak_live_bytes


def test_chain_reuses_two_buffers():
    # x -> a -> b -> c -> y: two buffers of 1 KiB alternate
    steps = [(["x"], ["a"]), (["a"], ["b"]), (["b"], ["c"]), (["c"], ["y"])]
    sizes = {"a": 1024, "b": 1024, "c": 1024}
    plan = plan_memory(steps, sizes)
    _check(steps, sizes, plan)
    assert plan.arena_bytes == 2048 == plan.peak_live_bytes


def test_residual_keeps_the_skip_alive():
    steps = [(["x"], ["a"]), (["a"], ["b"]), (["b"], ["c"]), (["c", "a"], ["d"]),
             (["d"], ["y"])]
    sizes = {"a": 4096, "b": 1024, "c": 1024, "d": 4096}
    plan = plan_memory(steps, sizes)
    _check(steps, sizes, plan)
    assert plan.arena_bytes == plan.peak_live_bytes == 4096 + 1024 + 4096  # a, c, d


def test_random_graphs_never_overlap():
    rng = random.Random(0)
    for _ in range(50):
        values = [f"v{i}" for i in range(12)]
        sizes = {v: rng.choice([64, 100, 1000, 4096]) for v in values}
        steps = []
        for i, v in enumerate(values):
            reads = rng.sample(values[:i], min(i, rng.randint(0, 2))) if i else ["x"]
            steps.append((reads, [v]))
        plan = plan_memory(steps, sizes)
        _check(steps, {v: -(-s // LINE) * LINE for v, s in sizes.items()}, plan)
