"""Matmul end to end against NumPy: naive, tiled, register tile, non-dividing splits."""

from __future__ import annotations

import numpy as np
import pytest

from tilewise import te
from tw_testing import check, matmul, rand, register_tile_schedule

N, K, M = 20, 30, 24


def _inputs(n=N, k=K, m=M, dtype="float32"):
    a, b = rand((n, k), dtype, 1), rand((k, m), dtype, 2)
    return a, b, a.astype(np.float64) @ b.astype(np.float64)


def test_naive():
    A, B, C = matmul(N, K, M)
    s = te.create_schedule(C.op)
    a, b, ref = _inputs()
    check(s, [A, B, C], [a, b], ref)


def test_tiled_dividing():
    A, B, C = matmul(N, K, M)
    s = te.create_schedule(C.op)
    i, j = s[C].op.axis
    (k,) = s[C].op.reduce_axis
    io, jo, ii, ji = s[C].tile(i, j, 4, 8)
    ko, ki = s[C].split(k, 5)
    s[C].reorder(io, jo, ko, ii, ki, ji)
    s[C].vectorize(ji)
    s[C].parallel(io)
    a, b, ref = _inputs()
    check(s, [A, B, C], [a, b], ref)


@pytest.mark.parametrize("factor", [7, 11, 29, 30, 31, 64])
def test_non_dividing_reduction_split(factor):
    A, B, C = matmul(N, K, M)
    s = te.create_schedule(C.op)
    (k,) = s[C].op.reduce_axis
    ko, ki = s[C].split(k, factor)
    i, j = s[C].op.axis
    s[C].reorder(i, ko, ki, j)
    a, b, ref = _inputs()
    check(s, [A, B, C], [a, b], ref)


def test_non_dividing_data_splits():
    A, B, C = matmul(N, K, M)
    s = te.create_schedule(C.op)
    i, j = s[C].op.axis
    io, ii = s[C].split(i, 7)
    jo, ji = s[C].split(j, 5)
    s[C].reorder(jo, io, ji, ii)
    s[C].unroll(ii)
    a, b, ref = _inputs()
    check(s, [A, B, C], [a, b], ref)


@pytest.mark.parametrize("nparts", [1, 3, 7, 20, 25])
def test_split_nparts(nparts):
    A, B, C = matmul(N, K, M)
    s = te.create_schedule(C.op)
    i, _ = s[C].op.axis
    io, ii = s[C].split(i, nparts=nparts)
    s[C].parallel(io)
    a, b, ref = _inputs()
    check(s, [A, B, C], [a, b], ref)


def test_cache_write_register_tile():
    """The tour's schedule: a register tile with a k split of 7 on 30."""
    s, (A, B, C) = register_tile_schedule()
    a, b, ref = _inputs(64, 30, 48)
    check(s, [A, B, C], [a, b], ref)


def test_cache_write_non_dividing_tile():
    """A register tile whose outer tiles overshoot the output (20 rows by 6, 24 by 9)."""
    A, B, C = matmul(N, K, M)
    s = te.create_schedule(C.op)
    CC = s.cache_write(C, "local")
    y, x = s[C].op.axis
    yo, xo, yi, xi = s[C].tile(y, x, 6, 9)
    s[CC].compute_at(s[C], xo)
    i, j = s[CC].op.axis
    (kk,) = s[CC].op.reduce_axis
    s[CC].reorder(kk, i, j)
    s[CC].vectorize(j)
    a, b, ref = _inputs()
    check(s, [A, B, C], [a, b], ref)


def test_cache_read_packing():
    """Pack a panel of B per column tile (cache_read + compute_at)."""
    A, B, C = matmul(N, K, M)
    s = te.create_schedule(C.op)
    BB = s.cache_read(B, "global", [C])
    i, j = s[C].op.axis
    (k,) = s[C].op.reduce_axis
    jo, ji = s[C].split(j, 8)
    s[C].reorder(jo, i, k, ji)
    s[BB].compute_at(s[C], jo)
    a, b, ref = _inputs()
    check(s, [A, B, C], [a, b], ref)


def test_fused_outer_parallel():
    A, B, C = matmul(N, K, M)
    s = te.create_schedule(C.op)
    i, j = s[C].op.axis
    f = s[C].fuse(i, j)
    fo, fi = s[C].split(f, 13)
    s[C].parallel(fo)
    a, b, ref = _inputs()
    check(s, [A, B, C], [a, b], ref)
