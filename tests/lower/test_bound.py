"""Bound inference: loop extents, overshooting and shifted splits, compute_at regions of
stencils."""

from __future__ import annotations

import numpy as np
import pytest

import tilewise as tw
from tilewise import te
from tilewise.errors import LowerError, ScheduleError
from tilewise.ir import Const, simplify, structural_equal
from tilewise.lower.bound import infer_bounds
from tilewise.lower.inline import effective_bodies
from tw_testing import conv2d_nchw, matmul, run


def _bounds(s):
    return infer_bounds(s, effective_bodies(s))


def _region(s, t):
    b = _bounds(s)[s[t]]
    return [(b.extent[iv], simplify(b.root_min[iv])) for iv in s[t].op.axis]


def _is_const(e, v):
    return isinstance(e, Const) and e.value == v


def test_split_extents_and_overshoot():
    A, B, C = matmul(20, 30, 24)
    s = te.create_schedule(C.op)
    i, j = s[C].op.axis
    (k,) = s[C].op.reduce_axis
    io, ii = s[C].split(i, 4)  # divides
    ko, ki = s[C].split(k, 7)  # 30 = 5*7 - 5: overshoots
    jo, ji = s[C].split(j, 100)  # factor larger than the extent
    b = _bounds(s)[s[C]]
    assert (b.extent[io], b.extent[ii]) == (5, 4)
    assert (b.extent[ko], b.extent[ki]) == (5, 7)
    assert (b.extent[jo], b.extent[ji]) == (1, 24)
    assert b.overshoot == {k}


@pytest.mark.compiles
def test_shifted_tail_keeps_tiles_whole_and_moves_the_last_one_in():
    """``tail="shift_inwards"``: no guard, the last tile starts ``factor`` before the
    edge, and a producer computed per tile covers the shifted rows."""
    A = te.placeholder((10, 8), name="A")
    P = te.compute((10, 8), lambda i, j: A[i, j] + 1.0, name="P")
    B = te.compute((10, 8), lambda i, j: P[i, j] * 2.0, name="B")
    s = te.create_schedule(B.op)
    i, _ = s[B].op.axis
    io, ii = s[B].split(i, 4, tail="shift_inwards")
    s[P].compute_at(s[B], io)
    b = _bounds(s)
    assert b[s[B]].overshoot == set() and b[s[B]].shifted == {i}
    assert (b[s[B]].extent[io], b[s[B]].extent[ii]) == (3, 4)
    assert b[s[P]].extent[s[P].op.axis[0]] == 4
    text = str(tw.lower(s, [A, B]))
    assert "min((i.outer * 4), 6)" in text and "if " not in text
    a = np.arange(80, dtype="float32").reshape(10, 8)
    np.testing.assert_allclose(run(s, [A, B], [a]), (a + 1.0) * 2.0)


def test_a_shifted_reduction_needs_a_micro_kernel_computing_its_tiles_whole():
    A, B, C = matmul(10, 6, 8)
    s = te.create_schedule(C.op)
    i, _ = s[C].op.axis
    s[C].split(i, 4, tail="shift_inwards")
    with pytest.raises(LowerError, match="shifts its last tile inwards"):
        tw.lower(s, [A, B, C])
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match="reduction axis cannot shift"):
        s[C].split(s[C].op.reduce_axis[0], 4, tail="shift_inwards")
    with pytest.raises(ScheduleError, match="tail must be one of"):
        s[C].split(s[C].op.axis[0], 4, tail="wrap")


def test_split_nparts_and_fuse_extents():
    A, B, C = matmul(20, 30, 24)
    s = te.create_schedule(C.op)
    i, j = s[C].op.axis
    f = s[C].fuse(i, j)
    fo, fi = s[C].split(f, nparts=7)
    b = _bounds(s)[s[C]]
    assert b.extent[f] == 480
    assert (b.extent[fo], b.extent[fi]) == (7, 69)
    assert b.overshoot == {f}


def test_stencil_region_3x3():
    """A 3x3 stencil of a producer computed per (4 x 5) output tile: a 6 x 7 window
    starting at the tile's corner."""
    A = te.placeholder((12, 14), name="A")
    P = te.compute((12, 14), lambda i, j: A[i, j] * 2.0, name="P")
    Out = te.compute(
        (10, 12),
        lambda i, j: P[i, j] + P[i + 1, j + 1] + P[i + 2, j + 2],
        name="Out",
    )
    s = te.create_schedule(Out.op)
    i, j = s[Out].op.axis
    io, ii = s[Out].split(i, 4)
    jo, ji = s[Out].split(j, 5)
    s[Out].reorder(io, jo, ii, ji)
    s[P].compute_at(s[Out], jo)
    (ey, my), (ex, mx) = _region(s, P)
    assert (ey, ex) == (6, 7)
    assert structural_equal(my, io.var * 4)
    assert structural_equal(mx, jo.var * 5)


def test_stencil_region_at_outer_axis_sweeps_inner():
    A = te.placeholder((12, 14), name="A")
    P = te.compute((12, 14), lambda i, j: A[i, j] * 2.0, name="P")
    Out = te.compute((10, 12), lambda i, j: P[i, j] + P[i + 2, j + 2], name="Out")
    s = te.create_schedule(Out.op)
    i, j = s[Out].op.axis
    io, ii = s[Out].split(i, 4)
    s[P].compute_at(s[Out], io)
    (ey, my), (ex, mx) = _region(s, P)
    assert ey == 6 and structural_equal(my, io.var * 4)
    assert ex == 14 and _is_const(mx, 0)


@pytest.mark.parametrize("stride,rows", [(1, 4), (2, 5)])
def test_padded_conv_region(stride, rows):
    """The padded input needed by two output rows: (2-1)*stride + 3 rows starting at
    row yo*2*stride, the whole padded width, one batch element (symbolic)."""
    data, weight, padded, out = conv2d_nchw(1, 3, 9, 11, 4, 3, 3, 1, stride)
    s = te.create_schedule(out.op)
    b, f, y, x = s[out].op.axis
    yo, yi = s[out].split(y, 2)
    s[padded].compute_at(s[out], yo)
    (eb, mb), (ec, mc), (ey, my), (ex, mx) = _region(s, padded)
    assert (eb, ec, ey, ex) == (1, 3, rows, 13)
    assert structural_equal(mb, b.var)
    assert _is_const(mc, 0) and _is_const(mx, 0)
    assert structural_equal(my, yo.var * (2 * stride))


def test_region_through_cache_write_stage():
    """The producer read by a register-tile stage gets the tile's region."""
    A = te.placeholder((16, 9), name="A")
    AP = te.compute((16, 9), lambda i, k: A[i, k] + 1.0, name="AP")
    B = te.placeholder((9, 8), name="B")
    r = te.reduce_axis((0, 9), name="r")
    C = te.compute((16, 8), lambda i, j: te.sum(AP[i, r] * B[r, j], axis=r), name="C")
    s = te.create_schedule(C.op)
    CC = s.cache_write(C, "local")
    y, x = s[C].op.axis
    yo, yi = s[C].split(y, 4)
    s[CC].compute_at(s[C], yo)
    ci, cj = s[CC].op.axis
    (ck,) = s[CC].op.reduce_axis
    s[CC].reorder(ck, ci, cj)
    s[AP].compute_at(s[CC], ck)
    (ey, my), (ek, mk) = _region(s, AP)
    assert ey == 4 and structural_equal(my, yo.var * 4)
    assert ek == 1 and structural_equal(mk, ck.var)
    (ei, mi), (ej, mj) = _region(s, CC)
    assert (ei, ej) == (4, 8)
