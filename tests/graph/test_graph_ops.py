"""The operator registry: the set of docs/graph-ops.md, shape rules that refuse bad
shapes, and NumPy evaluations that agree with the shape rules and with direct loops."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from graph_testing import GraphBuilder, feeds_for
from hypothesis import given, settings
from hypothesis import strategies as st

from tilewise.errors import ModelError
from tilewise.graph import Node, TensorType
from tilewise.graph.interpret import interpret
from tilewise.graph.ops import OpPattern, all_ops, evaluate, op_def

DOC = Path(__file__).resolve().parents[2] / "docs" / "graph-ops.md"


def _documented() -> dict[str, str]:
    """op name -> pattern, from the table of docs/graph-ops.md."""
    ops = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            for name in re.findall(r"`([a-z_0-9]+)`", cells[0]):
                ops[name] = cells[3]
    return ops


def test_registry_is_the_documented_set():
    doc = _documented()
    assert sorted(all_ops()) == sorted(doc)
    for name, pattern in doc.items():
        assert all_ops()[name].pattern is OpPattern[pattern.upper()], name


def test_unknown_operator():
    with pytest.raises(ModelError, match="unknown graph operator 'frobnicate'"):
        op_def("frobnicate")


F = "float32"


def _infer(op, *shapes, dtypes=None, **attrs):
    types = [TensorType(s, (dtypes or {}).get(i, F)) for i, s in enumerate(shapes)]
    node = Node(op, tuple(f"i{i}" for i in range(len(shapes))), ("o",), attrs, name="n1")
    return op_def(op).infer(node, types)


CONV = dict(strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), groups=1)
POOL = dict(kernel=(2, 2), strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), ceil_mode=0)


@pytest.mark.parametrize("op, shapes, attrs, match", [
    ("add", [(3, 2), (4,)], {}, r"add node 'n1': shapes \(3, 2\) and \(4,\) do not broadcast"),
    ("where", [(2,), (3,), (1,)], {}, "cond has element type float32"),
    ("conv2d", [(1, 3, 5, 5), (4, 2, 3, 3)], CONV, "input has 3 channels"),
    ("conv2d", [(1, 4, 5, 5), (3, 2, 3, 3)], {**CONV, "groups": 2}, "divisible by groups"),
    ("conv2d", [(1, 2, 3, 3), (4, 2, 4, 1)], CONV, "larger than the padded input"),
    ("conv2d", [(1, 2, 3, 3), (4, 2, 2, 2), (3,)], CONV, r"bias has shape \(3,\)"),
    ("conv2d", [(1, 2, 3, 3), (4, 2, 2, 2)], {**CONV, "strides": (0, 1)}, "must be positive"),
    ("conv2d", [(2, 3, 3), (4, 2, 2, 2)], CONV, "4-D input"),
    ("max_pool2d", [(1, 1, 3, 3)], {**POOL, "kernel": (2, 5)}, "larger than the padded"),
    ("avg_pool2d", [(1, 1, 3, 3)], POOL, "misses attribute 'count_include_pad'"),
    ("matmul", [(2, 3), (4, 5)], {}, "inner sizes differ"),
    ("matmul", [(2, 2, 3), (3, 3, 5)], {}, "do not broadcast"),
    ("reshape", [(2, 3)], {"shape": (4, 2)}, r"cannot reshape \(2, 3\)"),
    ("transpose", [(2, 3)], {"perm": (0, 0)}, "not a permutation"),
    ("concat", [(2, 3), (3, 3)], {"axis": 1}, "cannot join"),
    ("split", [(5, 2)], {"axis": 0, "sizes": (2, 2)}, "do not split"),
    ("slice", [(4,)], {"starts": (5,), "ends": (4,), "steps": (1,)}, "not a clamped slice"),
    ("slice", [(4,)], {"starts": (0,), "ends": (4,), "steps": (0,)}, "not a clamped slice"),
    ("expand", [(3, 2)], {"shape": (3, 1)}, "cannot broadcast"),
    ("reduce_sum", [(3, 2)], {"axes": (1, 0), "keepdims": 1}, "not sorted"),
    ("reduce_max", [(3, 0)], {"axes": (1,), "keepdims": 1}, "empty axis"),
    ("softmax", [(3, 2)], {"axis": 2}, "axis 2 is outside 0..1"),
    ("layer_norm", [(3, 4), (3,)], {"axis": 1, "epsilon": 1e-5}, "do not broadcast"),
    ("batch_norm", [(2, 3)] + [(4,)] * 4, {"epsilon": 1e-5}, r"scale is float32\[4\]"),
    ("relu", [(2,), (2,)], {}, "takes 1 inputs, not 2"),
    ("gelu", [(2,)], {"approximate": "fast"}, "approximate is 'fast'"),
    ("cast", [(2,)], {"to": "float16"}, "cannot cast to 'float16'"),
], ids=lambda v: v if isinstance(v, str) and " " not in v else None)
def test_shape_rules_refuse(op, shapes, attrs, match):
    with pytest.raises(ModelError, match=match):
        _infer(op, *shapes, **attrs)


def test_mixed_element_types_refused():
    with pytest.raises(ModelError, match="mixes element types float32 and int64"):
        _infer("add", (2,), (2,), dtypes={1: "int64"})


# -- evaluations agree with their shape rules and keep float32 -------------------------------

def _sample_nodes():
    b = GraphBuilder()
    x = b.input("x", 2, 3, 5, 4)
    v = b.input("v", 3, 4)
    b.const("w", np.ones((6, 3, 2, 3)))
    b.const("s", np.arange(3) + 1.0)
    b.const("idx", [[2, 0]], dtype="int64")
    outs = [
        b.op("sigmoid", x), b.op("gelu", x, approximate="tanh"), b.op("erf", v),
        b.op("clip", x, min=None, max=0.5), b.op("cast", v, to="int32"),
        b.op("pow", v, b.const("three", 3, "int64")), b.op("less", v, b.const("z", 0.0)),
        b.op("where", b.op("greater", v, b.const("z2", 0.1)), v, b.const("m", -1.0)),
        b.op("conv2d", x, "w", strides=(2, 1), pads=(1, 0, 0, 2), dilations=(1, 2),
             groups=1),
        b.op("batch_norm", x, "s", "s", "s", "s", epsilon=1e-5),
        b.op("matmul", x, b.const("k", np.ones((4, 7)))),
        b.op("softmax", x, axis=1), b.op("layer_norm", x, b.const("g", np.ones(4)), axis=3,
                                         epsilon=1e-5),
        b.op("max_pool2d", x, **{**POOL, "ceil_mode": 1, "strides": (2, 3)}),
        b.op("avg_pool2d", x, **{**POOL, "pads": (1, 1, 0, 0)}, count_include_pad=1),
        b.op("global_avg_pool", x),
        b.op("reduce_mean", x, axes=(1, 3), keepdims=0),
        b.op("reduce_max", x, axes=(0,), keepdims=1),
        b.op("transpose", x, perm=(3, 1, 0, 2)), b.op("reshape", x, shape=(6, 20)),
        b.op("concat", v, v, axis=0),
        *b.op("split", x, axis=2, sizes=(1, 4), n=2),
        b.op("slice", x, starts=(1, 2, 4, 0), ends=(2, -1, 0, 4), steps=(1, -1, -2, 3)),
        b.op("gather", x, "idx", axis=1), b.op("expand", v, shape=(2, 3, 4)),
    ]
    return b.build(*outs)


def test_evaluations_agree_with_shape_rules():
    graph = _sample_nodes()
    results = interpret(graph, feeds_for(graph))
    for name, value in results.items():
        want = graph.type_of(name)
        assert (value.shape, value.dtype.name) == (want.shape, want.dtype), name


def _direct_conv(x, w, b, strides, pads, dilations, groups):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (h + pads[0] + pads[2] - dilations[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - dilations[1] * (kw - 1) - 1) // strides[1] + 1
    y = np.zeros((n, o, oh, ow))
    og = o // groups
    for oc in range(o):
        g = oc // og
        for i in range(oh):
            for j in range(ow):
                for ki in range(kh):
                    for kj in range(kw):
                        patch = xp[:, g * cg:(g + 1) * cg, i * strides[0] + ki * dilations[0],
                                   j * strides[1] + kj * dilations[1]]
                        y[:, oc, i, j] += patch @ w[oc, :, ki, kj]
    return y + (0 if b is None else b.reshape(1, -1, 1, 1))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
       st.integers(1, 2), st.integers(1, 2), st.integers(0, 2), st.integers(1, 2),
       st.booleans(), st.integers(0, 1000))
def test_conv2d_matches_direct_loops(groups, cg, og, k, stride, dilation, pad, n, bias, seed):
    rng = np.random.default_rng(seed)
    h = w = dilation * (k - 1) + 1 + rng.integers(0, 4)
    x = rng.standard_normal((n, cg * groups, h, w + 1)).astype(F)
    wt = rng.standard_normal((og * groups, cg, k, k + 1 if k < 3 else k)).astype(F)
    b = rng.standard_normal(og * groups).astype(F) if bias else None
    attrs = dict(strides=(stride, 1), pads=(pad, 0, 0, pad), dilations=(dilation, 1),
                 groups=groups)
    node = Node("conv2d", ("x", "w") + (("b",) if bias else ()), ("y",), attrs, name="c")
    (got,) = evaluate(node, [x, wt] + ([b] if bias else []))
    want = _direct_conv(x, wt, b, **attrs)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_avg_pool_divisors():
    """count_include_pad counts explicit pads, never the ceil_mode overhang."""
    x = np.ones((1, 1, 3, 3), F)
    attrs = dict(kernel=(2, 2), strides=(2, 2), pads=(1, 1, 0, 0), dilations=(1, 1),
                 ceil_mode=1)
    excl = Node("avg_pool2d", ("x",), ("y",), {**attrs, "count_include_pad": 0})
    incl = Node("avg_pool2d", ("x",), ("y",), {**attrs, "count_include_pad": 1})
    np.testing.assert_array_equal(evaluate(excl, [x])[0], np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(evaluate(incl, [x])[0][0, 0], [[0.25, 0.5], [0.5, 1.0]])


def test_gelu_without_scipy(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "scipy.special", None)
    node = Node("gelu", ("x",), ("y",), {"approximate": "none"})
    x = np.array([-1.5, 0.0, 0.3], F)
    (y,) = evaluate(node, [x])
    assert y.dtype == np.float32
    want = [v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x.tolist()]
    np.testing.assert_allclose(y, want, rtol=1e-6)


def test_evaluate_names_the_node_when_numpy_refuses():
    node = Node("gather", ("d", "i"), ("y",), {"axis": 0}, name="g7")
    with pytest.raises(ModelError, match="gather node 'g7': an index lies outside"):
        evaluate(node, [np.zeros(3, F), np.array([5])])
