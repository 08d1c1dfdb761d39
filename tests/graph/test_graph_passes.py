"""Each graph pass on a small graph: its printed result against a golden file in
tests/golden/graph/, and the same numbers before and after.

Regenerate after an intended change with ``TILEWISE_REGEN_GOLDEN=1 pytest tests/graph``
and review the diff of tests/golden/graph/.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from graph_testing import GraphBuilder, check_golden, feeds_for

from tilewise.graph import Graph
from tilewise.graph.interpret import interpret
from tilewise.graph.passes import (
    canonicalize,
    fold_batch_norm,
    fold_constants,
    optimize,
    remove_dead,
)

RNG = np.random.default_rng(3)


def _same_numbers(before: Graph, after: Graph, rtol: float = 1e-5) -> None:
    feeds = feeds_for(before)
    want, got = interpret(before, feeds), interpret(after, feeds)
    assert list(want) == list(got)
    for name in want:  # atol scaled to the output: cancellation leaves small values
        atol = rtol * float(np.max(np.abs(want[name]), initial=1e-2))
        np.testing.assert_allclose(got[name], want[name], rtol=rtol, atol=atol)


# -- fold_constants ---------------------------------------------------------------------

def _constant_chain() -> Graph:
    b = GraphBuilder("fold")
    x = b.input("x", 2, 3)
    wt = b.op("transpose", b.const("w", RNG.standard_normal((4, 3))), perm=(1, 0), out="wt")
    scaled = b.op("mul", wt, b.const("two", 2.0), out="scaled")
    y = b.op("matmul", x, scaled, out="y")
    n = b.op("reduce_sum", b.const("n", [1, 2, 3], "int64"), axes=(0,), keepdims=0, out="nsum")
    return b.build(y, n)


def test_fold_constants():
    before = _constant_chain()
    after = fold_constants(before)
    check_golden("fold_constants", after)
    assert [n.op for n in after] == ["matmul"]
    assert after.constants["nsum"].tolist() == 6
    _same_numbers(before, after)


def test_fold_constants_leaves_a_graph_without_constant_nodes_alone():
    g = fold_constants(_constant_chain())
    assert fold_constants(g) is g


# -- remove_dead ------------------------------------------------------------------------

def test_remove_dead():
    b = GraphBuilder("dead")
    x = b.input("x", 4, 3)
    top, rest = b.op("split", x, axis=0, sizes=(1, 3), out="part", n=2)
    b.op("exp", b.op("neg", rest, out="unused_neg"), out="unused_exp")
    b.op("mul", x, b.const("only_dead", 3.0), out="unused_mul")
    y = b.op("relu", top, out="y")
    before = b.build(y)
    after = remove_dead(before)
    check_golden("remove_dead", after)
    assert "only_dead" not in after.constants
    _same_numbers(before, after)


# -- fold_batch_norm --------------------------------------------------------------------

def _bn_params(b: GraphBuilder, prefix: str, c: int) -> list[str]:
    return [b.const(f"{prefix}_scale", RNG.uniform(0.5, 2, c)),
            b.const(f"{prefix}_bias", RNG.standard_normal(c)),
            b.const(f"{prefix}_mean", RNG.standard_normal(c)),
            b.const(f"{prefix}_var", RNG.uniform(0.5, 2, c))]


CONV = dict(strides=(1, 1), pads=(1, 1, 1, 1), dilations=(1, 1), groups=1)


def test_fold_batch_norm():
    b = GraphBuilder("bn")
    x = b.input("x", 1, 3, 5, 5)
    # folded: no bias yet, then one with a bias
    c1 = b.op("conv2d", x, b.const("w1", RNG.standard_normal((4, 3, 3, 3))), out="c1", **CONV)
    y1 = b.op("batch_norm", c1, *_bn_params(b, "bn1", 4), epsilon=1e-5, out="y1")
    c2 = b.op("conv2d", y1, b.const("w2", RNG.standard_normal((4, 4, 1, 1))),
              b.const("b2", RNG.standard_normal(4)), out="c2",
              **{**CONV, "pads": (0, 0, 0, 0)})
    y2 = b.op("batch_norm", c2, *_bn_params(b, "bn2", 4), epsilon=1e-3, out="y2")
    # not folded: the conv's output is also read by the add
    c3 = b.op("conv2d", y2, "w2", out="c3", **{**CONV, "pads": (0, 0, 0, 0)})
    y3 = b.op("batch_norm", c3, *_bn_params(b, "bn3", 4), epsilon=1e-5, out="y3")
    s = b.op("add", y3, c3, out="s")
    # not folded: the statistics are not constants; nor is a batch_norm of an input
    y4 = b.op("batch_norm", s, "bn3_scale", "bn3_bias", b.input("mean", 4), "bn3_var",
              epsilon=1e-5, out="y4")
    y5 = b.op("batch_norm", x, *_bn_params(b, "bn5", 3), epsilon=1e-5, out="y5")
    before = b.build(y4, y5)
    after = fold_batch_norm(before)
    check_golden("fold_batch_norm", after)
    assert [n.op for n in after].count("batch_norm") == 3
    _same_numbers(before, after, rtol=1e-4)


# -- canonicalize -----------------------------------------------------------------------

def _gelu_erf(b: GraphBuilder, x: str, spelling: str) -> str:
    if spelling == "mul-0.7071":
        arg = b.op("mul", b.const("r2", 0.7071), x)
    else:
        arg = b.op("div", x, b.const("sqrt2", 1.4142135))
    one_plus = b.op("add", b.const("one", 1.0), b.op("erf", arg))
    half = b.const("half", 0.5)
    if spelling == "half-first":  # (x * 0.5) * (1 + erf)
        return b.op("mul", b.op("mul", x, half), one_plus, out="y")
    if spelling == "half-inside":  # x * ((1 + erf) * 0.5)
        return b.op("mul", x, b.op("mul", one_plus, half), out="y")
    return b.op("mul", b.op("mul", x, one_plus), half, out="y")  # (x * (1 + erf)) * 0.5


@pytest.mark.parametrize("spelling", ["half-first", "half-last", "half-inside", "mul-0.7071"])
def test_canonicalize_erf_gelu(spelling):
    b = GraphBuilder("gelu")
    x = b.input("x", 3, 5)
    before = b.build(_gelu_erf(b, x, spelling))
    after = canonicalize(before)
    assert str(after) == "\n".join([
        "graph gelu(x: float32[3, 5])",
        "  y = gelu(x; approximate=none)  # y: float32[3, 5]",
        "  return y",
    ])
    _same_numbers(before, after, rtol=1e-4)  # 0.7071 is a rounded 1/sqrt(2)


@pytest.mark.parametrize("cube", ["pow", "mul"])
def test_canonicalize_tanh_gelu(cube):
    b = GraphBuilder("gelu_tanh")
    x = b.input("x", 2, 7)
    if cube == "pow":
        x3 = b.op("pow", x, b.const("three", 3.0))
    else:
        x3 = b.op("mul", b.op("mul", x, x), x)
    inner = b.op("add", x, b.op("mul", x3, b.const("k", 0.044715)))
    t = b.op("tanh", b.op("mul", b.const("c", math.sqrt(2 / math.pi)), inner))
    y = b.op("mul", b.op("mul", b.const("half", 0.5), x),
             b.op("add", t, b.const("one", 1.0)), out="y")
    before = b.build(y)
    after = canonicalize(before)
    check_golden("canonicalize_tanh_gelu", after)
    _same_numbers(before, after)


@pytest.mark.parametrize("square, divide", [("pow", "div"), ("mul", "reciprocal")])
def test_canonicalize_layer_norm(square, divide):
    b = GraphBuilder("ln")
    x = b.input("x", 2, 3, 8)
    mean = b.op("reduce_mean", x, axes=(2,), keepdims=1)
    d = b.op("sub", x, mean)
    sq = b.op("pow", d, b.const("two", 2.0)) if square == "pow" else b.op("mul", d, d)
    var = b.op("reduce_mean", sq, axes=(2,), keepdims=1)
    std = b.op("sqrt", b.op("add", var, b.const("eps", 1e-5)))
    if divide == "div":
        normed = b.op("div", d, std)
    else:
        normed = b.op("mul", b.op("reciprocal", std), d)
    scaled = b.op("mul", normed, b.const("gamma", RNG.uniform(0.5, 2, (1, 1, 8))))
    y = b.op("add", b.const("beta", RNG.standard_normal(8)), scaled, out="y")
    before = b.build(y)
    after = canonicalize(before)
    check_golden("canonicalize_layer_norm", after)  # one result for every spelling
    _same_numbers(before, after)


def test_canonicalize_layer_norm_not_on_a_leading_axis():
    b = GraphBuilder("not_ln")
    x = b.input("x", 4, 3)
    mean = b.op("reduce_mean", x, axes=(0,), keepdims=1)
    d = b.op("sub", x, mean)
    var = b.op("reduce_mean", b.op("mul", d, d), axes=(0,), keepdims=1)
    normed = b.op("div", d, b.op("sqrt", b.op("add", var, b.const("eps", 1e-5))))
    y = b.op("add", b.op("mul", normed, b.const("g", 2.0)), b.const("beta", 1.0), out="y")
    before = b.build(y)
    assert canonicalize(before) is before


def test_canonicalize_removes_no_ops():
    b = GraphBuilder("noops")
    x = b.input("x", 2, 3, 4)
    r1 = b.op("reshape", x, shape=(6, 4), out="r1")
    r2 = b.op("reshape", r1, shape=(2, 12), out="r2")  # reads x after the merge
    same = b.op("reshape", r2, shape=(2, 12), out="same")  # removed
    cast = b.op("cast", same, to="float32", out="cast")  # removed
    y = b.op("relu", cast, out="y")
    z = b.op("cast", y, to="float32", out="z")  # an output: relu writes z instead
    back = b.op("reshape", x, shape=(2, 3, 4), out="back")  # an output of an input: kept
    before = b.build(z, back, r1)
    after = canonicalize(before)
    check_golden("canonicalize_no_ops", after)
    _same_numbers(before, after)


# -- optimize ---------------------------------------------------------------------------

def test_optimize_runs_every_pass_until_nothing_changes():
    b = GraphBuilder("small_net")
    x = b.input("x", 1, 2, 6, 6)
    w = b.op("reshape", b.const("w_flat", RNG.standard_normal(72)), shape=(4, 2, 3, 3))
    c = b.op("conv2d", x, w, out="c", **CONV)
    y = b.op("batch_norm", c, *_bn_params(b, "bn", 4), epsilon=1e-5, out="bn")
    g = _gelu_erf(b, b.op("reshape", y, shape=(1, 4, 36), out="flat"), "half-last")
    b.op("exp", g, out="dead")
    before = b.build(g)
    after = optimize(before)
    check_golden("optimize", after)
    assert optimize(after) is after
    _same_numbers(before, after, rtol=1e-4)
