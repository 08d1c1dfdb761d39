"""Generated spaces with multi-level tiling (autotune/tiling.py): contractions recognised
from their index structure, every offered config built and checked against NumPy, a
compute no template covers tuned in its space, and whole models with the operator
templates ignored, compiled and tuned."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from graph_testing import GraphBuilder
from tiling_templates import attention_compute, attention_numpy

import tilewise as tw
from tilewise import autotune as at
from tilewise import te
from tilewise.autotune.generated import ScheduleChoices, generated_schedule
from tilewise.autotune.measure.runner import check_outputs
from tilewise.autotune.tile_space import last_axis_tiles
from tilewise.autotune.tiling import (
    TileChoices,
    contractions,
    fallback_tiles,
    is_contraction,
    tile_fits,
)
from tilewise.codegen import generate_c
from tilewise.errors import ScheduleError, TilewiseError
from tilewise.graph.fuse import partition
from tilewise.graph.generated_task import GENERATED, group_compute
from tilewise.graph.library import _is_view
from tilewise.graph.tasks import extract_tasks
from tilewise.lower import lower
from tilewise.lower.inline import effective_bodies
from tilewise.model import import_model
from tilewise.ops import nn
from tilewise.target import Target

#: A fixed target for the spaces (nothing runs on it); the host's for what is built.
AVX512 = "c -mcpu=x86-64-v4 -cores=2"
HOST = "c -cores=2"


def dense_graph():
    """A fully connected layer with its bias and ReLU: dense's anchor and epilogue."""
    b = GraphBuilder("dense")
    x = b.input("x", 24, 40)
    w = b.const("w", np.random.default_rng(0).standard_normal((40, 48)))
    bias = b.const("bias", np.linspace(-1, 1, 48))
    return b.build(b.op("relu", b.op("add", b.op("matmul", x, w), bias)))


def batch_matmul_graph():
    b = GraphBuilder("bmm")
    x, y = b.input("x", 3, 12, 20), b.input("y", 3, 20, 24)
    return b.build(b.op("matmul", x, y))


def conv_graph():
    """A strided, padded 3x3 convolution with a bias and ReLU; 21 columns, so that
    tiles of whole vectors shift their last tile back inside."""
    b = GraphBuilder("conv")
    x = b.input("x", 1, 8, 13, 41)
    w = b.const("w", np.random.default_rng(1).standard_normal((16, 8, 3, 3)))
    bias = b.const("bias", np.linspace(-1, 1, 16))
    y = b.op("conv2d", x, w, bias, strides=(2, 2), pads=(1, 1, 1, 1), dilations=(1, 1),
             groups=1)
    return b.build(b.op("relu", y))


def depthwise_graph():
    b = GraphBuilder("depthwise")
    x = b.input("x", 1, 16, 12, 20)
    w = b.const("w", np.random.default_rng(2).standard_normal((16, 1, 3, 3)))
    return b.build(b.op("conv2d", x, w, strides=(1, 1), pads=(1, 1, 1, 1),
                        dilations=(1, 1), groups=16))


CONTRACTIONS = {"dense": dense_graph, "batch_matmul": batch_matmul_graph,
                "conv2d": conv_graph, "depthwise": depthwise_graph}


def the_task(graph, target: str = AVX512) -> at.Task:
    (task,) = [t for t, _ in extract_tasks(graph, target, templates=False)]
    assert task.name == GENERATED
    return task


def stages_of(outputs):
    s = te.create_schedule([t.op for t in outputs])
    for st in s.stages:
        if st.is_compute and not st.is_output and not st.op.reduce_axis:
            st.compute_inline()
    bodies = effective_bodies(s)
    return [(st, bodies[st]) for st in s.stages if st.is_compute]


# ---- recognising contractions ------------------------------------------------------------


def test_contractions_are_recognised_by_index_structure_alone():
    x = te.placeholder((4, 6, 8, 8), name="x")
    kinds = {
        "matmul": nn.matmul(te.placeholder((5, 7)), te.placeholder((7, 3))),
        "batch": nn.matmul(te.placeholder((2, 5, 7)), te.placeholder((2, 7, 3))),
        "conv": nn.conv2d(x, te.placeholder((3, 6, 3, 3)), pads=(1, 1, 1, 1)),
        "depthwise": nn.conv2d(x, te.placeholder((6, 1, 3, 3)), groups=6),
        "softmax": nn.softmax(te.placeholder((4, 9)), axis=1),
        "layer_norm": nn.layer_norm(te.placeholder((4, 9)), te.placeholder((9,)), None, 1,
                                    1e-5),
        "max_pool": nn.pool2d("max", x, (3, 3)),
        "avg_pool": nn.pool2d("avg", x, (2, 2), strides=(2, 2)),
        "sum_of_squares": nn.reduce("sum", nn.binary("mul", x, x), (2, 3)),
    }
    found = {name: sum(is_contraction(st, body) for st, body in stages_of([t]))
             for name, t in kinds.items()}
    assert found == {"matmul": 1, "batch": 1, "conv": 1, "depthwise": 1, "softmax": 0,
                     "layer_norm": 0, "max_pool": 0, "avg_pool": 0, "sum_of_squares": 0}


def test_the_fallback_tile_follows_the_vectors_and_the_reuse():
    tgt = Target.from_str(AVX512)  # 16 lanes, 32 vector registers
    (c,) = contractions([nn.matmul(te.placeholder((512, 512)), te.placeholder((512, 512)))],
                        tgt)
    assert c.reuse == (0,) and c.lanes == 16
    tc = fallback_tiles(c, tgt)
    assert tc.spatial == ((1, 8), (1, 32)) and tc.reduce == (4,)  # 8 rows x 2 vectors
    assert not tc.inputs_at_root and c.producers == 0
    x = te.placeholder((1, 64, 56, 56))
    (c,) = contractions([nn.conv2d(x, te.placeholder((64, 64, 3, 3)), pads=(1, 1, 1, 1))],
                        tgt)
    tc = fallback_tiles(c, tgt)
    # rows along the filters (the input's values reused across them); two whole vectors
    # of columns, the last tile of 56 shifted back inside; the padding computed first
    assert c.reuse == (1,) and tc.spatial == ((1, 1), (1, 8), (1, 1), (1, 32))
    assert c.producers == 1 and tc.inputs_at_root
    assert tile_fits(8, 32, 16, 32) and not tile_fits(16, 32, 16, 32)
    assert (1, 48) in last_axis_tiles(56, 16) and (2, 16) in last_axis_tiles(56, 16)
    assert (3, 16) not in last_axis_tiles(56, 16) and (1, 7) in last_axis_tiles(7, 16)


def test_wrong_tiles_are_one_schedule_error():
    a, b = te.placeholder((8, 6), name="a"), te.placeholder((6, 4), name="b")
    c = nn.matmul(a, b)
    with pytest.raises(ScheduleError, match="does not fit"):
        generated_schedule([c], AVX512, ScheduleChoices(
            tiles=(TileChoices(((3, 3), (1, 4)), (1,)),)))
    with pytest.raises(ScheduleError, match="does not divide a reduction"):
        generated_schedule([c], AVX512, ScheduleChoices(
            tiles=(TileChoices(((1, 3), (1, 4)), (4,)),)))
    with pytest.raises(ScheduleError, match="tiles for 2 contractions"):
        tc = TileChoices(((1, 1), (1, 4)), (1,))
        generated_schedule([c], AVX512, ScheduleChoices(tiles=(tc, tc)))
    assert issubclass(ScheduleError, TilewiseError)


# ---- the space -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CONTRACTIONS))
def test_every_offered_config_instantiates_and_lowers(name):
    task = the_task(CONTRACTIONS[name]())
    space = task.config_space
    names = {k.name for k in space.knobs}
    assert {"tile0_at", "tile0_order", "tile0_unroll"} <= names
    assert space.is_offered(space.fallback.index)
    (c,) = contractions(group_compute(*task.args)[1], Target.from_str(AVX512))
    assert task.flop == 2.0 * math.prod(c.data) * math.prod(c.reduce)
    for index in space.sample(20, np.random.default_rng(3)):
        s, tensors = task.instantiate(space.get(index))
        lower(s, list(tensors), "kernel", workspace=True)


def test_the_fallback_is_the_schedule_compiled_without_a_database():
    task = the_task(conv_graph())
    s, tensors = task.instantiate(task.config_space.fallback)
    params, outs = group_compute(*task.args)
    rules = generated_schedule(outs, task.target)
    tgt = Target.from_str(AVX512)
    assert (generate_c(lower(s, list(tensors), "k"), tgt)
            == generate_c(lower(rules, [*params, *outs], "k"), tgt))


@pytest.mark.compiles
@pytest.mark.parametrize("name", sorted(CONTRACTIONS))
def test_random_tiles_build_and_match_numpy(name):
    task = the_task(CONTRACTIONS[name](), HOST)
    space = task.config_space
    rng = np.random.default_rng(11)
    picks = [space.fallback.index, *space.sample(4, rng, exclude=[space.fallback.index])]
    make = task.reference()
    for index in picks:
        config = space.get(index)
        s, tensors = task.instantiate(config)
        mod = tw.build(s, list(tensors), target=task.target)
        arrays, expected = make(np.random.default_rng(index))
        arrays = list(arrays)
        mod(*arrays)
        assert check_outputs(arrays, expected) is None, str(config)


def test_tiles_sweep_the_reused_axis_inside_the_others():
    """Consecutive tiles share the panel of the factor read along the last axis (B's
    columns, the input's window): the rows' outer loop runs inside the columns'."""
    a, b = te.placeholder((64, 48), name="a"), te.placeholder((48, 96), name="b")
    c = nn.matmul(a, b)
    tc = TileChoices(((2, 4), (1, 32)), (4,))
    for inner, first in ((True, "i1.outer"), (False, "i0.outer")):
        s = generated_schedule([c], AVX512, ScheduleChoices(
            tiles=(dataclasses.replace(tc, reuse_inner=inner),)))
        assert str(lower(s, [a, b, c], "k")).split("parallel for ")[1].startswith(first)


def _random_tiles(c, rng) -> TileChoices:
    """Tiles for contraction ``c`` drawn at random: any that fit its axes."""
    spatial = []
    for n in c.data:
        i = int(rng.choice([d for d in range(1, n + 1) if d <= 32]))
        spatial.append((int(rng.integers(1, n // i + 1)), i))
    reduce = tuple(int(rng.choice([d for d in range(1, n + 1) if n % d == 0 and d <= 8]))
                   for n in c.reduce)
    flags = [bool(x) for x in rng.integers(0, 2, 5)]
    return TileChoices(tuple(spatial), reduce, *flags)


@pytest.mark.compiles
@pytest.mark.parametrize("kind", ["batch", "broadcast", "conv"])
def test_random_tile_choices_in_either_order_match_numpy(kind):
    rng = np.random.default_rng(5)
    x = te.placeholder((1, 6, 9, 11), name="x")
    w = te.placeholder((10, 6, 3, 3), name="w")
    a, b = te.placeholder((2, 13, 20), name="a"), te.placeholder((2, 20, 35), name="b")
    out, params = {
        "batch": (nn.matmul(a, b), [a, b]),
        "broadcast": (nn.matmul(te.placeholder((13, 20), name="a2"), b), None),
        "conv": (nn.conv2d(x, w, pads=(1, 1, 1, 1)), [x, w]),
    }[kind]
    if params is None:
        params = [t for t in out.op.input_tensors if t.op.name in ("a2", "b")]
        params = sorted(params, key=lambda t: t.op.name)
    (c,) = contractions([out], Target.from_str(HOST))
    arrays = [rng.standard_normal([int(d) for d in t.shape]).astype("float32")
              for t in params]
    want = (np.matmul(arrays[0], arrays[1]) if kind != "conv"
            else _conv_numpy(arrays[0], arrays[1], 1))
    for _ in range(4):
        tc = _random_tiles(c, rng)
        s = generated_schedule([out], HOST, ScheduleChoices(tiles=(tc,)))
        mod = tw.build(s, [*params, out], target=HOST)
        got = np.zeros([int(d) for d in out.shape], "float32")
        mod(*arrays, got)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=str(tc))


def _conv_numpy(x: np.ndarray, w: np.ndarray, pad: int) -> np.ndarray:
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    F, _, R, S = w.shape
    OH, OW = xp.shape[2] - R + 1, xp.shape[3] - S + 1
    out = np.zeros((x.shape[0], F, OH, OW), np.float64)
    for r in range(R):
        for s_ in range(S):
            out += np.einsum("nchw,fc->nfhw", xp[:, :, r:r + OH, s_:s_ + OW], w[:, :, r, s_])
    return out.astype(np.float32)


# ---- a compute no template covers --------------------------------------------------------


@pytest.mark.compiles
def test_an_attention_score_is_tuned_in_its_generated_space_and_checked(tmp_path):
    q, k, p = attention_compute(2, 24, 16)
    assert sum(is_contraction(st, body) for st, body in stages_of([p])) == 1
    task = at.Task("test_attention_scores", (2, 24, 16), HOST,
                   template_module="tiling_templates")
    space = task.config_space
    assert "tile0_s2" in {kn.name for kn in space.knobs}
    db = at.Database(tmp_path / "t.db")
    builder = at.LocalBuilder(n_parallel=2, timeout=60)
    try:
        option = at.MeasureOption(builder, at.LocalRunner(number=2, repeat=2, timeout=30),
                                  batch_size=4)
        tuner = at.tuners.ModelTuner(task, seed=0, plan_size=4)
        summary = tuner.tune(6, option, database=db)
    finally:
        builder.close()
    records = db.records(task)
    assert summary.measured == 6 == len(records)
    assert all(r.result.ok for r in records), [r.result.error_msg for r in records]
    best = db.best(task)
    s, tensors = task.instantiate(best.config)
    mod = tw.build(s, list(tensors), target=HOST)
    rng = np.random.default_rng(5)
    qa, ka = (rng.standard_normal((2, 24, 16)).astype(np.float32) for _ in range(2))
    out = np.zeros((2, 24, 24), np.float32)
    mod(qa, ka, out)
    np.testing.assert_allclose(out, attention_numpy(qa, ka), rtol=1e-4, atol=1e-6)


# ---- whole models with the templates ignored ------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model():
    """A small convolutional network from the zoo's builders: a strided convolution,
    max pooling, a residual block with its 1x1 downsampling, a depthwise convolution,
    global pooling and a fully connected layer."""
    pytest.importorskip("onnx")
    from tilewise.models._onnx import GraphBuilder as OnnxBuilder
    from tilewise.models.resnet import _basic, _conv_bn

    g = OnnxBuilder("tiny", 17, 0)
    x = g.input("input", [1, 3, 16, 16])
    x = _conv_bn(g, x, "stem", 1, 3, 8, 3, stride=2)
    x = g.node("MaxPool", [x], "pool", kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)
    x = _basic(g, x, "block", 8, 16, 2)
    x = g.conv(x, "dw", 16, 16, 3, group=16, bias=True)
    x = g.node("GlobalAveragePool", [x], "gap")
    x = g.node("Flatten", [x], "flatten", axis=1)
    g.linear(x, "fc", 16, 10, out="output")
    return g.model([("output", [1, 10])])


def ort_outputs(model, feeds):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(model.SerializeToString())
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds),
                    strict=True))


def test_without_templates_every_kernel_is_a_generated_task(tiny_model):
    graph = import_model(tiny_model)
    tasks = extract_tasks(graph, AVX512, templates=False)
    kernels = [g for g in partition(graph) if not _is_view(graph, g)]
    assert all(t.name == GENERATED for t, _ in tasks)
    assert sum(n for _, n in tasks) == len(kernels)
    labels = {"+".join(n[0] for n in t.args[1]) for t, _ in tasks}
    assert {"conv2d+relu", "max_pool2d", "conv2d+add+relu", "matmul+add"} <= labels
    anchors = extract_tasks(graph, AVX512)
    assert {t.name for t, _ in anchors} >= {"conv2d_nchw", "depthwise_conv2d_nchw", "dense"}


@pytest.mark.compiles
def test_a_model_compiled_without_templates_matches_onnxruntime(tiny_model, tmp_path):
    from tilewise import models
    from tilewise.cli import main

    feeds = models.example_inputs(tiny_model)
    want = ort_outputs(tiny_model, feeds)
    path = tmp_path / "tiny.onnx"
    path.write_bytes(tiny_model.SerializeToString())
    out = tmp_path / "tiny.tw"
    assert main(["model", "compile", str(path), "--threads", "2", "--ignore-templates",
                 "-o", str(out)]) == 0
    compiled = tw.load_model(out)
    assert compiled.manifest["templates"] is False
    assert all(k["task"] is None for k in compiled.manifest["kernels"])  # no template
    got = compiled.run(feeds)
    np.testing.assert_allclose(got["output"], want["output"], rtol=1e-4, atol=1e-5)


@pytest.mark.compiles
def test_tune_model_without_templates_then_compile_matches_onnxruntime(tiny_model, tmp_path):
    """Tuned with fake timings, so the best records are configs the cost model picked
    at random: compiled, the model is still right."""
    from tilewise import models

    def cost(config):
        return 1e-4 * (1 + config.index % 7)

    fake = at.measure_option(at.FakeBuilder(), at.FakeRunner(cost))
    path = tmp_path / "t.db"
    report = tw.tune_model(tiny_model, path, HOST, trials=24, tuner="model", measure=fake,
                           confirm=False, templates=False)
    tasks = tw.extract_tasks(tiny_model, HOST, templates=False)
    assert report.trials == 24 and len(report.units) == len(tasks)
    assert all(u.task.startswith("generated(") for u in report.units)
    records = at.Database(path).all_records()
    assert all(r.result.ok for r in records), [r.result.error_msg for r in records]
    compiled = tw.compile_model(tiny_model, db=path, target=HOST, templates=False)
    assert sum(k["tuned"] for k in compiled.manifest["kernels"]) == len(tasks)
    feeds = models.example_inputs(tiny_model)
    got = compiled.run(feeds)
    want = ort_outputs(tiny_model, feeds)
    np.testing.assert_allclose(got["output"], want["output"], rtol=1e-4, atol=1e-5)


def test_the_command_passes_ignore_templates_to_the_model_tuner(tiny_model, monkeypatch,
                                                                tmp_path):
    from tilewise import model_tune
    from tilewise.cli import main

    path = tmp_path / "tiny.onnx"
    path.write_bytes(tiny_model.SerializeToString())
    asked = {}

    def tune_model(model, db, target, **kwargs):
        asked.update(kwargs)
        return model_tune.TuneModelReport(target, "gradient", "model")

    monkeypatch.setattr(model_tune, "tune_model", tune_model)
    command = ["model", "tune", str(path), "--db", str(tmp_path / "t.db"), "--trials", "8",
               "--json"]
    assert main([*command, "--ignore-templates"]) == 0
    assert asked["templates"] is False
    assert main(command) == 0
    assert asked["templates"] is True
