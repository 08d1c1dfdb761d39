"""Misuse of schedule primitives and of compiled kernels raises a tilewise error
whose message names the tensor and the axis; nothing segfaults or miscomputes."""

from __future__ import annotations

import numpy as np
import pytest

import tilewise as tw
from tilewise import te
from tilewise.errors import (
    LowerError,
    RuntimeCallError,
    ScheduleError,
    TensorError,
    TilewiseError,
)
from tw_testing import matmul


@pytest.fixture
def mm():
    A, B, C = matmul(8, 6, 4)
    return A, B, C, te.create_schedule(C.op)


def _chain():
    A = te.placeholder((10,), name="A")
    B = te.compute((10,), lambda i: A[i] + 1.0, name="B")
    C = te.compute((10,), lambda i: B[i] * 2.0, name="C")
    return A, B, C, te.create_schedule(C.op)


def test_errors_share_one_root():
    for cls in (ScheduleError, LowerError, RuntimeCallError, TensorError):
        assert issubclass(cls, TilewiseError)
    assert tw.TilewiseError is TilewiseError


def test_split_foreign_axis():
    A, B, C, s = _chain()
    with pytest.raises(ScheduleError, match=r"stage C.*axis i\b"):
        s[C].split(s[B].op.axis[0], 2)


def test_split_already_split_axis(mm):
    A, B, C, s = mm
    i, _ = s[C].op.axis
    s[C].split(i, 2)
    with pytest.raises(ScheduleError, match="axis i was already split"):
        s[C].split(i, 2)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_split_bad_factor(mm, bad):
    A, B, C, s = mm
    with pytest.raises(ScheduleError, match="split of i on C"):
        s[C].split(s[C].op.axis[0], bad)


def test_reorder_duplicates(mm):
    A, B, C, s = mm
    i, j = s[C].op.axis
    with pytest.raises(ScheduleError, match="reorder on C: axis j is given twice"):
        s[C].reorder(j, i, j)


def test_reorder_foreign_axis(mm):
    A, B, C, s = mm
    k2 = te.reduce_axis((0, 3), name="k2")
    with pytest.raises(ScheduleError, match="axis k2 is not an axis"):
        s[C].reorder(k2, s[C].op.axis[0])


def test_fuse_not_adjacent(mm):
    A, B, C, s = mm
    i, j = s[C].op.axis
    (k,) = s[C].op.reduce_axis
    with pytest.raises(ScheduleError, match="fuse on C"):
        s[C].fuse(j, i)
    with pytest.raises(ScheduleError, match="reduction"):
        s[C].fuse(j, k)


def test_compute_at_non_consumer():
    A = te.placeholder((10,), name="A")
    B = te.compute((10,), lambda i: A[i] + 1.0, name="B")
    C = te.compute((10,), lambda i: A[i] * 2.0, name="C")
    D = te.compute((10,), lambda i: B[i] + C[i], name="D")
    s = te.create_schedule(D.op)
    with pytest.raises(ScheduleError, match="C does not consume B"):
        s[B].compute_at(s[C], s[C].op.axis[0])


def test_compute_at_cycle():
    """Attaching a consumer inside its own producer would make a cycle."""
    A, B, C, s = _chain()
    with pytest.raises(ScheduleError, match="B does not consume C"):
        s[C].compute_at(s[B], s[B].op.axis[0])
    with pytest.raises(ScheduleError, match="itself"):
        s[C].compute_at(s[C], s[C].op.axis[0])


def test_compute_at_foreign_axis():
    A, B, C, s = _chain()
    with pytest.raises(ScheduleError, match="compute_at of B.*axis i"):
        s[B].compute_at(s[C], s[B].op.axis[0])


def test_compute_at_inlined_parent():
    A = te.placeholder((10,), name="A")
    B = te.compute((10,), lambda i: A[i] + 1.0, name="B")
    C = te.compute((10,), lambda i: B[i] * 2.0, name="C")
    D = te.compute((10,), lambda i: C[i] * 2.0, name="D")
    s = te.create_schedule(D.op)
    s[C].compute_inline()
    with pytest.raises(ScheduleError, match="C is inlined"):
        s[B].compute_at(s[C], s[C].op.axis[0])


def test_inline_stage_with_attached_producer():
    A = te.placeholder((10,), name="A")
    B = te.compute((10,), lambda i: A[i] + 1.0, name="B")
    C = te.compute((10,), lambda i: B[i] * 2.0, name="C")
    D = te.compute((10,), lambda i: C[i] * 2.0, name="D")
    s = te.create_schedule(D.op)
    s[B].compute_at(s[C], s[C].op.axis[0])
    with pytest.raises(ScheduleError, match="stage B is attached"):
        s[C].compute_inline()


@pytest.mark.parametrize("prim", ["vectorize", "parallel"])
def test_annotate_reduction_axis(mm, prim):
    A, B, C, s = mm
    (k,) = s[C].op.reduce_axis
    ko, ki = s[C].split(k, 2)
    with pytest.raises(ScheduleError, match=rf"{prim} on stage C: axis k.inner is a reduction"):
        getattr(s[C], prim)(ki)


def test_compute_inline_reduction():
    A, B, C = matmul(4, 4, 4)
    D = te.compute((4, 4), lambda i, j: C[i, j] + 1.0, name="D")
    s = te.create_schedule(D.op)
    with pytest.raises(ScheduleError, match="compute_inline of C: a reduction"):
        s[C].compute_inline()


def test_compute_inline_output():
    A, B, C, s = _chain()
    with pytest.raises(ScheduleError, match="compute_inline of C: it is an output"):
        s[C].compute_inline()


def test_placeholder_has_no_loops(mm):
    A, B, C, s = mm
    with pytest.raises(ScheduleError, match="A is a placeholder"):
        s[A].compute_inline()


def test_cache_write_after_scheduling(mm):
    A, B, C, s = mm
    s[C].split(s[C].op.axis[0], 2)
    with pytest.raises(ScheduleError, match="cache_write of C"):
        s.cache_write(C, "local")


def test_split_attach_point_after_compute_at():
    """Regression: splitting the loop a producer is attached to raised a bare
    ValueError at lowering; now the split itself refuses, naming both stages."""
    A, B, C, s = _chain()
    (i,) = s[C].op.axis
    s[B].compute_at(s[C], i)
    with pytest.raises(ScheduleError, match="split of i on stage C: stage B is computed at"):
        s[C].split(i, 4)


def test_reader_outside_attach_loop():
    A = te.placeholder((10,), name="A")
    B = te.compute((10,), lambda i: A[i] + 1.0, name="B")
    C = te.compute((10,), lambda i: B[i] * 2.0, name="C")
    D = te.compute((10,), lambda i: C[i] + B[i], name="D")
    s = te.create_schedule(D.op)
    s[B].compute_at(s[C], s[C].op.axis[0])
    with pytest.raises(LowerError, match="B is computed at C.i, but its reader D"):
        tw.lower(s, [A, D])


def test_free_reduce_axis_without_reduction():
    """Regression: a reduce_axis used outside te.sum compiled to invalid C."""
    A = te.placeholder((4, 4), name="A")
    k = te.reduce_axis((0, 4), name="k")
    with pytest.raises(TensorError, match="compute C: variable k"):
        te.compute((4,), lambda i: A[i, k], name="C")


def test_tensor_index_arity():
    A = te.placeholder((4, 4), name="A")
    with pytest.raises(TensorError, match="A has 2 dimension"):
        te.compute((4,), lambda i: A[i], name="C")


def test_missing_argument(mm):
    A, B, C, s = mm
    with pytest.raises(LowerError, match="input tensor B"):
        tw.lower(s, [A, C])
    with pytest.raises(LowerError, match="output tensor C"):
        tw.lower(s, [A, B])


# ---- call time ---------------------------------------------------------------

@pytest.fixture(scope="module")
def mm_mod():
    A, B, C = matmul(8, 6, 4)
    s = te.create_schedule(C.op)
    return tw.build(s, [A, B, C], name="mm_err")


def _ok():
    return (np.zeros((8, 6), "float32"), np.zeros((6, 4), "float32"), np.zeros((8, 4), "float32"))


@pytest.mark.compiles
def test_call_wrong_shape(mm_mod):
    a, b, c = _ok()
    with pytest.raises(RuntimeCallError, match=r"argument B: shape \(4, 6\)"):
        mm_mod(a, np.zeros((4, 6), "float32"), c)


@pytest.mark.compiles
def test_call_wrong_dtype(mm_mod):
    a, b, c = _ok()
    with pytest.raises(RuntimeCallError, match="argument C: dtype float64"):
        mm_mod(a, b, c.astype("float64"))


@pytest.mark.compiles
def test_call_non_contiguous(mm_mod):
    a, b, c = _ok()
    with pytest.raises(RuntimeCallError, match="argument A: array must be C-contiguous"):
        mm_mod(np.zeros((6, 8), "float32").T, b, c)
    with pytest.raises(RuntimeCallError, match="argument A"):
        mm_mod(np.zeros((8, 12), "float32")[:, ::2], b, c)


@pytest.mark.compiles
def test_call_wrong_count_and_type(mm_mod):
    a, b, c = _ok()
    with pytest.raises(RuntimeCallError, match=r"takes 3 arrays \(A, B, C\), got 2"):
        mm_mod(a, b)
    with pytest.raises(RuntimeCallError, match="argument B: expected a NumPy array"):
        mm_mod(a, b.tolist(), c)


def test_bind_needs_cuda_target(mm):
    A, B, C, s = mm
    i, _ = s[C].op.axis
    s[C].bind(i, te.thread_axis("threadIdx.x"))
    with pytest.raises(tw.errors.CodegenError, match="loop i is bound to threadIdx.x"):
        tw.build(s, [A, B, C])
    with pytest.raises(ScheduleError, match="not a te.thread_axis"):
        s[C].bind(s[C].op.axis[1], s[C].op.axis[1])
