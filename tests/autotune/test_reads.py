"""The read tree: a config on a path walked before is answered without running the
template, and the answer is the one running it gives."""

import numpy as np
import pytest

import tilewise.ops  # noqa: F401  (registers the templates)
from tilewise.autotune import Task, template
from tilewise.errors import InvalidConfigError

RUNS = {"count": 0}
WHICH = {"second": "y"}  # what toy_outside reads second: outside the config


@template("toy_reads")
def toy_reads(cfg, n):
    cfg.define_knob("path", ["a", "b"])
    cfg.define_knob("x", [0, 1, 2])
    cfg.define_knob("y", [0, 1, 2, 3])
    cfg.define_knob("unread", list(range(5)))
    cfg.fallback_with(x=1)
    RUNS["count"] += 1
    if cfg["path"].val == "a":
        if cfg["x"].val == 0:
            raise InvalidConfigError("x=0 is refused on path a")
        return ("a", cfg["x"].val), []
    return ("b", cfg["y"].val), []


@template("toy_outside")
def toy_outside(cfg, n):
    cfg.define_knob("x", [0, 1])
    cfg.define_knob("y", [0, 1])
    cfg.define_knob("z", [0, 1])
    return (cfg["x"].val, cfg[WHICH["second"]].val), []


def test_a_walked_path_answers_without_the_template():
    task = Task("toy_reads", (1,), "c")
    space = task.config_space
    a1 = space.with_choices(space.fallback, path="a", x=1, y=0, unread=0)
    assert task.knobs_read(a1) == {"path", "x"}
    RUNS["count"] = 0
    for y in range(4):
        for unread in range(5):
            twin = space.with_choices(a1, y=y, unread=unread)
            assert task.knobs_read(twin) == {"path", "x"}
    assert RUNS["count"] == 0
    refused = space.with_choices(a1, x=0)
    for _ in range(2):
        with pytest.raises(InvalidConfigError, match="x=0 is refused"):
            task.knobs_read(space.with_choices(refused, y=3))
    assert RUNS["count"] == 1  # the first refusal ran it, the second did not
    assert task.known_trace(space.with_choices(a1, x=2)) is None  # a branch not walked


def test_answers_from_the_tree_are_the_templates():
    """gemm's reads, asked in a random order of configs from one task, match what a
    fresh task (an empty tree) finds by running the template for each."""
    def answer(task, config):
        try:
            return task.knobs_read(config)
        except InvalidConfigError as e:
            return str(e)

    task = Task("gemm", (12, 48, 20, "float32"), "c")
    space = task.config_space
    rng = np.random.default_rng(0)
    fallback = space.fallback
    configs = [space.get(i) for i in space.sample(150, rng)]
    configs += [space.get(i) for i in space.twins(fallback, task.knobs_read(fallback))]
    configs += [space.get(space.random_neighbour(c.index, rng)) for c in configs[:150]]
    for config in configs:
        assert answer(task, config) == answer(Task("gemm", (12, 48, 20, "float32"), "c"),
                                              config)
    assert not task.read_tree.broken


def test_a_template_that_reads_outside_its_config_breaks_the_tree():
    task = Task("toy_outside", (1,), "c")
    space = task.config_space
    first = space.with_choices(space.fallback, x=0, y=0, z=0)
    try:
        assert task.knobs_read(first) == {"x", "y"}
        WHICH["second"] = "z"
        # y=1 is a branch not walked: the template runs, and after the same choice of
        # x it reads z where the tree has y
        assert task.knobs_read(space.with_choices(first, y=1)) == {"x", "z"}
        assert task.read_tree.broken and task.known_trace(first) is None
        assert task.knobs_read(first) == {"x", "z"}  # the template runs again
    finally:
        WHICH["second"] = "y"


def test_a_pickled_task_carries_no_tree():
    import pickle

    task = Task("toy_reads", (1,), "c")
    task.knobs_read(task.config_space.fallback)
    copy = pickle.loads(pickle.dumps(task))
    assert copy.known_trace(copy.config_space.fallback) is None
    assert task.known_trace(task.config_space.fallback) is not None
