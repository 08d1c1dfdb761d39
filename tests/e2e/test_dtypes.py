"""float64, int32 and the narrow types, end to end."""

from __future__ import annotations

import numpy as np
import pytest

from tilewise import te
from tw_testing import check, matmul, rand, run


def test_matmul_float64():
    A, B, C = matmul(9, 13, 7, "float64")
    s = te.create_schedule(C.op)
    i, j = s[C].op.axis
    jo, ji = s[C].split(j, 4)
    s[C].vectorize(ji)
    a, b = rand((9, 13), "float64", 1), rand((13, 7), "float64", 2)
    check(s, [A, B, C], [a, b], a @ b, rtol=1e-12, atol=1e-12)


def test_matmul_int32_exact():
    A, B, C = matmul(9, 13, 7, "int32")
    s = te.create_schedule(C.op)
    (k,) = s[C].op.reduce_axis
    ko, ki = s[C].split(k, 5)
    a, b = rand((9, 13), "int32", 1), rand((13, 7), "int32", 2)
    got = run(s, [A, B, C], [a, b])
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, a @ b)


def test_int32_floor_div_mod_negative():
    """Floor semantics on negative operands, as in Python and NumPy."""
    A = te.placeholder((16,), "int32", name="A")
    B = te.compute((16,), lambda i: A[i] // 3 + (A[i] % 5) * 100 + (i - 7) // 2, name="B")
    s = te.create_schedule(B.op)
    a = np.arange(-8, 8, dtype=np.int32)
    ref = a // 3 + (a % 5) * 100 + (np.arange(16) - 7) // 2
    np.testing.assert_array_equal(run(s, [A, B], [a]), ref)


@pytest.mark.parametrize("kind", ["max", "min"])
def test_int32_max_min_reduction(kind):
    A = te.placeholder((5, 6), "int32", name="A")
    k = te.reduce_axis((0, 6), name="k")
    fn = te.max if kind == "max" else te.min
    R = te.compute((5,), lambda i: fn(A[i, k], axis=k), name="R")
    s = te.create_schedule(R.op)
    a = rand(A.shape, "int32", 3)
    np.testing.assert_array_equal(run(s, [A, R], [a]), getattr(a, kind)(1))


def test_cast_int_to_float64():
    A = te.placeholder((10,), "int32", name="A")
    B = te.compute((10,), lambda i: A[i].astype("float64") / 4.0, name="B")
    s = te.create_schedule(B.op)
    a = rand(A.shape, "int32", 4)
    check(s, [A, B], [a], a / 4.0, rtol=0, atol=0)


def test_int8_and_int64():
    A = te.placeholder((12,), "int8", name="A")
    B = te.compute((12,), lambda i: A[i].astype("int64") * 1000000000 + i, name="B")
    s = te.create_schedule(B.op)
    a = rand(A.shape, "int8", 5)
    np.testing.assert_array_equal(run(s, [A, B], [a]), a.astype(np.int64) * 10**9 + np.arange(12))


def test_float16_elementwise():
    A = te.placeholder((8,), "float16", name="A")
    B = te.compute((8,), lambda i: A[i] * A[i] + A[i], name="B")
    s = te.create_schedule(B.op)
    a = rand(A.shape, "float16", 6)
    check(s, [A, B], [a], a * a + a, rtol=1e-2, atol=1e-2)


def test_float16_max_reduction():
    A = te.placeholder((4, 8), "float16", name="A")
    k = te.reduce_axis((0, 8), name="k")
    R = te.compute((4,), lambda i: te.max(A[i, k], axis=k), name="R")
    s = te.create_schedule(R.op)
    a = rand(A.shape, "float16", 7)
    check(s, [A, R], [a], a.max(1), rtol=0, atol=0)


def test_bool_output():
    A = te.placeholder((10,), "float32", name="A")
    B = te.compute((10,), lambda i: A[i] > 0.0, name="B")
    s = te.create_schedule(B.op)
    a = rand(A.shape, seed=8)
    np.testing.assert_array_equal(run(s, [A, B], [a]), a > 0)
