"""The layout-transform transpose micro-kernels, alone and inside the conv2d template."""

from __future__ import annotations

import numpy as np
import pytest

import tilewise as tw
import tilewise.ops  # noqa: F401  (registers the templates)
from tilewise import te
from tilewise.autotune import Task
from tilewise.ops.layout_intrin import data_pack_intrin, data_unpack_intrin, weight_pack_intrin

pytestmark = pytest.mark.compiles


@pytest.mark.parametrize("K,C,R,S,ib,ob", [(64, 32, 3, 3, 16, 32), (32, 8, 5, 5, 8, 16),
                                           (16, 12, 1, 7, 4, 16), (48, 6, 1, 1, 3, 48)])
def test_packs_oihw_blocks_like_numpy(K, C, R, S, ib, ob):
    """Full 16x16 tiles and masked remainders (8*25, 4*7 and 3 values per row)."""
    w = te.placeholder((K, C, R, S), name="w")
    packed = te.compute((K // ob, C // ib, R, S, ib, ob),
                        lambda o, c, r, s, i, b: w[o * ob + b, c * ib + i, r, s], name="packed")
    sch = te.create_schedule(packed.op)
    o, c, r, _, _, _ = sch[packed].op.axis
    sch[packed].tensorize(r, weight_pack_intrin(R, S, ib, ob))
    sch[packed].parallel(sch[packed].fuse(o, c))
    mod = tw.build(sch, [w, packed])
    x = np.random.default_rng(0).standard_normal((K, C, R, S)).astype(np.float32)
    got = np.zeros([int(d) for d in packed.shape], np.float32)
    mod(x, got)
    want = x.reshape(K // ob, ob, C // ib, ib, R, S).transpose(0, 2, 4, 5, 3, 1)
    np.testing.assert_array_equal(got, want)
    assert "tw_pack_oihw" in mod.source


def test_conv2d_packs_weights_per_chunk_with_the_micro_kernel():
    """The per-chunk variant tensorizes a stage computed inside the convolution's
    parallel loop: its bound checks are decided by its own loop ranges."""
    task = Task("conv2d_nchw", (1, 32, 6, 6, 64, 3, 3, 1, 1), "c -cores=2")
    space = task.config_space
    cfg = next(space.get(i) for i in range(space.size)
               if space.get(i)["kernel_pack"].val == "per_chunk"
               and space.get(i)["oc_bn"].val == 2 * tw.Target.from_str("c").vector_lanes(4))
    s, tensors = task.instantiate(cfg)
    mod = tw.build(s, tensors, target=task.target)
    assert "tw_pack_oihw" in mod.source
    arrays, (want,) = task.reference()(np.random.default_rng(0))
    mod(*arrays)
    np.testing.assert_allclose(arrays[-1], want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("C,H,W,ib,pad,width", [(64, 5, 56, 64, 1, 58), (20, 4, 7, 20, 2, 11),
                                                (6, 3, 17, 3, 0, 17), (32, 2, 9, 16, 1, 9)])
def test_packs_nchw_rows_into_channel_blocks_with_the_padding(C, H, W, ib, pad, width):
    """Whole and masked 16-wide blocks of channels and columns; rows and columns of
    zero padding on both sides, and a row cut short (the last case reads 9 of 11)."""
    data = te.placeholder((1, C, H, W), name="data")
    Hp = H + 2 * pad
    packed = te.compute(
        (1, C // ib, Hp, width, ib),
        lambda n, c, h, w, b: te.if_then_else(
            te.all(h >= pad, h < H + pad, w >= pad, w < W + pad),
            data[n, c * ib + b, h - pad, w - pad], 0.0),
        name="packed")
    sch = te.create_schedule(packed.op)
    n, c, h, w, _ = sch[packed].op.axis
    sch[packed].parallel(sch[packed].fuse(n, c, h))
    sch[packed].tensorize(w, data_pack_intrin(ib, width, (H, W)))
    mod = tw.build(sch, [data, packed])
    x = np.random.default_rng(0).standard_normal((1, C, H, W)).astype(np.float32)
    got = np.full([int(d) for d in packed.shape], np.nan, np.float32)
    mod(x, got)
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad + width)))[..., :width]
    want = padded.reshape(1, C // ib, ib, Hp, width).transpose(0, 1, 3, 4, 2)
    np.testing.assert_array_equal(got, want)
    assert "tw_pack_nchwc" in mod.source


@pytest.mark.parametrize("K,H,W,ob,Wp", [(64, 3, 56, 32, 56), (48, 2, 7, 48, 14),
                                         (16, 5, 19, 16, 21)])
def test_unpacks_channel_blocks_into_nchw_rows(K, H, W, ob, Wp):
    """A block's row may be wider than the output row (the conv's padded width)."""
    conv = te.placeholder((1, K // ob, H, Wp, ob), name="conv")
    out = te.compute((1, K, H, W), lambda n, k, y, x: conv[n, k // ob, y, x, k % ob],
                     name="out")
    sch = te.create_schedule(out.op)
    n, k, y, x = sch[out].op.axis
    ko, ki = sch[out].split(k, ob)
    sch[out].reorder(n, ko, y, ki, x)
    sch[out].parallel(sch[out].fuse(n, ko, y))
    sch[out].tensorize(ki, data_unpack_intrin(ob, W))
    mod = tw.build(sch, [conv, out])
    x_ = np.random.default_rng(0).standard_normal([int(d) for d in conv.shape]).astype(np.float32)
    got = np.zeros((1, K, H, W), np.float32)
    mod(x_, got)
    want = x_[:, :, :, :W, :].transpose(0, 1, 4, 2, 3).reshape(1, K, H, W)
    np.testing.assert_array_equal(got, want)
    assert "tw_unpack_nchwc" in mod.source


def test_conv2d_transforms_its_data_with_the_micro_kernels():
    task = Task("conv2d_nchw", (1, 32, 9, 13, 32, 3, 3, 1, 1), "c -cores=2")
    s, tensors = task.instantiate(task.config_space.fallback)
    mod = tw.build(s, tensors, target=task.target)
    assert "tw_pack_nchwc" in mod.source and "tw_unpack_nchwc" in mod.source
    arrays, (want,) = task.reference()(np.random.default_rng(0))
    mod(*arrays)
    np.testing.assert_allclose(arrays[-1], want, rtol=1e-4, atol=1e-4)
