"""Generated C spells every tensor and loop name legally, and puts each pragma where
gcc takes it."""

from __future__ import annotations

import numpy as np
import pytest

import tilewise as tw
from tilewise import te
from tw_testing import conv2d_nchw, conv2d_ref, rand, run


@pytest.mark.compiles
def test_c_keywords_and_helper_names_as_tensor_names():
    """Regression: a tensor named like a C keyword or a math function (or like the
    kernel itself) produced C that did not compile."""
    A = te.placeholder((5,), name="int")
    B = te.compute((5,), lambda i: te.exp(A[i]) + 1.0, name="expf")
    C = te.compute((5,), lambda for_: B[for_] * 2.0, name="tw_max_float32")
    s = te.create_schedule(C.op)
    a = rand((5,), seed=1)
    np.testing.assert_allclose(run(s, [A, C], [a], name="k"), (np.exp(a) + 1) * 2, rtol=1e-6)


@pytest.mark.compiles
def test_kernel_name_equal_to_a_loop_variable():
    A = te.placeholder((4, 3), name="A")
    k = te.reduce_axis((0, 3), name="k")
    S = te.compute((4,), lambda i: te.sum(A[i, k], axis=k), name="S")
    s = te.create_schedule(S.op)
    a = rand((4, 3), seed=2)
    np.testing.assert_allclose(run(s, [A, S], [a], name="k"), a.sum(1), rtol=1e-6)


def test_float16_has_min_max_helpers():
    """Regression: tw_max_float16 was used but never defined (found at load time)."""
    A = te.placeholder((4, 8), "float16", name="A")
    r = te.reduce_axis((0, 8), name="r")
    R = te.compute((4,), lambda i: te.max(A[i, r], axis=r), name="R")
    s = te.create_schedule(R.op)
    src = tw.generate_source(tw.lower(s, [A, R]), "c -mcpu=x86-64 -cores=1")
    assert "tw_max_float16(_Float16 a, _Float16 b)" in src


@pytest.mark.compiles
def test_a_bound_placed_twice_in_one_scope_gets_two_names():
    """Unswitching peels a loop whose body holds a partitioned loop: the partition's
    bound (one LetStmt) lands twice in one C scope, and each copy needs its own name
    (it once failed to compile: redefinition of 'x_c_lo')."""
    from unittest import mock

    data, weight, padded, out = conv2d_nchw(1, 1, 3, 3, 1, 1, 1, 1, 1)
    s = te.create_schedule(out.op)
    cc = s.cache_write(out, "local")
    b, f, y, x = s[out].op.axis
    yo, yi = s[out].split(y, nparts=1)
    xo, xi = s[out].split(x, nparts=2)
    s[out].reorder(b, xo, yo, yi, f, xi)
    s[cc].compute_at(s[out], xo)
    s[padded].compute_inline()
    with mock.patch("tilewise.lower.unswitch._MIN_WORK", 1):
        d, w = rand(data.shape, seed=3), rand(weight.shape, seed=4)
        got = run(s, [data, weight, out], [d, w])
    np.testing.assert_allclose(got, conv2d_ref(d, w, 1, 1), rtol=1e-5, atol=1e-5)


@pytest.mark.compiles
def test_a_pragma_reaches_its_loop_or_is_refused_with_the_reason():
    """gcc takes a loop pragma directly before the ``for``; a parallel or vectorised
    loop's OpenMP pragma must stand there, so the two cannot share a loop."""
    A = te.placeholder((64, 96), name="A")
    B = te.compute((64, 96), lambda i, j: A[i, j] * 2.0, name="B")
    s = te.create_schedule(B.op)
    i, j = s[B].op.axis
    s[B].unroll(j)
    s[B].pragma(j, "GCC", "ivdep")
    mod = tw.build(s, [A, B], target="c -cores=2")
    assert "#pragma GCC ivdep\n    #pragma GCC unroll 96\n" in mod.source
    a = rand((64, 96), seed=1)
    b = np.zeros_like(a)
    mod(a, b)
    np.testing.assert_allclose(b, a * 2.0)
    s[B].parallel(i)
    s[B].pragma(i, "GCC", "ivdep")
    with pytest.raises(tw.TilewiseError, match="loop i is parallel and carries the pragma"):
        tw.build(s, [A, B], target="c -cores=2")
