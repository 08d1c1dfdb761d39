"""conv2d NCHW with a padding stage (te.if_then_else on te.all), against NumPy."""

from __future__ import annotations

import pytest

from tilewise import te
from tw_testing import check, conv2d_nchw, conv2d_ref, rand

SHAPE = dict(n=1, c=3, h=9, w=11, f=4, kh=3, kw=3)


def _setup(pad=1, stride=1, **kw):
    shp = {**SHAPE, **kw}
    data, weight, padded, out = conv2d_nchw(**shp, pad=pad, stride=stride)
    d = rand(data.shape, seed=3)
    wt = rand(weight.shape, seed=4)
    return data, weight, padded, out, d, wt, conv2d_ref(d, wt, pad, stride)


@pytest.mark.parametrize("stride", [1, 2])
def test_inlined_padding(stride):
    data, weight, padded, out, d, wt, ref = _setup(stride=stride)
    s = te.create_schedule(out.op)
    s[padded].compute_inline()
    check(s, [data, weight, out], [d, wt], ref)


@pytest.mark.parametrize("stride", [1, 2])
def test_padding_at_root(stride):
    data, weight, padded, out, d, wt, ref = _setup(stride=stride)
    s = te.create_schedule(out.op)
    check(s, [data, weight, out], [d, wt], ref)


@pytest.mark.parametrize("stride", [1, 2])
def test_padding_computed_at_row_tile(stride):
    """The padded region per output row tile is a 3x3 stencil window (with stride)."""
    data, weight, padded, out, d, wt, ref = _setup(stride=stride)
    s = te.create_schedule(out.op)
    b, f, y, x = s[out].op.axis
    yo, yi = s[out].split(y, 2)
    s[padded].compute_at(s[out], yo)
    check(s, [data, weight, out], [d, wt], ref)


def test_stride2_tiled_with_register_tile():
    data, weight, padded, out, d, wt, ref = _setup(stride=2, f=8)
    s = te.create_schedule(out.op)
    s[padded].compute_inline()
    OL = s.cache_write(out, "local")
    b, f, y, x = s[out].op.axis
    fo, fi = s[out].split(f, 4)
    yo, yi = s[out].split(y, 2)
    s[out].reorder(b, fo, yo, fi, yi, x)
    s[OL].compute_at(s[out], yo)
    _, lf, ly, lx = s[OL].op.axis
    rc, ry, rx = s[OL].op.reduce_axis
    s[OL].reorder(rc, ry, rx, lf, ly, lx)
    s[OL].vectorize(lx)
    s[out].parallel(fo)
    check(s, [data, weight, out], [d, wt], ref)


def test_no_padding_stride2_odd():
    data, weight, padded, out, d, wt, ref = _setup(pad=0, stride=2, h=8, w=7)
    s = te.create_schedule(out.op)
    s[padded].compute_inline()
    _, _, y, x = s[out].op.axis
    xo, xi = s[out].split(x, 2)
    check(s, [data, weight, out], [d, wt], ref)
