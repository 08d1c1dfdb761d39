"""ops.nn against NumPy, each built with the generated schedule; and the structure of
the schedules that rule-based generation gives (one parallel loop, vector loops)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import tilewise as tw
from tilewise import te
from tilewise.autotune.generated import ScheduleChoices, generated_schedule
from tilewise.errors import ScheduleError, TensorError
from tilewise.ops import nn
from tilewise.schedule import AttachKind
from tilewise.target import Target

pytestmark = pytest.mark.compiles

T = Target.from_str("c")
TP = dataclasses.replace(T, cores=max(2, T.cores))  # a parallel loop even on one core
RTOL = 1e-5


def run(outs, ins, arrays, target=T, choices=None):
    """Build ``outs`` over ``ins`` with the generated schedule, call it on ``arrays``;
    the module and the outputs."""
    s = generated_schedule(outs, target, choices)
    mod = tw.build(s, [*ins, *outs], target=target)
    got = [np.zeros(o.shape, o.dtype.numpy) for o in outs]
    mod(*arrays, *got)
    return mod, got


def check(outs, ins, arrays, expected, rtol=RTOL, atol=1e-6, **kw):
    mod, got = run(outs, ins, arrays, **kw)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == np.shape(e)
        if g.dtype == bool or g.dtype.kind == "i":
            np.testing.assert_array_equal(g, e)
        else:
            np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)
    return mod


def rand(shape, dtype="float32", seed=0, lo=-2.0, hi=2.0):
    return np.random.default_rng(seed).uniform(lo, hi, size=shape).astype(dtype)


def ph(a: np.ndarray, name: str):
    return te.placeholder(a.shape, str(a.dtype), name=name)


def count(source: str, what: str) -> int:
    return source.count(what)


# ---- element-wise --------------------------------------------------------------------

_ERF = np.vectorize(math.erf)

UNARY_REF = {
    "relu": lambda a: np.maximum(a, 0),
    "sigmoid": lambda a: 1 / (1 + np.exp(-a)),
    "tanh": np.tanh,
    "erf": lambda a: _ERF(a.astype(np.float64)).astype(a.dtype),
    "sqrt": np.sqrt,
    "exp": np.exp,
    "log": np.log,
    "neg": np.negative,
    "abs": np.abs,
    "reciprocal": np.reciprocal,
}


@pytest.mark.parametrize("kind", nn.UNARY)
def test_unary(kind):
    positive = kind in ("sqrt", "log", "reciprocal")
    a = rand((3, 5, 17), seed=1, lo=0.1 if positive else -2.0)
    x = ph(a, "x")
    check([nn.unary(kind, x)], [x], [a], [UNARY_REF[kind](a)])


def test_unary_float64_and_int():
    a = rand((7, 13), "float64", seed=2)
    x = ph(a, "x")
    check([nn.unary("tanh", x)], [x], [a], [np.tanh(a)], rtol=1e-12)
    b = np.arange(-6, 7, dtype=np.int64).reshape(13)
    y = ph(b, "y")
    check([nn.unary("abs", y), nn.unary("relu", y)], [y], [b], [np.abs(b), np.maximum(b, 0)])
    with pytest.raises(TensorError, match="float"):
        nn.unary("exp", y)
    with pytest.raises(TensorError, match="unknown"):
        nn.unary("cube", x)


@pytest.mark.parametrize("lo, hi", [(-0.5, 1.0), (None, 0.3), (0.0, None)])
def test_clip(lo, hi):
    a = rand((5, 13), seed=3)
    x = ph(a, "x")
    check([nn.clip(x, lo, hi)], [x], [a], [np.clip(a, lo, hi)])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(approximate):
    a = rand((3, 7, 5), seed=4, lo=-4, hi=4)
    x = ph(a, "x")
    a64 = a.astype(np.float64)
    if approximate == "none":
        ref = 0.5 * a64 * (1 + _ERF(a64 / math.sqrt(2)))
    else:
        ref = 0.5 * a64 * (1 + np.tanh(math.sqrt(2 / math.pi) * (a64 + 0.044715 * a64**3)))
    check([nn.gelu(x, approximate)], [x], [a], [ref.astype(np.float32)], atol=1e-6)


def test_cast():
    a = rand((5, 17), seed=5, lo=-4, hi=4)
    a[0, :3] = 0.0
    x = ph(a, "x")
    outs = [nn.cast(x, "int64"), nn.cast(x, "float64"), nn.cast(x, "bool"), nn.cast(x, "int32")]
    check(outs, [x], [a], [a.astype(np.int64), a.astype(np.float64), a.astype(bool),
                           a.astype(np.int32)])


# ---- broadcast -----------------------------------------------------------------------

BINARY_REF = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "pow": np.power, "max": np.maximum, "min": np.minimum, "equal": np.equal,
    "less": np.less, "greater": np.greater,
}


@pytest.mark.parametrize("kind", nn.BINARY)
def test_binary_broadcast(kind):
    a = rand((3, 1, 5), seed=6, lo=0.5 if kind == "pow" else -2.0)
    b = rand((4, 1), seed=7)
    if kind == "equal":
        b[1, 0] = a[2, 0, 3]
    x, y = ph(a, "a"), ph(b, "b")
    out = nn.binary(kind, x, y)
    assert out.shape == (3, 4, 5)
    check([out], [x, y], [a, b], [BINARY_REF[kind](a, b)])


def test_binary_scalar_and_rank0():
    """Rank-0 tensors broadcast against anything, and make a rank-0 result."""
    a = rand((13, 17), seed=8)
    s = np.array(1.5, np.float32)
    x, y = ph(a, "x"), ph(s, "s")
    check([nn.binary("mul", x, y), nn.binary("sub", y, y)], [x, y], [a, s], [a * s, s - s])


def test_integer_div_rounds_toward_zero():
    a = np.array([[7, -7, 7, -7, 0, 6]], np.int64)
    b = np.array([[2], [-2], [3]], np.int64)
    x, y = ph(a, "a"), ph(b, "b")
    check([nn.binary("div", x, y)], [x, y], [a, b], [np.trunc(a / b).astype(np.int64)])


def test_broadcast_mismatch():
    with pytest.raises(TensorError, match="broadcast"):
        nn.binary("add", te.placeholder((3, 4)), te.placeholder((5,)))
    assert nn.broadcast_shape((3, 1, 5), (4, 1), ()) == (3, 4, 5)


def test_where_and_compare_chain():
    """A comparison's bool feeding a select, all inlined in one kernel."""
    a, b = rand((3, 1, 5), seed=9), rand((4, 1), seed=10)
    c = rand((5,), seed=11)
    x, y, z = ph(a, "a"), ph(b, "b"), ph(c, "c")
    out = nn.where(nn.binary("greater", x, y), x, z)
    check([out], [x, y, z], [a, b, c], [np.where(a > b, a, c)])


def test_where_bool_input():
    cond = np.random.default_rng(12).integers(0, 2, (7, 1)).astype(bool)
    a, b = rand((7, 13), seed=13), rand((13,), seed=14)
    xc, x, y = ph(cond, "cond"), ph(a, "x"), ph(b, "y")
    check([nn.where(xc, x, y)], [xc, x, y], [cond, a, b], [np.where(cond, a, b)])


def test_expand():
    a = rand((3, 1), seed=15)
    x = ph(a, "x")
    out = nn.expand(x, (2, 3, 17))
    check([out], [x], [a], [np.broadcast_to(a, (2, 3, 17))])


def test_batch_norm():
    a = rand((2, 5, 3, 7), seed=16)
    p = [rand((5,), seed=17 + k) for k in range(4)]
    p[3] = np.abs(p[3]) + 0.1  # a variance
    ts = [ph(a, "x")] + [ph(v, n) for v, n in zip(p, ["scale", "bias", "mean", "var"],
                                                   strict=True)]
    out = nn.batch_norm(*ts, eps=1e-3)
    sc, bi, mu, var = (v.reshape(1, 5, 1, 1) for v in p)
    check([out], ts, [a, *p], [(a - mu) / np.sqrt(var + 1e-3) * sc + bi])


# ---- injective -----------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(15, 14), (5, 42), (210,), (2, 3, 35)])
def test_reshape(shape):
    a = rand((6, 35), seed=20)
    x = ph(a, "x")
    check([nn.reshape(x, shape)], [x], [a], [a.reshape(shape)])


def test_reshape_rank0_and_refusal():
    a = np.array([2.5], np.float32)
    x = ph(a, "x")
    check([nn.reshape(x, ())], [x], [a], [a.reshape(())])
    with pytest.raises(TensorError, match="elements"):
        nn.reshape(x, (2,))


@pytest.mark.parametrize("perm", [(1, 0, 2), (2, 0, 1), (0, 2, 1)])
def test_transpose(perm):
    a = rand((3, 5, 7), seed=21)
    x = ph(a, "x")
    check([nn.transpose(x, perm)], [x], [a], [a.transpose(perm)])


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_concat(axis):
    shapes = [(3, 5, 7), (3, 5, 7), (3, 5, 7)]
    arrays = []
    for k, s in enumerate(shapes):
        s = list(s)
        s[axis] = (2, 3, 5)[k]
        arrays.append(rand(tuple(s), seed=22 + k))
    xs = [ph(a, f"x{k}") for k, a in enumerate(arrays)]
    check([nn.concat(xs, axis)], xs, arrays, [np.concatenate(arrays, axis)])


def test_split_multi_output():
    """split's pieces are the outputs of one kernel: each gets its own loop nest."""
    a = rand((3, 17, 5), seed=25)
    x = ph(a, "x")
    outs = nn.split(x, 1, (5, 7, 5))
    mod = check(outs, [x], [a], np.split(a, [5, 12], axis=1))
    assert count(mod.source, "for (") >= 3


@pytest.mark.parametrize("starts, ends, steps", [
    ((0, 1, 2), (3, 5, 13), (1, 2, 3)),
    ((2, 4, 12), (-1, 0, 1), (-1, -1, -5)),
    ((1, 0, 0), (2, 5, 13), (5, 1, 1)),
])
def test_strided_slice(starts, ends, steps):
    a = rand((3, 5, 13), seed=26)
    x = ph(a, "x")
    ref = a[tuple(slice(b, None if e < 0 else e, t)
                  for b, e, t in zip(starts, ends, steps, strict=True))]
    check([nn.strided_slice(x, starts, ends, steps)], [x], [a], [ref])


def test_strided_slice_refuses_empty():
    with pytest.raises(TensorError, match="empty"):
        nn.strided_slice(te.placeholder((3, 5)), (0, 4), (3, 2), (1, 1))


@pytest.mark.parametrize("axis, ishape", [(0, (4,)), (1, (2, 3)), (2, ()), (1, (5,))])
def test_take(axis, ishape):
    a = rand((5, 7, 3), seed=27)
    n = a.shape[axis]
    ix = np.random.default_rng(28).integers(-n, n, ishape).astype(np.int64)
    x, i = ph(a, "data"), ph(ix, "indices")
    check([nn.take(x, i, axis)], [x, i], [a, ix], [np.take(a, ix, axis)])


def test_take_int32_indices_clamped():
    a = rand((5, 3), seed=29)
    ix = np.array([0, 4, -5, 9, -9], np.int32)
    x, i = ph(a, "data"), ph(ix, "indices")
    clamped = np.clip(np.where(ix < 0, ix + 5, ix), 0, 4)
    check([nn.take(x, i, 0)], [x, i], [a, ix], [a[clamped]])


# ---- reductions ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("axes, keepdims", [((1, 2), True), ((0,), False), ((2,), False),
                                            (None, False), ((0, 2), True), ((), True)])
def test_reduce(kind, axes, keepdims):
    a = rand((3, 5, 13), seed=30)
    x = ph(a, "x")
    ref = getattr(np, kind)(a, axis=axes, keepdims=keepdims)
    check([nn.reduce(kind, x, axes, keepdims)], [x], [a], [ref])


def test_reduce_int64_max_and_mean():
    a = np.random.default_rng(31).integers(-10**12, 10**12, (3, 7)).astype(np.int64)
    x = ph(a, "x")
    check([nn.reduce("max", x, (1,), False), nn.reduce("mean", x, (0,), True)], [x], [a],
          [a.max(1), np.trunc(a.sum(0, keepdims=True) / 3).astype(np.int64)])


@pytest.mark.parametrize("axis", [3, 1, 0])
def test_softmax(axis):
    a = rand((2, 12, 7, 13), seed=32, lo=-5, hi=5)
    x = ph(a, "x")
    e = np.exp(a.astype(np.float64) - a.max(axis, keepdims=True))
    check([nn.softmax(x, axis)], [x], [a], [e / e.sum(axis, keepdims=True)])


@pytest.mark.parametrize("axis, bias", [(2, True), (1, False), (0, True)])
def test_layer_norm(axis, bias):
    a = rand((3, 5, 17), seed=33)
    inner = a.shape[axis:]
    g = rand(inner[-1:], seed=34)  # broadcast over the normalised axes
    b = rand(inner, seed=35)
    x, xg, xb = ph(a, "x"), ph(g, "scale"), ph(b, "bias")
    out = nn.layer_norm(x, xg, xb if bias else None, axis, eps=1e-5)
    red = tuple(range(axis, 3))
    a64 = a.astype(np.float64)
    ref = (a64 - a64.mean(red, keepdims=True)) / np.sqrt(a64.var(red, keepdims=True) + 1e-5)
    ref = ref * g + (b if bias else 0)
    ins, arrays = ([x, xg, xb], [a, g, b]) if bias else ([x, xg], [a, g])
    check([out], ins, arrays, [ref], atol=1e-5)


def test_global_avg_pool():
    a = rand((2, 5, 7, 3), seed=36)
    x = ph(a, "x")
    check([nn.global_avg_pool(x)], [x], [a], [a.mean((2, 3), keepdims=True)])


# ---- the generated schedule ----------------------------------------------------------


def test_fused_chain_transpose_add_relu():
    """transpose -> add -> relu: one loop nest, one parallel loop, vector inner loop."""
    a = rand((61, 37, 13), seed=40)
    b = rand((37,), seed=41)
    x, y = ph(a, "x"), ph(b, "b")
    out = nn.unary("relu", nn.binary("add", nn.transpose(x, (0, 2, 1)), y))
    s = generated_schedule([out], TP)
    assert [st.attach_kind for st in s.stages if st.is_compute] == \
        [AttachKind.INLINE, AttachKind.INLINE, AttachKind.ROOT]
    mod = check([out], [x, y], [a, b], [np.maximum(a.transpose(0, 2, 1) + b, 0)], target=TP)
    assert count(mod.source, "omp parallel") == 1
    assert count(mod.source, "omp simd") >= 1


def test_softmax_rows_in_the_row_loop():
    """A row's max and sum, and its shifted row and exponentials (buffers of a row),
    are computed inside the parallel row loop; exp is called once an element."""
    a = rand((2, 12, 7, 13), seed=42)
    x = ph(a, "x")
    out = nn.softmax(x, 3)
    s = generated_schedule([out], TP)
    reds = [st for st in s.stages if st.is_compute and st.op.reduce_axis]
    assert len(reds) == 2 and all(st.attach_stage is s[out] for st in reds)
    rows = [st for st in s.stages if st.name in ("softmax_shift", "softmax_exp")]
    assert len(rows) == 2 and all(st.attach_stage is s[out] for st in rows)
    e = np.exp(a - a.max(3, keepdims=True))
    mod = check([out], [x], [a], [e / e.sum(3, keepdims=True)], target=TP)
    assert count(mod.source, "omp parallel") == 1
    assert count(mod.source, " = expf(") == 1
    par = mod.source.index("omp parallel")
    assert par < mod.source.index("softmax_max[0] = (-INFINITY)")


def test_layer_norm_rows_in_the_row_loop():
    """Both sums accumulate lane-wise (97 = 6 vectors and a tail), in the row loop, and
    the reciprocal square root is computed once a row."""
    a = rand((64, 97), seed=43)
    g, b = rand((97,), seed=44), rand((97,), seed=45)
    x, xg, xb = ph(a, "x"), ph(g, "g"), ph(b, "b")
    out = nn.layer_norm(x, xg, xb, 1)
    s = generated_schedule([out], TP)
    placed = [st for st in s.stages if st.is_compute and not st.is_output]
    assert all(st.attach_stage is s[out] for st in placed)
    assert {st.name for st in placed} >= {"layer_norm_sum_lanes", "layer_norm_sqsum_lanes",
                                           "layer_norm_rstd"}
    ref = (a - a.mean(1, keepdims=True)) / np.sqrt(a.var(1, keepdims=True) + 1e-5) * g + b
    mod = check([out], [x, xg, xb], [a, g, b], [ref], atol=1e-5, target=TP)
    assert count(mod.source, "omp parallel") == 1
    assert count(mod.source, "sqrtf(") == 1
    assert count(mod.source, "omp simd") == 5  # 2 x (zero the lanes, add), the output


def test_reduce_mean_keepdims_vectorises_along_rows():
    """A mean over axes (1, 2) of NCHW-like data: the sum runs its W loop inside the
    reduction loops, vectorised, inside the parallel loop of the quotient."""
    a = rand((8, 5, 7, 67), seed=46)
    x = ph(a, "x")
    out = nn.reduce("mean", x, (1, 2), keepdims=True)
    s = generated_schedule([out], TP)
    (red,) = [st for st in s.stages if st.is_compute and st.op.reduce_axis]
    assert red.attach_stage is s[out]
    kinds = [iv.kind.value for iv in red.leaf_iter_vars]
    assert kinds[-3:] == ["reduce", "reduce", "data_par"]
    mod = check([out], [x], [a], [a.mean((1, 2), keepdims=True)], target=TP)
    assert count(mod.source, "omp parallel") == 1
    assert count(mod.source, "omp simd") == 3  # the sum's zeroing and row, the quotient's


def test_column_sum_output_vectorised():
    """A reduction output over the leading axis: the row loop inside, vectorised."""
    a = rand((300, 67), seed=47)
    x = ph(a, "x")
    mod = check([nn.reduce("sum", x, (0,), False)], [x], [a], [a.sum(0)], rtol=1e-4)
    assert count(mod.source, "omp simd") == 2  # zeroing the row, adding to it


def test_small_kernel_stays_serial():
    a = rand((3, 5), seed=48)
    x = ph(a, "x")
    mod = check([nn.unary("exp", x)], [x], [a], [np.exp(a)])
    assert "omp parallel" not in mod.source


def test_vector_split_tail_and_unroll():
    """A row longer than a vector, not a multiple of it: split by the lanes, the tail
    guarded; the choices switch the split, the unrolling and the parallel loop."""
    tgt = dataclasses.replace(T, vector_bits=256, cores=2)
    a = rand((64, 101), seed=49)
    x = ph(a, "x")
    out = nn.unary("sigmoid", x)
    ref = 1 / (1 + np.exp(-a))
    for ch in (None, ScheduleChoices(unroll=2), ScheduleChoices(vector_split=False),
               ScheduleChoices(parallel_axes=0, vectorize=False)):
        s = generated_schedule([out], tgt, ch)
        inner = s[out].leaf_iter_vars[-1]
        if ch is None or ch.vector_split and ch.vectorize:
            assert inner.domain.extent == 8 * (ch.unroll if ch else 1)
        mod = check([out], [x], [a], [ref], target=tgt, choices=ch)
        vectorised = ch is None or ch.vectorize
        assert ("omp simd" in mod.source) == vectorised
        assert ("omp parallel" in mod.source) == (ch is None or ch.parallel_axes != 0)


def test_short_inner_axes_fused_for_the_vector():
    """Inner axes shorter than a vector are fused until the loop fills one."""
    tgt = dataclasses.replace(T, vector_bits=256)
    a = rand((4, 3, 5), seed=50)
    x = ph(a, "x")
    out = nn.unary("neg", x)
    s = generated_schedule([out], tgt)
    assert len(s[out].relations) >= 1  # the fuse of the two inner axes
    check([out], [x], [a], [-a], target=tgt)


def test_choices_attach_off_computes_reductions_at_root():
    a = rand((5, 13), seed=51)
    x = ph(a, "x")
    out = nn.softmax(x, 1)
    ch = ScheduleChoices(attach_reductions=False)
    s = generated_schedule([out], T, ch)
    assert all(st.attach_kind is AttachKind.ROOT for st in s.stages
               if st.is_compute and st.op.reduce_axis)
    e = np.exp(a - a.max(1, keepdims=True))
    check([out], [x], [a], [e / e.sum(1, keepdims=True)], choices=ch)


@pytest.mark.parametrize("kind", ["sum", "max", "min"])
@pytest.mark.parametrize("n", [31, 32, 33, 100, 1000])
def test_lane_reduction_output(kind, n):
    """A row reduction that is the kernel's output: lanes, tail and tree, any length."""
    a = rand((6, n), seed=52)
    x = ph(a, "x")
    out = nn.reduce(kind, x, (1,), keepdims=False)
    s = generated_schedule([out], TP)
    lanes = n >= 2 * TP.vector_lanes(4)
    assert any(st.name.endswith("_lanes") for st in s.stages) == lanes
    mod = check([out], [x], [a], [getattr(np, kind)(a, axis=1)], rtol=2e-5, target=TP)
    if lanes:
        assert "lane" in mod.source and count(mod.source, "omp simd") >= 2


def test_lane_reduction_keeps_other_reduction_axes():
    """Over axes (1, 2): the inner one splits into lanes and a tail, the outer one is a
    loop of the lanes' and the tail's reductions."""
    a = rand((3, 5, 40), seed=53)
    x = ph(a, "x")
    out = nn.reduce("mean", x, (1, 2), keepdims=True)
    ch = ScheduleChoices(accumulators=1)
    s = generated_schedule([out], T, ch)
    tail = next(st for st in s.stages if st.name.endswith("_tail"))
    assert len(tail.op.reduce_axis) == 2
    check([out], [x], [a], [a.mean((1, 2), keepdims=True)], choices=ch)


@pytest.mark.parametrize("ch", [ScheduleChoices(lane_reduce=False),
                                ScheduleChoices(accumulators=4),
                                ScheduleChoices(row_buffers=False),
                                ScheduleChoices(attach_reductions=False)])
def test_choices_of_row_reductions(ch):
    """Each knob of the row rules gives the same softmax and layer norm."""
    a = rand((16, 300), seed=54, lo=-20, hi=20)
    g = rand((300,), seed=55)
    x, xg = ph(a, "x"), ph(g, "g")
    sm, ln = nn.softmax(x, 1), nn.layer_norm(x, xg, None, 1)
    s = generated_schedule([sm], TP, ch)
    lanes = any(st.name.endswith("_lanes") for st in s.stages)
    assert lanes == ch.lane_reduce
    e = np.exp(a - a.max(1, keepdims=True))
    check([sm], [x], [a], [e / e.sum(1, keepdims=True)], target=TP, choices=ch)
    ref = (a - a.mean(1, keepdims=True)) / np.sqrt(a.var(1, keepdims=True) + 1e-5) * g
    check([ln], [x, xg], [a, g], [ref], atol=1e-5, target=TP, choices=ch)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_masked_flushes_to_zero(dtype):
    """An additive mask (-10000, -inf) gives exact zeros, the others as NumPy."""
    a = rand((4, 64), dtype, seed=56)
    a[:, ::5] = -10000.0
    a[1, 3] = -np.inf
    x = ph(a, "x")
    e = np.exp(a - a.max(1, keepdims=True))
    mod, (got,) = run([nn.softmax(x, 1)], [x], [a])
    np.testing.assert_allclose(got, e / e.sum(1, keepdims=True), rtol=RTOL, atol=1e-7)
    assert (got[:, ::5] == 0).all() and got[1, 3] == 0
    assert not np.isnan(got).any()


def test_row_buffer_larger_than_the_cache_is_inlined():
    """A row over half the second-level cache is not buffered: recomputed, still right."""
    tgt = dataclasses.replace(T, l2_bytes=1024)
    a = rand((4, 300), seed=57)
    x = ph(a, "x")
    out = nn.softmax(x, 1)
    s = generated_schedule([out], tgt)
    exp = next(st for st in s.stages if st.name == "softmax_exp")
    assert exp.attach_kind is AttachKind.INLINE
    e = np.exp(a - a.max(1, keepdims=True))
    check([out], [x], [a], [e / e.sum(1, keepdims=True)], target=tgt)


def test_choices_validated():
    with pytest.raises(ScheduleError):
        ScheduleChoices(unroll=0)
    with pytest.raises(ScheduleError):
        ScheduleChoices(accumulators=0)
    with pytest.raises(ScheduleError):
        generated_schedule([], T)
