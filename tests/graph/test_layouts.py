"""Layout planning: which values between kernels stay in channel blocks, on graphs
built by hand (each case of the rule) and on the zoo's (golden listings)."""

from __future__ import annotations

import numpy as np
import pytest
from graph_testing import GraphBuilder, check_golden

from tilewise.graph.layouts import fused, listing
from tilewise.graph.tasks import extract_tasks
from tilewise.model import import_model
from tilewise.target import Target

TARGET = "c -cores=2"
BLOCK = Target.from_str(TARGET).vector_lanes(4)

pytestmark = pytest.mark.skipif(BLOCK < 4, reason="a target without vectors keeps NCHW")


def _conv(b: GraphBuilder, x: str, cin: int, cout: int, k: int = 1, stride: int = 1,
          groups: int = 1, relu: bool = True) -> str:
    rng = np.random.default_rng(len(b.nodes))
    w = b.const(f"w{len(b.nodes)}", rng.standard_normal((cout, cin // groups, k, k)))
    pad = k // 2
    y = b.op("conv2d", x, w, strides=(stride, stride), pads=(pad,) * 4, dilations=(1, 1),
             groups=groups)
    return b.op("relu", y) if relu else y


def _blocks(graph):
    return fused(graph, TARGET)[1]


def test_values_between_convolutions_stay_in_blocks():
    b = GraphBuilder()
    x = b.input("x", 1, 16, 12, 12)
    expand = _conv(b, x, 16, 2 * BLOCK)
    depthwise = _conv(b, expand, 2 * BLOCK, 2 * BLOCK, k=3, stride=2, groups=2 * BLOCK)
    project = _conv(b, depthwise, 2 * BLOCK, 2 * BLOCK, relu=False)
    out = _conv(b, project, 2 * BLOCK, 16, k=3)  # a direct convolution: NCHW out
    assert _blocks(b.build(out)) == {expand: BLOCK, depthwise: BLOCK, project: BLOCK}


def test_a_pointwise_gemm_over_positions_writing_nchw_reads_nchw():
    """Its untuned kernel reads NCHW rows as they lie; given blocks it would transpose."""
    b = GraphBuilder()
    x = b.input("x", 1, 16, 56, 56)
    a = _conv(b, x, 16, 2 * BLOCK, k=3)
    graph = b.build(_conv(b, a, 2 * BLOCK, 24))
    call = next(t for t, _ in extract_tasks(graph, TARGET) if t.args[5] == 1)
    assert call.config_space.fallback["vectors"].val == "pixels"
    assert _blocks(graph) == {}
    # with its output in blocks, the same GEMM reads them
    b = GraphBuilder()
    a = _conv(b, b.input("x", 1, 16, 56, 56), 16, 2 * BLOCK, k=3)
    c = _conv(b, _conv(b, a, 2 * BLOCK, BLOCK), BLOCK, 16, k=3)
    assert a in _blocks(b.build(c))


def test_model_inputs_outputs_and_other_readers_keep_nchw():
    b = GraphBuilder()
    x = b.input("x", 1, BLOCK, 12, 12)
    a = _conv(b, x, BLOCK, BLOCK)
    pooled = b.op("max_pool2d", a, kernel=(2, 2), strides=(2, 2), pads=(0, 0, 0, 0),
                  dilations=(1, 1), ceil_mode=False)
    c = _conv(b, pooled, BLOCK, BLOCK)
    d = _conv(b, c, BLOCK, BLOCK)
    graph = b.build(d, c)  # c is an output as well as d's data
    assert _blocks(graph) == {}


def test_channels_that_are_not_whole_blocks_keep_nchw():
    b = GraphBuilder()
    x = b.input("x", 1, 8, 10, 10)
    a = _conv(b, x, 8, BLOCK + 4)
    graph = b.build(_conv(b, a, BLOCK + 4, 8))
    assert _blocks(graph) == {}


def test_a_layer_winograd_runs_keeps_its_neighbours_nchw():
    """Untuned, a 3x3 stride-1 layer of 32 channels and more runs Winograd, which
    reads and writes NCHW."""
    b = GraphBuilder()
    x = b.input("x", 1, 32, 14, 14)
    a = _conv(b, x, 32, 32)
    c = _conv(b, a, 32, 32, k=3)
    graph = b.build(_conv(b, c, 32, 32))
    assert _blocks(graph) == {}


def test_a_residual_takes_its_readers_output_layout():
    b = GraphBuilder()
    x = b.input("x", 1, 16, 8, 8)
    a = _conv(b, x, 16, BLOCK)
    c = _conv(b, a, BLOCK, BLOCK, k=3, relu=False)
    s = b.op("add", c, a)  # a is c's residual as well as its data
    assert _blocks(b.build(s)) == {}  # s is the model's output: NCHW, so a is too
    t = _conv(b, s, BLOCK, 16, k=3)
    assert _blocks(b.build(t)) == {a: BLOCK, s: BLOCK}


def test_an_output_in_blocks_needs_its_residual_in_blocks():
    b = GraphBuilder()
    x = b.input("x", 1, 16, 8, 8)
    r = _conv(b, x, 16, BLOCK, k=3)
    pooled = b.op("max_pool2d", r, kernel=(2, 2), strides=(2, 2), pads=(0, 0, 0, 0),
                  dilations=(1, 1), ceil_mode=False)  # r stays NCHW for the pooling
    a = _conv(b, x, 16, BLOCK, k=3)
    s = b.op("add", _conv(b, a, BLOCK, BLOCK, k=3, relu=False), r)
    t = _conv(b, s, BLOCK, 16, k=3)  # would take s in blocks, but s's residual is NCHW
    assert _blocks(b.build(t, pooled)) == {a: BLOCK}


def test_without_layouts_nothing_is_blocked():
    b = GraphBuilder()
    x = b.input("x", 1, 16, 12, 12)
    a = _conv(b, x, 16, BLOCK)
    graph = b.build(_conv(b, a, BLOCK, 16, k=3))
    assert fused(graph, TARGET)[1] == {a: BLOCK}
    assert fused(graph, TARGET, layouts=False)[1] == {}
    assert fused(graph, TARGET, templates=False)[1] == {}


@pytest.mark.skipif(BLOCK != 16, reason="the golden listings are of 16-lane vectors")
@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet50"])
def test_zoo_listing(name):
    models = pytest.importorskip("tilewise.models")
    graph = import_model(models.build(name))
    groups, blocks = fused(graph, TARGET)
    check_golden(f"layouts_{name}", listing(groups, blocks))
