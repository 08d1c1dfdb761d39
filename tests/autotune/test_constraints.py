"""Constraints a template declares: the space offers only the configs they allow, in
sampling, neighbours and annealing's steps, and a config that breaks one is refused
with its reason when the template runs it."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tilewise.ops  # noqa: F401  (registers the templates)
from tilewise.autotune import ConfigSpace, Task
from tilewise.autotune.constraints import MAX_TABLE
from tilewise.errors import InvalidConfigError, TuningError


def template(cfg, n_max=3):
    cfg.define_knob("a", [0, 1, 2, 3])
    cfg.define_knob("b", [0, 1, 2])
    cfg.define_knob("c", ["x", "y"])
    cfg.require(("a", "b"), lambda a, b: a >= b, lambda a, b: f"a={a} is below b={b}")
    cfg.require(("c", "a"), lambda c, a: c == "x" or a < n_max, "c=y needs a small a")
    return cfg


def space() -> ConfigSpace:
    return template(ConfigSpace())


def allowed(s: ConfigSpace, i: int) -> bool:
    cfg = s.get(i)
    a, b, c = (cfg[k].val for k in "abc")
    return a >= b and (c == "x" or a < 3)


def test_sampling_offers_exactly_the_allowed_configs():
    s = space()
    everything = sorted(s.sample(100, np.random.default_rng(0)))
    assert everything == [i for i in range(len(s)) if allowed(s, i)]
    assert s.valid(range(len(s))).tolist() == [allowed(s, i) for i in range(len(s))]


def test_a_config_that_breaks_a_constraint_is_refused_with_its_reason():
    s = space()
    bad = s.with_choices(s.fallback, a=0, b=2)
    assert s.broken(bad.index) == "a=0 is below b=2"
    with pytest.raises(InvalidConfigError, match="a=0 is below b=2"):
        template(bad)
    good = s.with_choices(s.fallback, a=2, b=1, c="y")
    assert s.broken(good.index) is None and template(good) is good


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_neighbours_and_annealing_steps_stay_allowed(seed):
    s, rng = space(), np.random.default_rng(seed)
    points = s.sample(5, rng)
    for p in points:
        assert all(allowed(s, q) for q in s.neighbours(p))
    for _ in range(10):
        steps = s.random_neighbours(points, rng)
        for p, q in zip(points, steps, strict=True):
            assert allowed(s, q)
            differ = sum(x != y for x, y in zip(s.knob_index_vector(p), s.knob_index_vector(q),
                                                strict=True))
            assert differ in (0, 1)  # one knob moved, or none where no step was allowed
        points = steps


def test_bad_declarations_raise():
    s = ConfigSpace()
    s.define_knob("a", [0, 1])
    with pytest.raises(TuningError, match="not defined before it"):
        s.require(("a", "zz"), lambda a, z: True, "never")
    s.define_knob("big", list(range(MAX_TABLE)))
    with pytest.raises(TuningError, match="combinations"):
        s.require(("a", "big"), lambda a, big: True, "never")


@pytest.mark.parametrize("task", [
    Task("gemm", (512, 512, 512)), Task("gemm", (100, 70, 33)), Task("gemm", (1, 1000, 1280)),
    Task("dense", (128, 768, 768, "bias+gelu")), Task("dense", (7, 64, 48, "")),
], ids=str)
def test_gemm_family_builds_every_config_its_space_offers(task):
    """The declared constraints are all the gemm schedule refuses: every sampled config
    instantiates, and the fallback breaks none."""
    space = task.config_space
    assert space.constraints and space.is_valid(space.fallback.index)
    for index in space.sample(60, np.random.default_rng(1)):
        task.instantiate(space.get(index))
