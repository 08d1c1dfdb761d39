"""sum / max / min reductions and a multi-stage softmax, against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from tilewise import te
from tw_testing import check, rand


@pytest.mark.parametrize("kind", ["sum", "max", "min"])
@pytest.mark.parametrize("split", [None, 4, 7])
def test_row_reduction(kind, split):
    A = te.placeholder((11, 23), name="A")
    k = te.reduce_axis((0, 23), name="k")
    fn = {"sum": te.sum, "max": te.max, "min": te.min}[kind]
    R = te.compute((11,), lambda i: fn(A[i, k], axis=k), name="R")
    s = te.create_schedule(R.op)
    if split:
        ko, ki = s[R].split(k, split)
        s[R].unroll(ki)
    a = rand(A.shape, seed=10)
    ref = {"sum": a.sum(1), "max": a.max(1), "min": a.min(1)}[kind]
    check(s, [A, R], [a], ref, rtol=1e-5)


def test_multi_axis_full_reduction():
    A = te.placeholder((7, 9), name="A")
    k1 = te.reduce_axis((0, 7), name="k1")
    k2 = te.reduce_axis((0, 9), name="k2")
    R = te.compute((1,), lambda i: te.sum(A[k1, k2] * 2.0, axis=[k1, k2]), name="R")
    s = te.create_schedule(R.op)
    s[R].reorder(k2, k1)
    a = rand(A.shape, seed=11)
    check(s, [A, R], [a], np.array([2 * a.sum()]), rtol=1e-5)


def test_reduce_axis_with_offset():
    A = te.placeholder((6, 20), name="A")
    k = te.reduce_axis((3, 17), name="k")
    R = te.compute((6,), lambda i: te.max(A[i, k], axis=k), name="R")
    s = te.create_schedule(R.op)
    ko, ki = s[R].split(k, 4)
    a = rand(A.shape, seed=12)
    check(s, [A, R], [a], a[:, 3:17].max(1))


def _softmax(n, m):
    X = te.placeholder((n, m), name="X")
    k1 = te.reduce_axis((0, m), name="k1")
    mx = te.compute((n,), lambda i: te.max(X[i, k1], axis=k1), name="mx")
    ex = te.compute((n, m), lambda i, j: te.exp(X[i, j] - mx[i]), name="ex")
    k2 = te.reduce_axis((0, m), name="k2")
    sm = te.compute((n,), lambda i: te.sum(ex[i, k2], axis=k2), name="sm")
    out = te.compute((n, m), lambda i, j: ex[i, j] / sm[i], name="out")
    return X, mx, ex, sm, out


def _softmax_ref(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("schedule", ["root", "at_row", "at_row_tile"])
def test_softmax(schedule):
    X, mx, ex, sm, out = _softmax(10, 37)
    s = te.create_schedule(out.op)
    i, j = s[out].op.axis
    if schedule == "at_row":
        for t in (mx, ex, sm):
            s[t].compute_at(s[out], i)
        jo, ji = s[out].split(j, 8)
        s[out].vectorize(ji)
    elif schedule == "at_row_tile":
        io, ii = s[out].split(i, 3)
        s[out].parallel(io)
        for t in (mx, ex, sm):
            s[t].compute_at(s[out], io)
    x = rand(X.shape, seed=13) * 4
    check(s, [X, out], [x], _softmax_ref(x), rtol=1e-5, atol=1e-6)


def test_softmax_exp_inlined():
    X, mx, ex, sm, out = _softmax(5, 19)
    s = te.create_schedule(out.op)
    s[ex].compute_inline()
    i, _ = s[out].op.axis
    s[mx].compute_at(s[out], i)
    s[sm].compute_at(s[out], i)
    x = rand(X.shape, seed=14)
    check(s, [X, out], [x], _softmax_ref(x), rtol=1e-5, atol=1e-6)
