"""Elementwise chains, compute_at and compute_inline, against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from tilewise import te
from tw_testing import check, rand


def _chain(n=13, m=17):
    A = te.placeholder((n, m), name="A")
    B = te.compute((n, m), lambda i, j: A[i, j] * 2.0 + 1.0, name="B")
    C = te.compute((n, m), lambda i, j: te.exp(B[i, j]) - B[i, j], name="C")
    D = te.compute((n, m), lambda i, j: te.sigmoid(C[i, j]) + te.abs(A[i, j]), name="D")
    return A, B, C, D


def _ref(a):
    b = a * 2.0 + 1.0
    c = np.exp(b) - b
    return 1 / (1 + np.exp(-c)) + np.abs(a)


@pytest.mark.parametrize("where", ["root", "inline", "at_outer", "at_inner", "chain_at"])
def test_chain(where):
    A, B, C, D = _chain()
    s = te.create_schedule(D.op)
    i, j = s[D].op.axis
    io, ii = s[D].split(i, 4)
    jo, ji = s[D].split(j, 5)
    s[D].reorder(io, jo, ii, ji)
    if where == "inline":
        s[B].compute_inline()
        s[C].compute_inline()
    elif where == "at_outer":
        s[B].compute_at(s[D], io)
        s[C].compute_at(s[D], jo)
    elif where == "at_inner":
        s[B].compute_at(s[D], ji)
        s[C].compute_at(s[D], ji)
    elif where == "chain_at":
        s[C].compute_at(s[D], jo)
        ci, cj = s[C].op.axis
        s[B].compute_at(s[C], ci)
    a = rand(A.shape, seed=5)
    check(s, [A, D], [a], _ref(a), rtol=1e-5)


def test_stencil_compute_at():
    """A 3x3 box blur of a producer computed per row tile of the consumer."""
    A = te.placeholder((12, 14), name="A")
    P = te.compute((12, 14), lambda i, j: A[i, j] * A[i, j], name="P")
    Out = te.compute(
        (10, 12),
        lambda i, j: P[i, j] + P[i + 1, j + 1] + P[i + 2, j + 2] + P[i + 2, j] + P[i, j + 2],
        name="Out",
    )
    s = te.create_schedule(Out.op)
    i, j = s[Out].op.axis
    io, ii = s[Out].split(i, 3)
    s[P].compute_at(s[Out], io)
    s[Out].vectorize(j)
    a = rand(A.shape, seed=6)
    p = a * a
    ref = p[:10, :12] + p[1:11, 1:13] + p[2:12, 2:14] + p[2:12, :12] + p[:10, 2:14]
    check(s, [A, Out], [a], ref, rtol=1e-5)


def test_two_outputs_style_multi_read():
    """One producer read by a consumer at two offsets, producer inlined."""
    A = te.placeholder((31,), name="A")
    B = te.compute((31,), lambda i: A[i] + 1.0, name="B")
    C = te.compute((30,), lambda i: B[i] * B[i + 1], name="C")
    s = te.create_schedule(C.op)
    (i,) = s[C].op.axis
    io, ii = s[C].split(i, 8)
    s[C].vectorize(ii)
    s[B].compute_inline()
    a = rand(A.shape, seed=7)
    b = a + 1
    check(s, [A, C], [a], b[:-1] * b[1:], rtol=1e-5)


def test_math_functions():
    A = te.placeholder((40,), name="A")
    B = te.compute(
        (40,),
        lambda i: te.sqrt(te.abs(A[i]) + 1.0) + te.log(te.abs(A[i]) + 1.0) + te.tanh(A[i])
        + te.max(A[i], 0.25) + te.min(A[i], -0.25),
        name="B",
    )
    s = te.create_schedule(B.op)
    a = rand(A.shape, seed=8)
    ref = (np.sqrt(np.abs(a) + 1) + np.log(np.abs(a) + 1) + np.tanh(a)
           + np.maximum(a, 0.25) + np.minimum(a, -0.25))
    check(s, [A, B], [a], ref, rtol=1e-5)


def test_if_then_else_any():
    A = te.placeholder((9, 9), name="A")
    B = te.compute(
        (9, 9),
        lambda i, j: te.if_then_else(te.any(i == j, i + j == 8), A[i, j], -A[i, j]),
        name="B",
    )
    s = te.create_schedule(B.op)
    a = rand(A.shape, seed=9)
    ii, jj = np.indices((9, 9))
    check(s, [A, B], [a], np.where((ii == jj) | (ii + jj == 8), a, -a))
