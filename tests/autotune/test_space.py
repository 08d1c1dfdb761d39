"""ConfigSpace indexing, sampling, neighbours; entities applied to a schedule; JSON."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tilewise.autotune import ConfigEntity, ConfigSpace
from tilewise.autotune.knobs import (
    AnnotateEntity,
    Annotation,
    OtherOptionEntity,
    ReorderEntity,
    SplitEntity,
)
from tilewise.errors import TuningError


def small_space() -> ConfigSpace:
    space = ConfigSpace()
    space.define_split("tile_y", 64)  # 7
    space.define_split("tile_x", 32, num_outputs=3)  # pairs of powers of 2, product | 32: 21
    space.define_reorder("order", ["a", "b", "c"])  # 6
    space.define_annotate("ann", ["a", "b"], policy="try_unroll_vec")  # 2 * 3
    space.define_knob("unroll", [0, 16, 64])  # 3
    return space


def test_knob_sizes_and_len():
    space = small_space()
    assert [len(k) for k in space.knobs] == [7, 21, 6, 6, 3]
    assert len(space) == 7 * 21 * 6 * 6 * 3


def test_split_policies():
    space = ConfigSpace()
    space.define_split("f", 12)
    space.define_split("p", 12, policy="power2")
    space.define_split("c", 12, policy="candidate", candidate=[[-1, 3], [1, 4]])
    space.define_split("m", 64, num_outputs=3, max_factor=4)
    assert [e.size[1] for e in space.knob("f").entities] == [1, 2, 3, 4, 6, 12]
    assert [e.size[1] for e in space.knob("p").entities] == [1, 2, 4, 8]
    assert [e.size for e in space.knob("c").entities] == [(-1, 3), (-1, 4)]
    assert all(max(e.size[1:]) <= 4 for e in space.knob("m").entities)


def test_split_takes_an_itervar():
    axis = SimpleNamespace(dom=SimpleNamespace(extent=16))
    space = ConfigSpace()
    space.define_split("t", axis)
    assert len(space) == 5


def test_bad_definitions_raise():
    space = ConfigSpace()
    with pytest.raises(TuningError):
        space.define_split("t", 16, num_outputs=5)
    space.define_split("t", 16)
    with pytest.raises(TuningError):
        space.define_split("t", 32)
    with pytest.raises(TuningError):
        space.get(len(space))


@given(st.integers(min_value=0, max_value=7 * 21 * 6 * 6 * 3 - 1))
def test_mixed_radix_round_trip(index):
    space = small_space()
    vector = space.knob_index_vector(index)
    assert space.index_of(vector) == index
    cfg = space.get(index)
    assert cfg.index == index
    for knob, digit in zip(space.knobs, vector, strict=True):
        assert cfg[knob.name] == knob.entities[digit]


def test_knob_zero_is_the_fastest_digit():
    space = small_space()
    assert space.knob_index_vector(1) == (1, 0, 0, 0, 0)
    assert space.knob_index_vector(7) == (0, 1, 0, 0, 0)


def test_sample_without_repeats_and_reproducible():
    space = small_space()
    a = space.sample(100, np.random.default_rng(3))
    b = space.sample(100, np.random.default_rng(3))
    assert a == b and len(set(a)) == 100
    excluded = set(a[:50])
    c = space.sample(100, np.random.default_rng(4), exclude=excluded)
    assert len(set(c)) == 100 and not excluded & set(c)


def test_sample_exhausts_a_small_space():
    space = ConfigSpace()
    space.define_knob("k", list(range(5)))
    assert sorted(space.sample(10, np.random.default_rng(0), exclude={2})) == [0, 1, 3, 4]


def test_sample_a_huge_space_by_rejection():
    space = ConfigSpace()
    for i in range(12):
        space.define_split(f"s{i}", 1024, num_outputs=3)
    assert space.size > 2**64  # beyond int64: indices stay Python ints
    picks = space.sample(50, np.random.default_rng(0))
    assert len(set(picks)) == 50 and all(0 <= p < space.size for p in picks)
    cfg = space.get(picks[0])
    assert ConfigEntity.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg


def test_neighbours_change_exactly_one_knob():
    space = small_space()
    x = 1234
    base = space.knob_index_vector(x)
    neighbours = space.neighbours(x)
    assert len(neighbours) == sum(len(k) - 1 for k in space.knobs)
    assert len(set(neighbours)) == len(neighbours)
    for n in neighbours:
        diff = [a != b for a, b in zip(base, space.knob_index_vector(n), strict=True)]
        assert sum(diff) == 1
    rng = np.random.default_rng(0)
    some = space.neighbours(space.get(x), rng, k=5)
    assert len(some) == 5 and set(some) <= set(neighbours)
    for _ in range(50):
        assert space.random_neighbour(x, rng) in set(neighbours)


def huge_space() -> ConfigSpace:
    space = ConfigSpace()
    for i in range(12):
        space.define_split(f"s{i}", 1024, num_outputs=3)
    space.define_knob("only", [1])  # a knob no neighbour can move
    return space


@pytest.mark.parametrize("make", [small_space, huge_space])
def test_many_indices_at_once_agree_with_one_at_a_time(make):
    """digit_matrix and random_neighbours (annealing's batch forms; int64 arithmetic
    below 2**62 configs, Python ints above) against knob_index_vector and neighbours."""
    space = make()
    rng = np.random.default_rng(5)
    points = space.sample(64, rng) + [0, space.size - 1]
    digits = space.digit_matrix(points)
    assert [tuple(int(d) for d in row) for row in digits] == [
        space.knob_index_vector(p) for p in points]
    moved = space.random_neighbours(points, rng)
    assert len(moved) == len(points)
    for p, q in zip(points, moved, strict=True):
        diff = [a != b for a, b in zip(space.knob_index_vector(p), space.knob_index_vector(q),
                                       strict=True)]
        assert sum(diff) == 1
    with pytest.raises(TuningError, match="outside a space"):
        space.digit_matrix([space.size])


def test_a_space_of_fixed_knobs_has_no_other_neighbour():
    space = ConfigSpace()
    space.define_knob("only", [7])
    assert space.random_neighbours([0, 0], np.random.default_rng(0)) == [0, 0]
    assert space.digit_matrix([0]).tolist() == [[0]]


def test_entity_json_round_trip():
    space = small_space()
    for index in [0, 1, 777, len(space) - 1]:
        cfg = space.get(index)
        again = ConfigEntity.from_json(json.loads(json.dumps(cfg.to_json())))
        assert again == cfg and hash(again) == hash(cfg)
        assert again["ann"] == cfg["ann"]


def test_lookup_places_a_recorded_config_by_its_values_not_its_index():
    space = small_space()
    assert space.lookup(space.get(777)) == space.get(777)
    assert space.lookup(ConfigEntity(index=777, entities=space.get(778).entities)).index == 778
    # no knob named: every knob at its fallback
    assert space.lookup(ConfigEntity(index=len(space), entities=())) == space.fallback
    gone = ConfigEntity(-1, (("unroll", OtherOptionEntity(99)),))
    assert space.lookup(gone) is None
    assert space.place(gone.entities)[1] == "knob 'unroll' has no choice 99 now"


def test_config_entity_is_immutable():
    cfg = small_space().get(5)
    with pytest.raises(AttributeError):
        cfg.index = 6  # type: ignore[misc]


def test_fallback_and_recording_defaults():
    space = ConfigSpace()
    space.define_split("t", 64)
    space.define_knob("u", [0, 1, 2])
    assert space["t"] == SplitEntity((-1, 1))
    space.fallback_with(t=[-1, 8], u=2)
    assert space["t"] == SplitEntity((-1, 8))
    assert space.fallback["t"].size == (-1, 8) and space.fallback["u"].val == 2


def test_with_choices_replaces_only_the_named_knobs():
    space = ConfigSpace()
    space.define_split("t", 64)
    space.define_knob("u", [0, 1, 2])
    space.define_knob("v", ["a", "b"])
    space.fallback_with(t=[-1, 8], u=2)
    cfg = space.with_choices(space.fallback, v="b", t=[-1, 4])
    assert (cfg["t"].size, cfg["u"].val, cfg["v"].val) == ((-1, 4), 2, "b")
    assert space.get(cfg.index) == cfg
    with pytest.raises(TuningError, match="no knob named 'w'"):
        space.with_choices(cfg, w=1)
    with pytest.raises(TuningError, match="not a choice of knob 'u'"):
        space.with_choices(cfg, u=7)


class RecordingStage:
    """Stands in for a schedule stage: records the primitives applied to it."""

    def __init__(self, log):
        self.log = log
        self.count = 0

    def split(self, axis, factor):
        self.count += 1
        outer, inner = f"{axis}.o", f"{axis}.i{factor}"
        self.log.append(("split", axis, factor))
        return outer, inner

    def reorder(self, *axes):
        self.log.append(("reorder", axes))

    def unroll(self, axis):
        self.log.append(("unroll", axis))

    def vectorize(self, axis):
        self.log.append(("vectorize", axis))


class RecordingSchedule:
    def __init__(self):
        self.log = []

    def __getitem__(self, tensor):
        return RecordingStage(self.log)


def test_split_entity_applies_innermost_first():
    s = RecordingSchedule()
    axes = SplitEntity((-1, 4, 8)).apply(s, "C", "y")
    assert s.log == [("split", "y", 8), ("split", "y.o", 4)]
    assert axes == ["y.o.o", "y.o.i4", "y.i8"]


def test_reorder_and_annotate_apply():
    s = RecordingSchedule()
    ordered = ReorderEntity((2, 0, 1)).apply(s, "C", ["a", "b", "c"])
    assert ordered == ["c", "a", "b"] and s.log == [("reorder", ("c", "a", "b"))]
    s.log.clear()
    AnnotateEntity((Annotation.UNROLL, Annotation.NONE, Annotation.VEC)).apply(
        s, "C", ["a", "b", "c"]
    )
    assert s.log == [("unroll", "a"), ("vectorize", "c")]
    assert OtherOptionEntity(4).val == 4


def test_reorder_candidates_by_axis_object():
    a, b = object(), object()
    space = ConfigSpace()
    space.define_reorder("r", [a, b], policy="candidate", candidate=[[b, a]])
    assert space.knob("r").entities == (ReorderEntity((1, 0)),)
