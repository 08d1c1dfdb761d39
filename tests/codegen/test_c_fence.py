"""Calls whose stores are weakly ordered (``ExternCall.fence``): each thread fences
once, after its share of the parallel loop that holds them, or the kernel at its end."""

from __future__ import annotations

import platform

import numpy as np
import pytest

import tilewise as tw
from tilewise import te
from tilewise.ops.microkernel import stream_tile_intrin
from tilewise.runtime import aligned

pytestmark = [pytest.mark.compiles,
              pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                                 reason="the streaming copy is written for x86")]


def _streamed_copy(parallel: bool):
    """``B = A * 2`` through a local tile, each 4x32 tile copied out by the streaming
    micro-kernel."""
    A = te.placeholder((64, 96), name="A")
    B = te.compute((64, 96), lambda i, j: A[i, j] * 2.0, name="B")
    s = te.create_schedule(B.op)
    BL = s.cache_write(B, "local")
    i, j = s[B].op.axis
    io, jo, ii, ji = s[B].tile(i, j, 4, 32)
    if parallel:
        s[B].parallel(io)
    s[BL].compute_at(s[B], jo)
    s[B].tensorize(ii, stream_tile_intrin(4, 32))
    return s, [A, B]


@pytest.mark.parametrize("parallel", [True, False])
def test_each_thread_fences_its_streamed_stores_once(parallel):
    s, tensors = _streamed_copy(parallel)
    mod = tw.build(s, tensors, target="c -cores=2")
    body = mod.source[mod.source.index("void default_function("):]
    assert body.count("tw_store_fence();") == 1
    if parallel:
        # inside the parallel region, after the loop that does not wait at its end
        assert "#pragma omp for schedule(static) nowait" in body
        region = body[body.index("#pragma omp parallel num_threads(2)"):]
        assert region.index("tw_stream_tile_4x32(") < region.index("tw_store_fence();")
    else:
        assert "#pragma omp" not in body  # at the kernel's end, after every copy
        assert body.index("tw_store_fence();") > body.rindex("tw_stream_tile_4x32(")
    a = np.random.default_rng(0).standard_normal((64, 96)).astype("float32")
    for b in (aligned(np.zeros((64, 96), "float32")),
              np.empty(64 * 96 + 4, np.float32)[4:].reshape(64, 96)):
        mod(a, b)
        np.testing.assert_allclose(b, a * 2.0)


def test_calls_without_a_fence_keep_the_plain_parallel_loop():
    A = te.placeholder((64, 96), name="A")
    B = te.compute((64, 96), lambda i, j: A[i, j] * 2.0, name="B")
    s = te.create_schedule(B.op)
    s[B].parallel(s[B].op.axis[0])
    source = tw.build(s, [A, B], target="c -cores=2").source
    assert "#pragma omp parallel for num_threads(2) schedule(static)" in source
    assert "tw_store_fence" not in source
