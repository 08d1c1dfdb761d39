"""Constraints and conditions a template declares: the space offers only the configs
the constraints allow, one per kernel where a knob does not matter (conditions), in
sampling, neighbours and annealing's steps; a config that breaks a constraint is
refused with its reason when the template runs it."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from knob_reads import idle_knobs, knobs_read, pinned_knobs

import tilewise.ops  # noqa: F401  (registers the templates)
from tilewise.autotune import ConfigSpace, Task
from tilewise.autotune.constraints import MAX_TABLE
from tilewise.errors import InvalidConfigError, TuningError
from tilewise.lower import lower


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


TASKS = [
    Task("gemm", (512, 512, 512)), Task("gemm", (100, 70, 33)), Task("gemm", (1, 1000, 1280)),
    Task("dense", (128, 768, 768, "bias+gelu")), Task("dense", (7, 64, 48, "")),
    Task("batch_matmul", (12, 128, 128, 64)), Task("batch_matmul", (3, 77, 50, 33)),
    Task("conv2d_nchw", (1, 64, 56, 56, 64, 3, 3, 1, 1, 1, "float32", "bias+relu")),
    Task("conv2d_nchw", (1, 3, 30, 30, 16, 7, 7, 2, 3, 2, "float32", "")),
    Task("conv2d_nchw", (1, 144, 56, 56, 24, 1, 1, 1, 0, 1, "float32", "bias+residual")),
    Task("conv2d_nchw", (1, 960, 7, 7, 320, 1, 1, 1, 0, 1, "float32", "bias")),
    Task("conv2d_nchw", (2, 30, 9, 9, 50, 1, 1, 1, 0, 1, "float32", "")),
    Task("conv2d_nchw_winograd", (1, 64, 14, 14, 64, 3, 3, 1, 1, 1, "float32", "bias")),
    Task("conv2d_nchw_winograd", (1, 8, 4, 4, 16, 3, 3, 1, 0, 1, "float32", "")),
    Task("depthwise_conv2d_nchw", (1, 144, 56, 56, 3, 3, 1, 1, 1, "float32", "bias+relu6")),
    Task("depthwise_conv2d_nchw", (1, 32, 15, 17, 3, 3, 2, 1, 1, "float32", "")),
    Task("conv2d_nhwc", (1, 14, 14, 64, 64, 3, 3, 1, 1, 1, "float32", "bias+relu")),
    Task("gemm", (4, 512, 256)), Task("dense", (1, 1000, 512, "bias")),  # streaming B
]


@pytest.mark.parametrize("task", TASKS, ids=str)
def test_templates_build_every_config_their_space_offers(task):
    """The declared constraints are all a template refuses: every sampled config
    instantiates (some also lower), and the space offers the fallback."""
    space = task.config_space
    assert space.is_offered(space.fallback.index)
    for n, index in enumerate(space.sample(40, np.random.default_rng(1))):
        sch, tensors = task.instantiate(space.get(index))
        if n < 8:
            lower(sch, list(tensors), "k")


@pytest.mark.parametrize("task", TASKS, ids=str)
def test_templates_declare_the_knobs_they_leave_unread(task):
    """A knob the template does not read where it builds a config is one its
    conditions say does not matter there (or one its constraints pin to one choice
    there), and a knob they say does not matter is not read: the space offers each
    kernel once, as far as reading the knobs tells."""
    space = task.config_space
    several = {k.name for k in space.knobs if len(k) > 1}
    for index in [space.fallback.index, *space.sample(12, np.random.default_rng(2))]:
        unread = several - knobs_read(task, space.get(index))
        idle = idle_knobs(task, index)
        assert idle <= unread, space.get(index)
        assert unread - idle <= pinned_knobs(task, index), space.get(index)


@pytest.mark.parametrize("task", TASKS, ids=str)
def test_a_knob_that_does_not_matter_keeps_its_config_valid(task):
    """Moving the knobs that do not matter to their fallback choice breaks no
    constraint, so no valid config's kernel is lost to the space."""
    space = task.config_space
    draws = np.random.default_rng(3).integers(space.size, size=20_000)
    valid = draws[space.valid(draws)]
    assert space.valid(space.canonical(valid)).all()


def test_one_image_of_1x1_blocks_of_rows_is_declared_whole():
    """The pixels GEMM of a 1x1 convolution over one image, row blocks outermost: a
    last block of fewer row tiles than block_m is refused by declaration (it failed
    in lowering once, offered by the space)."""
    task = Task("conv2d_nchw", (1, 144, 56, 56, 24, 1, 1, 1, 0, 1, "float32", ""))
    space = task.config_space
    if "ukr" not in [e.val for e in space.knob("kernel").entities]:
        pytest.skip("no micro-kernel on this target")
    config = space.with_choices(space.fallback, vectors="pixels", kernel="ukr", order="kf",
                                pack="panel", kc=0, mr=8, block_m=2, stream_out=False)
    assert "24 output channels make 3 tiles of 8" in space.broken(config.index)


def test_a_condition_makes_one_config_of_a_kernel():
    space = ConfigSpace()
    space.define_knob("kernel", ["loops", "ukr"])
    space.define_knob("unroll", [1, 2, 4, 8])
    space.define_knob("x", [0, 1, 2])
    space.fallback_with(unroll=4)
    space.conditional("unroll", ("kernel",), lambda kernel: kernel == "loops")
    twin = space.with_choices(space.fallback, kernel="ukr", unroll=8)
    assert space.get(space.canonical_index(twin.index))["unroll"].val == 4
    assert not space.is_offered(twin.index) and space.is_valid(twin.index)
    offered = space.sample(100, np.random.default_rng(0))
    assert len(offered) == 3 * (4 + 1) and all(space.is_offered(i) for i in offered)
    assert twin.index not in space.neighbours(space.fallback)
    assert all(space.is_offered(i) for i in space.neighbours(space.fallback))
    points = offered
    for _ in range(20):
        points = space.random_neighbours(points, np.random.default_rng(1))
        assert space.offered(points).all()


def test_conditions_name_known_knobs_and_not_their_own():
    space = ConfigSpace()
    space.define_knob("a", [0, 1])
    with pytest.raises(TuningError, match="not defined"):
        space.conditional("a", ("zz",), lambda z: True)
    with pytest.raises(TuningError, match="on itself"):
        space.conditional("a", ("a",), lambda a: True)
