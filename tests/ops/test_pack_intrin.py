"""The weight-packing transpose micro-kernel, alone and inside the conv2d template."""

from __future__ import annotations

import numpy as np
import pytest

import tilewise as tw
import tilewise.ops  # noqa: F401  (registers the templates)
from tilewise import te
from tilewise.autotune import Task
from tilewise.ops.pack_intrin import weight_pack_intrin

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
               and space.get(i)["oc_bn"].val == 32)
    s, tensors = task.instantiate(cfg)
    mod = tw.build(s, tensors, target=task.target)
    assert "tw_pack_oihw" in mod.source
    arrays, (want,) = task.reference()(np.random.default_rng(0))
    mod(*arrays)
    np.testing.assert_allclose(arrays[-1], want, rtol=1e-4, atol=1e-4)
