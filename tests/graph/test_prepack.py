"""Weights packed at compile time: ``lower(..., given=...)`` emits no nest for the given
stages and what only they read, and :func:`prepack` computes those stages once; every
template built that way (fallback, forced knobs, random valid configs) matches NumPy
and no longer packs its weights."""

from __future__ import annotations

import numpy as np
import pytest

import tilewise as tw
import tilewise.ops  # noqa: F401  (registers the templates)
from tilewise import te
from tilewise.autotune import Task
from tilewise.errors import InvalidConfigError, LowerError, ScheduleError
from tilewise.graph.prepack import prepack
from tilewise.ir import Allocate, Store, collect
from tilewise.schedule.weights import pack_schedule, split_weights
from tw_testing import matmul

TARGET = "c -cores=2"
RANDOM = 2  # random valid configs built per case, beside the fallback and forced knobs

# (template, args, constant positions in the tensor list, knob sets forced on the
# fallback, whether a config has a stage that reads only constants)
ALWAYS, NEVER = (lambda cfg: True), (lambda cfg: False)
CASES = {
    "conv3x3": ("conv2d_nchw", (1, 32, 10, 10, 48, 3, 3, 1, 1), (1,),
                [{"kernel_pack": "per_chunk"}, {"kernel_pack": "per_chunk", "ic_outer": True},
                 {"kernel": "loops", "fuse_kw": False, "oc_bn": 32}], ALWAYS),
    "conv3x3-bias-relu": ("conv2d_nchw", (1, 32, 10, 10, 64, 3, 3, 1, 1, 1, "float32",
                                          "bias+relu"), (1, 2),
                          [{"kernel_pack": "per_chunk", "ic_outer": True}], ALWAYS),
    "conv1x1": ("conv2d_nchw", (1, 32, 8, 8, 48, 1, 1, 1, 0), (1,),
                [{"pack_weights": True}, {"pack_weights": True, "mr": 5, "stream_out": False}],
                lambda cfg: cfg["pack_weights"].val),
    "conv1x1-bias-relu": ("conv2d_nchw", (1, 32, 8, 8, 48, 1, 1, 1, 0, 1, "float32",
                                          "bias+relu"), (1, 2),
                          [{"pack_weights": True}], lambda cfg: cfg["pack_weights"].val),
    "conv-stride2": ("conv2d_nchw", (1, 16, 15, 15, 32, 3, 3, 2, 1), (1,),
                     [{"kernel_pack": "per_chunk"}], ALWAYS),
    "conv-stride2-bias-relu": ("conv2d_nchw", (1, 16, 15, 15, 40, 3, 3, 2, 1, 1, "float32",
                                               "bias+relu"), (1, 2), [], ALWAYS),
    "winograd": ("conv2d_nchw_winograd", (1, 32, 12, 12, 32, 3, 3, 1, 1), (1,),
                 [{"tile": m, "weights": w} for m in (2, 4) for w in ("root", "panel")],
                 ALWAYS),
    "winograd-bias-relu": ("conv2d_nchw_winograd", (1, 16, 9, 9, 48, 3, 3, 1, 1, 1,
                                                    "float32", "bias+relu"), (1, 2),
                           [{"tile": 4, "weights": "panel"}], ALWAYS),
    "depthwise": ("depthwise_conv2d_nchw", (1, 32, 14, 14, 3, 3, 1, 1, 1, "float32",
                                            "bias+relu"), (1, 2), [], NEVER),
    "dense-bias": ("dense", (24, 64, 48, "bias"), (1, 2),
                   [{"pack": "root", "pack_prefetch": 0}, {"pack": "panel"},
                    {"pack": "root", "pack_prefetch": 0, "kernel": "ukr+prefetch"},
                    {"pack": "panel", "order": "ji", "fetch_next": True}],
                   lambda cfg: cfg["pack"].val != "none"),
    "batch_matmul": ("batch_matmul", (2, 16, 32, 24), (), [], NEVER),
}


def _configs(task: Task, forced, rng):
    """The fallback, the forced variants of it, then random configs."""
    space = task.config_space
    yield "fallback", space.fallback
    for knobs in forced:
        yield str(knobs), space.with_choices(space.fallback, **knobs)
    for index in space.sample(300, rng):
        yield "random", space.get(index)


def _tolerance(config) -> float:
    if "tile" in dict(config.as_dict()) and config["tile"].val == 4:
        return 1e-4  # F(4x4) rounds more (tests/ops/test_winograd.py)
    return 1e-5


def _check_no_weight_packing(original, packed, given_names) -> None:
    """The prepacked kernel stores nothing into a given buffer, allocates nothing the
    original did not, and is shorter C."""
    stores = {s.buffer.name for s in collect(packed.body, Store)}
    assert not stores & given_names, stores
    before = {a.buffer.name for a in collect(original.body, Allocate)}
    after = {a.buffer.name for a in collect(packed.body, Allocate)}
    assert after <= before and not after & given_names


@pytest.mark.compiles
@pytest.mark.parametrize("case", list(CASES))
def test_prepacked_templates_match_numpy(case):
    name, args, positions, forced, packs = CASES[case]
    task = Task(name, args, TARGET)
    rng = np.random.default_rng(0)
    arrays, (want,) = task.reference()(np.random.default_rng(1))
    built, random_built, seen = 0, 0, set()
    for label, config in _configs(task, forced, rng):
        if config.index in seen:
            continue
        if label == "random" and random_built == RANDOM:
            break
        seen.add(config.index)
        try:
            s, tensors = task.instantiate(config)
        except InvalidConfigError:
            assert label == "random", f"{case}: forced {label} refused"
            continue
        pre = prepack(s, tensors, {p: arrays[p] for p in positions}, task.target)
        assert bool(pre.given) == packs(config), f"{case} {label}"
        func = tw.lower(s, list(pre.args), given=pre.given)
        source = tw.generate_source(func, task.target)
        if pre.given:
            original = tw.lower(s, tensors)
            names = {t.name for t in pre.given}
            _check_no_weight_packing(original, func, names)
            assert len(source) < len(tw.generate_source(original, task.target))
            consumed = {tensors[p].name for p in positions} - {t.name for t in pre.args}
            assert consumed and not consumed & {b.name for b in func.params}
        else:
            assert list(pre.args) == list(tensors)
        mod = tw.build(s, list(pre.args), task.target, given=pre.given)
        runtime = [a for i, a in enumerate(arrays) if i not in positions]
        out = np.zeros_like(runtime[-1])
        runtime[-1] = out
        mod(*pre.bind(runtime))
        scale = float(np.abs(want).max()) or 1.0
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=_tolerance(config) * scale,
                                   err_msg=f"{case} {label} {config}")
        built += 1
        random_built += label == "random"
    assert built >= 3 and random_built == RANDOM, (case, built, random_built)


def test_split_order_replaces_the_consumed_weights():
    task = Task("conv2d_nchw", (1, 16, 8, 8, 32, 3, 3, 1, 1, 1, "float32", "bias"), TARGET)
    s, tensors = task.instantiate(task.config_space.fallback)
    split = split_weights(s, tensors, {1, 2})
    assert [t.name for t in split.args] == ["data", "kernel_pack", "bias", "out"]
    assert split.sources == (0, -1, 2, 3)
    assert [t.name for t in split.frontier] == ["kernel_pack"]
    assert split.pack_inputs == (1,) and [t.name for t in split.weights_read] == ["kernel"]


def test_split_without_weight_only_stages_keeps_the_arguments():
    task = Task("conv2d_nchw", (1, 16, 8, 8, 32, 3, 3, 1, 1, 1, "float32", "bias"), TARGET)
    s, tensors = task.instantiate(task.config_space.fallback)
    split = split_weights(s, tensors, {2})  # the bias: read by the output stage only
    assert list(split.args) == list(tensors) and not split.frontier
    with pytest.raises(ScheduleError, match="no weight-only stages"):
        pack_schedule(split)
    with pytest.raises(ScheduleError, match="not an input placeholder"):
        split_weights(s, tensors, {3})


# -- lower(given=...) on a hand schedule -----------------------------------------------

def _packed_matmul():
    """C = A @ B with B copied per column tile (cache_read, compute_at): the copy's
    buffer is a block of B, where given it is the whole of it."""
    A, B, C = matmul(24, 20, 32)
    s = te.create_schedule(C.op)
    Bp = s.cache_read(B, "global", [C])
    i, j = s[C].op.axis
    jo, ji = s[C].split(j, 8)
    s[C].reorder(jo, i, ji)
    s[Bp].compute_at(s[C], jo)
    return s, A, B, Bp, C


def test_given_stage_attached_inside_a_loop_reads_the_whole_argument():
    s, A, B, Bp, C = _packed_matmul()
    func = tw.lower(s, [A, Bp, C], given=[Bp])
    assert [p.name for p in func.params] == ["A", "B.global", "C"]
    assert not collect(func.body, Allocate)
    assert {st.buffer.name for st in collect(func.body, Store)} == {"C"}


@pytest.mark.compiles
def test_given_stage_attached_inside_a_loop_computes_right():
    s, A, B, Bp, C = _packed_matmul()
    mod = tw.build(s, [A, Bp, C], "c", given=[Bp])
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((24, 20), "float32"), rng.standard_normal((20, 32), "float32")
    c = np.zeros((24, 32), "float32")
    mod(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)


def test_given_must_be_a_computed_argument():
    s, A, B, Bp, C = _packed_matmul()
    with pytest.raises(LowerError, match="not in the argument list"):
        tw.lower(s, [A, B, C], given=[Bp])
    with pytest.raises(LowerError, match="placeholder"):
        tw.lower(s, [A, B, C], given=[B])
    with pytest.raises(LowerError, match="the output"):
        tw.lower(s, [A, B, C], given=[C])
    with pytest.raises(LowerError, match="B is read but not in the argument list"):
        tw.lower(s, [A, Bp, C])  # not given: the copy is computed, so B is read


def test_no_given_lowers_as_before():
    s, A, B, Bp, C = _packed_matmul()
    assert str(tw.lower(s, [A, B, C], given=())) == str(tw.lower(s, [A, B, C]))
