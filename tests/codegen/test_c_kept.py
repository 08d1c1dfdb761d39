"""Heap buffers of the whole call are kept for the next call; those inside a loop are
allocated and freed in place; a call that finds the kept buffer in use (from another
thread) allocates its own."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest

import tilewise as tw
from tilewise import te

N = 1 << 16  # 256 KiB of float32: over the stack limit


def _scaled_copy(parallel_rows: bool = False):
    """``out = (A * 2) + 1`` through a heap buffer ``tmp``: at the top of the call, or
    (``parallel_rows``) one row at a time inside a parallel loop."""
    rows = 4 if parallel_rows else 1
    A = te.placeholder((rows, N), name="A")
    tmp = te.compute((rows, N), lambda i, j: A[i, j] * 2.0, name="tmp")
    out = te.compute((rows, N), lambda i, j: tmp[i, j] + 1.0, name="out")
    s = te.create_schedule(out.op)
    i, _ = s[out].op.axis
    if parallel_rows:
        s[out].parallel(i)
        s[tmp].compute_at(s[out], i)
    return s, [A, out]


def test_a_top_level_buffer_is_kept_and_released_with_the_library():
    s, args = _scaled_copy()
    src = tw.generate_source(tw.lower(s, args, "k"), "c -mcpu=x86-64 -cores=2")
    keep = re.search(r"static void\* (\w*tw_keep_tmp\w*);", src)
    assert keep, "the buffer's pointer lives at file scope"
    assert f"if (tmp_own && !{keep[1]}) {keep[1]} = aligned_alloc(64, {4 * N});" in src
    # freed only where the call did not own the kept one; the library frees that
    assert "else free(tmp);" in src
    assert re.search(rf"__attribute__\(\(destructor\)\).*free\({keep[1]}\);", src)


def test_a_buffer_inside_a_loop_is_allocated_in_place():
    s, args = _scaled_copy(parallel_rows=True)
    src = tw.generate_source(tw.lower(s, args, "k"), "c -mcpu=x86-64 -cores=2")
    assert "tw_keep_" not in src
    assert re.search(r"aligned_alloc\(64, \d+\);", src) and "free(tmp);" in src


@pytest.mark.compiles
def test_kept_buffer_gives_the_same_result_every_call_and_from_threads():
    s, args = _scaled_copy()
    mod = tw.build(s, args, target="c -cores=1")
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((1, N)).astype(np.float32) for _ in range(8)]
    for a in inputs[:3]:  # call after call, the buffer reused
        out = np.zeros_like(a)
        mod(a, out)
        np.testing.assert_array_equal(out, a * 2 + 1)
    errors: list[str] = []

    def run(a):
        for _ in range(20):
            out = np.zeros_like(a)
            mod(a, out)
            if not np.array_equal(out, a * 2 + 1):
                errors.append("wrong result")

    threads = [threading.Thread(target=run, args=(a,)) for a in inputs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
