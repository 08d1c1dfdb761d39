"""Generated tasks: a fused group no operator template covers, as a task whose space
is derived from its compute's structure, checked against NumPy, tuned, and what the
compiled model then runs."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from graph_testing import GraphBuilder

import tilewise as tw
from tilewise.autotune import Database, LocalBuilder, LocalRunner, MeasureOption, Task, TaskKey
from tilewise.autotune.dispatch import apply_history_best
from tilewise.autotune.generated import ScheduleChoices, generated_schedule
from tilewise.autotune.measure.runner import check_outputs
from tilewise.autotune.tuners import RandomTuner
from tilewise.codegen import generate_c
from tilewise.graph.fuse import partition
from tilewise.graph.generated_task import GENERATED, group_compute
from tilewise.graph.interpret import interpret
from tilewise.graph.kernels import group_kernel
from tilewise.graph.tasks import extract_tasks
from tilewise.lower import lower
from tilewise.model import import_model
from tilewise.target import Target

#: A fixed target, so that the spaces do not depend on the machine (nothing runs on it).
AVX512 = "c -mcpu=x86-64-v4 -cores=2"
REDUCTION_KNOBS = {"attach_reductions", "lane_reduce", "accumulators", "row_buffers"}
VECTOR_KNOBS = {"vectorize", "vector_split", "unroll", "shift_tail"}


def softmax_graph(rows: int = 8, n: int = 1000):
    b = GraphBuilder("softmax")
    x = b.input("x", rows, n)
    return b.build(b.op("softmax", x, axis=1))


def layer_norm_graph(rows: int = 8, n: int = 768):
    b = GraphBuilder("layer_norm")
    x = b.input("x", rows, n)
    gamma = b.const("gamma", np.linspace(0.5, 1.5, n))
    beta = b.const("beta", np.linspace(-1, 1, n))
    return b.build(b.op("layer_norm", x, gamma, beta, axis=1, epsilon=1e-5))


def elementwise_graph(shape=(16, 1003)):
    b = GraphBuilder("elementwise")
    x = b.input("x", *shape)
    y = b.input("y", *shape)
    return b.build(b.op("relu", b.op("mul", b.op("add", x, y), x)))


def attention_graph(heads: int = 2, seq: int = 24, keys: int = 40):
    """An attention score's scale, mask and softmax: one generated group."""
    b = GraphBuilder("attention")
    s = b.input("scores", 1, heads, seq, keys)
    mask = b.input("mask", 1, 1, 1, keys)
    scaled = b.op("div", s, b.const("scale", 8.0))
    return b.build(b.op("softmax", b.op("add", scaled, mask), axis=3))


GRAPHS = {"softmax": softmax_graph, "layer_norm": layer_norm_graph,
          "elementwise": elementwise_graph, "attention": attention_graph}


def the_task(graph, target: str = AVX512) -> Task:
    (task,) = [t for t, _ in extract_tasks(graph, target, generated=True)
               if t.name == GENERATED]
    return task


def c_source(sch, tensors, target) -> str:
    return generate_c(lower(sch, tensors, "kernel", workspace=True), Target.from_str(target))


# ---- the space -------------------------------------------------------------------------


def test_an_elementwise_group_has_no_reduction_knobs():
    space = the_task(elementwise_graph()).config_space
    names = {k.name for k in space.knobs}
    assert not names & REDUCTION_KNOBS
    assert {"parallel_axes", "vectorize", "vector_split", "unroll"} <= names
    # 1003 is no multiple of a vector: where the last step goes is a choice
    assert "shift_tail" in names
    assert space.fallback["unroll"].val == 1 and space.fallback["vectorize"].val is True


def test_a_row_reduction_has_lane_and_attachment_knobs():
    for make in (softmax_graph, layer_norm_graph):
        names = {k.name for k in the_task(make()).config_space.knobs}
        assert REDUCTION_KNOBS <= names, (make.__name__, names)
        assert {"parallel_axes", "vectorize"} <= names


def test_short_rows_offer_no_lane_reduction_and_one_core_no_parallel_loop():
    # a row of 16 floats is one AVX-512 vector: nothing to accumulate lane-wise
    names = {k.name for k in the_task(softmax_graph(n=16)).config_space.knobs}
    assert not names & {"lane_reduce", "accumulators"}
    names = {k.name for k in the_task(softmax_graph(), "c -mcpu=x86-64-v4 -cores=1")
             .config_space.knobs}
    assert "parallel_axes" not in names


def test_every_offered_value_schedules_differently():
    """No two values of a knob make one schedule (with the other knobs at the rules'
    picks): the space holds no duplicate kernels along any knob."""
    from tilewise.graph.generated_task import schedule_fingerprint

    task = the_task(layer_norm_graph())
    space = task.config_space
    for knob in space.knobs:
        prints = set()
        for entity in knob.entities:
            config = space.with_choices(space.fallback, **{knob.name: entity.val})
            s, _ = task.instantiate(config)
            prints.add(schedule_fingerprint(s))
        assert len(prints) == len(knob.entities), knob.name


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_the_fallback_is_the_rules_schedule(name):
    """Untuned, a generated task builds the kernel compiled without a database."""
    task = the_task(GRAPHS[name]())
    s, tensors = task.instantiate(task.config_space.fallback)
    params, outs = group_compute(*task.args)
    rules = generated_schedule(outs, task.target)
    assert c_source(s, tensors, task.target) == c_source(rules, [*params, *outs], task.target)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_compiling_with_a_database_without_records_changes_no_kernel(name, tmp_path):
    graph = import_model(GRAPHS[name]())
    context = apply_history_best(Database(tmp_path / "empty.db"))
    for i, group in enumerate(partition(graph)):
        plain = group_kernel(graph, group, i, Target.from_str(AVX512), None)
        asked = group_kernel(graph, group, i, Target.from_str(AVX512), context)
        assert asked.source == plain.source and not asked.tuned
        assert asked.task is not None and asked.task.name == GENERATED


# ---- the key -----------------------------------------------------------------------------


def test_the_key_round_trips_through_json_and_pickle():
    task = the_task(layer_norm_graph())
    text = json.dumps(task.key.to_json())
    back = Task.from_key(TaskKey.from_json(json.loads(text)))
    assert back == task and back.key.canonical() == task.key.canonical()
    again = pickle.loads(pickle.dumps(task))
    assert again == task and hash(again) == hash(task)
    assert len(again.config_space) == len(task.config_space)
    assert again.config_space.fallback.to_json() == task.config_space.fallback.to_json()


def test_the_key_is_structure_not_names_or_constant_values():
    one, two = GraphBuilder("a"), GraphBuilder("b")
    for b, (x, c, v) in ((one, ("x", "c", 2.0)), (two, ("input", "k", -3.0))):
        b.input(x, 4, 64)
        b.op("relu", b.op("mul", x, b.const(c, np.full(64, v))), out=f"out_{x}")
    ga, gb = one.build("out_x"), two.build("out_input")
    assert the_task(ga).key == the_task(gb).key
    inputs, nodes, outputs = the_task(ga).args
    assert inputs == (((4, 64), "float32"), ((64,), "float32"))
    assert nodes == (("mul", (), (0, 1), 1), ("relu", (), (2,), 1)) and outputs == (3,)


def test_extract_tasks_counts_generated_groups_only_when_asked():
    b = GraphBuilder("twice")
    outs = [b.op("softmax", b.input(x, 4, 100), axis=1) for x in ("x", "y")]
    graph = import_model(b.build(*outs))
    assert extract_tasks(graph, AVX512) == []
    tasks = extract_tasks(graph, AVX512, generated=True)
    assert [c for _, c in tasks] == [len(partition(graph))] == [2]


# ---- built and checked against NumPy -------------------------------------------------------


@pytest.mark.compiles
@pytest.mark.parametrize("name", ["softmax", "layer_norm", "elementwise", "attention"])
def test_random_configs_build_and_match_numpy(name):
    graph = GRAPHS[name](**({"rows": 3, "n": 300} if name in ("softmax", "layer_norm")
                            else {}))
    task = the_task(graph, "c -cores=2")
    space = task.config_space
    rng = np.random.default_rng(7)
    picks = [space.fallback.index, *space.sample(5, rng, exclude=[space.fallback.index])]
    make = task.reference()
    assert make is not None
    for index in picks:
        config = space.get(index)
        s, tensors = task.instantiate(config)
        mod = tw.build(s, list(tensors), target=task.target)
        arrays, expected = make(np.random.default_rng(index))
        arrays = list(arrays)
        assert sorted(expected) == list(range(len(arrays) - len(task.args[2]), len(arrays)))
        mod(*arrays)
        wrong = check_outputs(arrays, expected)
        assert wrong is None, (str(config), wrong)


def test_the_reference_is_the_graphs_interpreter():
    graph = attention_graph()
    task = the_task(graph)
    arrays, expected = task.reference()(np.random.default_rng(0))
    scale = graph.constants["scale"]
    feeds = {"scores": arrays[0], "mask": arrays[2]}
    assert arrays[1].shape == scale.shape
    want = interpret(graph.with_nodes(graph.nodes, constants={"scale": arrays[1]}), feeds)
    np.testing.assert_array_equal(expected[3], want[graph.outputs[0]])


def test_the_reference_draws_inputs_that_keep_the_outputs_finite():
    b = GraphBuilder("roots")
    x = b.input("x", 4, 64)
    task = the_task(b.build(b.op("log", b.op("sqrt", x))))
    arrays, expected = task.reference()(np.random.default_rng(0))
    assert (arrays[0] > 0).all() and np.isfinite(expected[1]).all()


# ---- tuned, then compiled ----------------------------------------------------------------------


@pytest.mark.compiles
def test_a_compute_no_template_covers_is_tuned_and_compiled(tmp_path):
    target = "c -cores=2"
    model = attention_graph()
    task = the_task(import_model(model), target)
    path = tmp_path / "t.db"
    db = Database(path)
    builder = LocalBuilder(n_parallel=2, timeout=60)
    try:
        option = MeasureOption(builder, LocalRunner(number=2, repeat=2, timeout=30),
                               batch_size=4)
        summary = RandomTuner(task, seed=0).tune(4, option, database=db)
    finally:
        builder.close()
    records = db.records(task)
    assert summary.measured == 4 == len(records)
    assert all(r.result.ok for r in records), [r.result.error_msg for r in records]
    best = db.best(task)
    db.close()
    compiled = tw.compile_model(model, db=path, target=target)
    (kernel,) = [k for k in compiled.manifest["kernels"] if k["task"] is not None]
    assert kernel["tuned"] and kernel["task"]["name"] == GENERATED
    assert TaskKey.from_json(kernel["task"]) == task.key
    chosen = {n: e.val for n, e in best.config.entities}
    assert set(chosen) <= set(vars(ScheduleChoices()))
    feeds = {"scores": np.random.default_rng(1).standard_normal((1, 2, 24, 40), np.float32),
             "mask": np.zeros((1, 1, 1, 40), np.float32)}
    want = interpret(model, feeds)[model.outputs[0]]
    got = compiled.run(feeds)[model.outputs[0]]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
