"""graph.compute: every operator of docs/graph-ops.md has a te compute (the anchors'
serve where the operator templates are ignored), which, scheduled by rule and built,
agrees with NumPy."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

import tilewise as tw
from tilewise import te
from tilewise.autotune.generated import generated_schedule
from tilewise.errors import ModelError
from tilewise.graph import Node
from tilewise.graph.compute import ANCHORS, COMPUTES, node_compute
from tilewise.graph.ops import op_def
from tilewise.target import Target

DOC = Path(__file__).resolve().parents[2] / "docs" / "graph-ops.md"
T = Target.from_str("c")


def documented_ops() -> set[str]:
    ops = set()
    for line in DOC.read_text().splitlines():
        if line.startswith("| `"):
            ops.update(re.findall(r"`(\w+)`", line.split("|")[1]))
    return ops


def test_every_op_has_a_compute():
    ops = documented_ops()
    assert ANCHORS <= ops
    assert set(COMPUTES) == ops


def rand(shape, seed, lo=-2.0, hi=2.0, dtype="float32"):
    return np.random.default_rng(seed).uniform(lo, hi, size=shape).astype(dtype)


def _erf(a):
    return np.vectorize(math.erf)(a.astype(np.float64)).astype(a.dtype)


def _layer_norm(x, g, b=None):
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return [(x - mu) / np.sqrt(var + 1e-5) * g + (0 if b is None else b)]


X = rand((3, 5, 7), 1)
POS = rand((3, 5, 7), 2, lo=0.1)
Y = rand((5, 1), 3)
COND = np.random.default_rng(4).integers(0, 2, (3, 1, 7)).astype(bool)
NCHW = rand((2, 3, 5, 7), 5)
CH = [rand((3,), 6 + k, lo=0.1) for k in range(4)]
IDX = np.array([[4, 0], [-1, 2]], np.int64)
WEIGHT = rand((4, 3, 3, 2), 10)
DEPTHWISE = rand((3, 1, 3, 3), 11)


def _evaluated(op: str, attrs: dict):
    """The graph's own NumPy evaluation of ``op`` (checked against ONNX Runtime
    elsewhere): the reference of the anchors' computes."""
    def ref(*arrays):
        node = Node(op, tuple(f"in{k}" for k in range(len(arrays))), ("out0",), attrs)
        return op_def(op).evaluate(node, list(arrays))

    return ref


CONV = {"strides": (2, 1), "pads": (1, 0, 2, 1), "dilations": (1, 2), "groups": 1}
MAX_POOL = {"kernel": (3, 2), "strides": (2, 1), "pads": (1, 0, 1, 1), "dilations": (1, 1),
            "ceil_mode": True}
AVG_POOL = {"kernel": (3, 3), "strides": (2, 2), "pads": (1, 1, 1, 1), "dilations": (1, 2),
            "ceil_mode": True, "count_include_pad": False}

# op -> (attrs, inputs, NumPy reference of the outputs)
CASES = {
    "relu": ({}, [X], lambda x: [np.maximum(x, 0)]),
    "sigmoid": ({}, [X], lambda x: [1 / (1 + np.exp(-x))]),
    "tanh": ({}, [X], lambda x: [np.tanh(x)]),
    "erf": ({}, [X], lambda x: [_erf(x)]),
    "sqrt": ({}, [POS], lambda x: [np.sqrt(x)]),
    "exp": ({}, [X], lambda x: [np.exp(x)]),
    "log": ({}, [POS], lambda x: [np.log(x)]),
    "neg": ({}, [X], lambda x: [-x]),
    "abs": ({}, [X], lambda x: [np.abs(x)]),
    "reciprocal": ({}, [POS], lambda x: [1 / x]),
    "clip": ({"min": -0.5, "max": None}, [X], lambda x: [np.maximum(x, -0.5)]),
    "gelu": ({"approximate": "none"}, [X],
             lambda x: [0.5 * x * (1 + _erf(x / np.float32(math.sqrt(2))))]),
    "cast": ({"to": "int32"}, [X * 3], lambda x: [x.astype(np.int32)]),
    "add": ({}, [X, Y], lambda a, b: [a + b]),
    "sub": ({}, [X, Y], lambda a, b: [a - b]),
    "mul": ({}, [X, Y], lambda a, b: [a * b]),
    "div": ({}, [X, Y], lambda a, b: [a / b]),
    "pow": ({}, [POS, Y], lambda a, b: [a**b]),
    "max": ({}, [X, Y], lambda a, b: [np.maximum(a, b)]),
    "min": ({}, [X, Y], lambda a, b: [np.minimum(a, b)]),
    "equal": ({}, [X, X[:, :, :1]], lambda a, b: [a == b]),
    "less": ({}, [X, Y], lambda a, b: [a < b]),
    "greater": ({}, [X, Y], lambda a, b: [a > b]),
    "where": ({}, [COND, X, Y], lambda c, a, b: [np.where(c, a, b)]),
    "batch_norm": ({"epsilon": 1e-5}, [NCHW, *CH], lambda x, s, b, m, v: [
        (x - m[:, None, None]) / np.sqrt(v[:, None, None] + 1e-5) * s[:, None, None]
        + b[:, None, None]]),
    "softmax": ({"axis": 1}, [X], lambda x: [np.exp(x - x.max(1, keepdims=True))
                                             / np.exp(x - x.max(1, keepdims=True))
                                             .sum(1, keepdims=True)]),
    "layer_norm": ({"axis": 2, "epsilon": 1e-5}, [X, X[0, 0], X[1, 1]], _layer_norm),
    "global_avg_pool": ({}, [NCHW], lambda x: [x.mean((2, 3), keepdims=True)]),
    "reduce_mean": ({"axes": (0, 2), "keepdims": True}, [X],
                    lambda x: [x.mean((0, 2), keepdims=True)]),
    "reduce_sum": ({"axes": (1,), "keepdims": False}, [X], lambda x: [x.sum(1)]),
    "reduce_max": ({"axes": (2,), "keepdims": False}, [X], lambda x: [x.max(2)]),
    "reshape": ({"shape": (7, 15)}, [X], lambda x: [x.reshape(7, 15)]),
    "transpose": ({"perm": (2, 0, 1)}, [X], lambda x: [x.transpose(2, 0, 1)]),
    "concat": ({"axis": 1}, [X, X[:, :2], X[:, 1:]],
               lambda *xs: [np.concatenate(xs, 1)]),
    "split": ({"axis": 2, "sizes": (2, 5)}, [X], lambda x: [x[:, :, :2], x[:, :, 2:]]),
    "slice": ({"starts": (1, 4, 0), "ends": (3, 0, 7), "steps": (1, -2, 3)}, [X],
              lambda x: [x[1:3, 4:0:-2, 0:7:3]]),
    "gather": ({"axis": 1}, [X, IDX], lambda x, i: [np.take(x, i, 1)]),
    "expand": ({"shape": (2, 5, 3)}, [Y], lambda y: [np.broadcast_to(y, (2, 5, 3))]),
    "pad": ({"pads": (0, 1, 2, 1, 0, 3), "value": -np.inf}, [X],
            lambda x: [np.pad(x, ((0, 1), (1, 0), (2, 3)), constant_values=-np.inf)]),
    "conv2d": (CONV, [NCHW, WEIGHT, CH[0][:1].repeat(4)], _evaluated("conv2d", CONV)),
    "matmul": ({}, [rand((2, 1, 4, 3), 12), rand((3, 3, 5), 13)],
               lambda a, b: [np.matmul(a, b)]),
    "max_pool2d": (MAX_POOL, [NCHW], _evaluated("max_pool2d", MAX_POOL)),
    "avg_pool2d": (AVG_POOL, [NCHW], _evaluated("avg_pool2d", AVG_POOL)),
}

DEPTHWISE_CONV = {"strides": (1, 2), "pads": (1, 1, 1, 1), "dilations": (1, 1), "groups": 3}
INCLUDE_PAD = {**AVG_POOL, "dilations": (1, 1), "count_include_pad": True}
#: More ways to call an anchor's compute: (op, attrs, inputs, reference).
VARIANTS = {
    "depthwise": ("conv2d", DEPTHWISE_CONV, [NCHW, DEPTHWISE],
                  _evaluated("conv2d", DEPTHWISE_CONV)),
    "matmul-vector-matrix": ("matmul", {}, [rand((3,), 14), rand((2, 3, 5), 15)],
                             lambda a, b: [np.matmul(a, b)]),
    "matmul-matrix-vector": ("matmul", {}, [rand((4, 3), 16), rand((3,), 17)],
                             lambda a, b: [np.matmul(a, b)]),
    "avg-pool-counting-pads": ("avg_pool2d", INCLUDE_PAD, [NCHW],
                               _evaluated("avg_pool2d", INCLUDE_PAD)),
}


def test_cases_cover_every_compute():
    assert set(CASES) == set(COMPUTES)


@pytest.mark.compiles
@pytest.mark.parametrize("op", sorted(CASES))
def test_node_compute_matches_numpy(op):
    check_compute(op, *CASES[op])


@pytest.mark.compiles
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_anchor_compute_variants_match_numpy(variant):
    check_compute(*VARIANTS[variant])


def check_compute(op, attrs, arrays, ref):
    arrays = [np.ascontiguousarray(a) for a in arrays]
    expected = ref(*arrays)
    ins = [te.placeholder(a.shape, str(a.dtype), name=f"in{k}") for k, a in enumerate(arrays)]
    node = Node(op, tuple(f"in{k}" for k in range(len(ins))),
                tuple(f"out{k}" for k in range(len(expected))), attrs, name=f"/model/{op}_0")
    outs = node_compute(node, ins)
    mod = tw.build(generated_schedule(outs, T), [*ins, *outs], target=T)
    got = [np.zeros(o.shape, o.dtype.numpy) for o in outs]
    mod(*arrays, *got)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == np.asarray(e).dtype
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    # and the graph's own evaluation (constant folding, the reference interpreter)
    for g, e in zip(got, op_def(op).evaluate(node, arrays), strict=True):
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


def test_layer_norm_bias_omitted():
    x, g = te.placeholder((4, 6), name="x"), te.placeholder((6,), name="g")
    node = Node("layer_norm", ("x", "g", ""), ("y",), {"axis": 1, "epsilon": 1e-5})
    for ins in ([x, g], [x, g, None]):
        (y,) = node_compute(node, ins)
        assert y.shape == (4, 6)


def test_no_compute_is_a_model_error():
    with pytest.raises(ModelError, match="no te compute"):
        node_compute(Node("no_such_op", ("x",), ("y",), name="n0"), [te.placeholder((2, 2))])


def test_bad_nodes_are_model_errors():
    x = te.placeholder((3, 4), name="x")
    with pytest.raises(ModelError, match="'perm' is missing"):
        node_compute(Node("transpose", ("x",), ("y",), name="t0"), [x])
    with pytest.raises(ModelError, match="t1.*permutation"):
        node_compute(Node("transpose", ("x",), ("y",), {"perm": (0, 0)}, name="t1"), [x])
    with pytest.raises(ModelError, match="needs 2 input"):
        node_compute(Node("add", ("x",), ("y",)), [x])
    with pytest.raises(ModelError, match="output"):
        node_compute(Node("relu", ("x",), ("y", "z")), [x])
