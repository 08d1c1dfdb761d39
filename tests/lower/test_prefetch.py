"""Stage.prefetch: where the hints go, what they ask for, and that they change nothing
but the cache (results against NumPy, every hint inside its buffer)."""

from __future__ import annotations

import ctypes
import shutil
from unittest import mock

import numpy as np
import pytest

import tilewise as tw
from tilewise import te
from tilewise.errors import LowerError, ScheduleError
from tilewise.ir import ExternCall, For, Prefetch, collect
from tilewise.runtime.cuda import check_compiles
from tilewise.schedule import IntrinImpl, TensorIntrin, decl_tensor_intrin
from tilewise.target import Target
from tw_testing import rand, run_counting_stray_prefetches


def _panel_copy(K=64, N=100, nr=16):
    """B (K, N) copied panel by panel, each panel row by row: the gemm template's
    per-panel pack, whose rows are N apart."""
    B = te.placeholder((K, N), name="B")
    P = te.compute((K, N), lambda k, j: B[k, j] * 2.0, name="P")
    s = te.create_schedule(P.op)
    k, j = s[P].op.axis
    jo, ji = s[P].split(j, nr)
    s[P].reorder(jo, k, ji)
    s[P].vectorize(ji)
    return B, P, s, k


@pytest.mark.compiles
def test_rows_ahead_of_a_panel_copy():
    B, P, s, k = _panel_copy()
    s[P].prefetch(B, k, 4)
    f = tw.lower(s, [B, P])
    hints = collect(f.body, Prefetch)
    assert hints and all(h.buffer.name == "B" and h.extent == 16 for h in hints)
    # The k loop is cut where no row lies 4 on: 60 iterations with hints, 4 without.
    text = str(f)
    assert "for k in [0, 60):" in text and "for k in [0, 4):" in text
    b = rand((64, 100), seed=1)
    got, stray = run_counting_stray_prefetches(s, [B, P], [b])
    np.testing.assert_allclose(got, 2 * b)
    assert stray == 0  # the last panel (4 columns) asks for its row's last 16


@pytest.mark.compiles
def test_a_fused_index_is_one_run():
    """Rows of a 3-D tensor read through a fused (h, w) index, as the 1x1 convolution
    packs its data: the span in memory is the panel's 16 elements, not the bounding
    box of h x w."""
    C, H, W = 8, 7, 8
    D = te.placeholder((C, H, W), name="D")
    P = te.compute((C, H * W), lambda c, f: D[c, f // W, f % W], name="P")
    s = te.create_schedule(P.op)
    c, f = s[P].op.axis
    fo, fi = s[P].split(f, 16)
    s[P].reorder(fo, c, fi)
    s[P].prefetch(D, c, 2)
    hints = collect(tw.lower(s, [D, P]).body, Prefetch)
    assert hints and {h.extent for h in hints} == {16}
    d = rand((C, H, W), seed=2)
    got, stray = run_counting_stray_prefetches(s, [D, P], [d])
    np.testing.assert_allclose(got, d.reshape(C, H * W))
    assert stray == 0


@pytest.mark.compiles
def test_rows_far_apart_are_fetched_row_by_row():
    """A block of 4 rows of a wide matrix per iteration: a loop over the rows around a
    run of each, not one run over the 4 rows' whole span."""
    A = te.placeholder((64, 512), name="A")
    P = te.compute((64, 512), lambda i, j: A[i, j] + 1.0, name="P")
    s = te.create_schedule(P.op)
    i, j = s[P].op.axis
    io, ii = s[P].split(i, 4)
    jo, ji = s[P].split(j, 8)
    s[P].reorder(jo, io, ii, ji)
    s[P].prefetch(A, io, 1)
    f = tw.lower(s, [A, P])
    (hint,) = collect(f.body, Prefetch)
    assert hint.extent == 8
    assert any(loop.var.name == "A_pf0" and loop.extent.value == 4
               for loop in collect(f.body, For))
    a = rand((64, 512), seed=3)
    got, stray = run_counting_stray_prefetches(s, [A, P], [a])
    np.testing.assert_allclose(got, a + 1)
    assert stray == 0


@pytest.mark.compiles
def test_a_reduction_fetches_its_operands_once_per_iteration():
    A = te.placeholder((24, 40), name="A")
    B = te.placeholder((40, 36), name="B")
    r = te.reduce_axis((0, 40), name="r")
    C = te.compute((24, 36), lambda i, j: te.sum(A[i, r] * B[r, j], axis=r), name="C")
    s = te.create_schedule(C.op)
    i, j = s[C].op.axis
    ro, ri = s[C].split(r, 8)
    s[C].reorder(i, ro, ri, j)
    s[C].prefetch(B, ro, 1)
    s[C].prefetch(A, i, 2)
    f = tw.lower(s, [A, B, C])
    assert {h.buffer.name for h in collect(f.body, Prefetch)} == {"A", "B"}
    a, b = rand((24, 40), seed=4), rand((40, 36), seed=5)
    got, stray = run_counting_stray_prefetches(s, [A, B, C], [a, b])
    np.testing.assert_allclose(got, a @ b, rtol=1e-5, atol=1e-5)
    assert stray == 0


@pytest.mark.compiles
def test_what_a_copy_computed_inside_the_loop_reads():
    """Weights (K, C, 3, 3) copied one block of 8 input channels at a time, inside the
    sum's loop over the blocks: the next block is 16 runs (one per output channel) of
    its 8 x 3 x 3 contiguous values, the trailing dimensions it covers whole merged
    into the run."""
    K, C = 16, 32
    W = te.placeholder((K, C, 3, 3), name="W")
    Wp = te.compute((C // 8, K, 8, 3, 3),
                    lambda cb, o, ci, r, s_: W[o, cb * 8 + ci, r, s_], name="Wp")
    cb, ci = te.reduce_axis((0, C // 8), name="cb"), te.reduce_axis((0, 8), name="ci")
    r, s_ = te.reduce_axis((0, 3), name="r"), te.reduce_axis((0, 3), name="s")
    out = te.compute((K,), lambda o: te.sum(Wp[cb, o, ci, r, s_], axis=[cb, ci, r, s_]),
                     name="out")
    s = te.create_schedule(out.op)
    (o,) = s[out].op.axis
    s[out].reorder(cb, o, ci, r, s_)
    s[Wp].compute_at(s[out], cb)
    s[out].prefetch(W, cb, 1)
    f = tw.lower(s, [W, out])
    (hint,) = collect(f.body, Prefetch)
    assert hint.buffer.name == "W" and hint.extent == 8 * 9
    assert any(loop.var.name == "W_pf0" and loop.extent.value == K
               for loop in collect(f.body, For))
    w = rand((K, C, 3, 3), seed=7)
    got, stray = run_counting_stray_prefetches(s, [W, out], [w])
    np.testing.assert_allclose(got, w.sum(axis=(1, 2, 3)), rtol=1e-5, atol=1e-5)
    assert stray == 0


def test_an_offset_past_the_loop_asks_for_nothing():
    B, P, s, k = _panel_copy(K=8)
    s[P].prefetch(B, k, 8)
    assert not collect(tw.lower(s, [B, P]).body, Prefetch)


@pytest.mark.compiles
def test_c_asks_once_per_cache_line():
    B, P, s, k = _panel_copy(N=128, nr=64)
    s[P].prefetch(B, k, 1)
    source = tw.build(s, [B, P], target="c").artifact.source
    per_row = source.count("__builtin_prefetch")
    # 64 floats from an unknown alignment: 4 lines, or 5 where the run starts mid-line.
    assert per_row == 5, source
    line_bytes = Target.from_str("c").line_bytes
    assert line_bytes in (32, 64, 128, 256)


@pytest.mark.compiles
def test_a_long_run_is_a_loop_of_hints():
    A = te.placeholder((16, 4096), name="A")
    P = te.compute((16, 4096), lambda i, j: A[i, j] * 3.0, name="P")
    s = te.create_schedule(P.op)
    i, _ = s[P].op.axis
    s[P].prefetch(A, i, 1)
    source = tw.build(s, [A, P], target="c").artifact.source
    assert source.count("__builtin_prefetch") == 2  # in the loop, and the run's end
    a = rand((16, 4096), seed=6)
    got, stray = run_counting_stray_prefetches(s, [A, P], [a])
    np.testing.assert_allclose(got, 3 * a)
    assert stray == 0


def test_cuda_asks_the_l2_for_global_memory_only():
    A = te.placeholder((256,), name="A")
    P = te.compute((256,), lambda i: A[i] * 2.0, name="P")
    s = te.create_schedule(P.op)
    (i,) = s[P].op.axis
    io, ii = s[P].split(i, 32)
    iio, iii = s[P].split(ii, 4)
    s[P].bind(io, te.thread_axis("blockIdx.x"))
    s[P].bind(iio, te.thread_axis("threadIdx.x"))
    s[P].prefetch(A, iii, 1)
    source = tw.generate_source(tw.lower(s, [A, P]), "cuda")
    assert "prefetch.global.L2" in source
    if shutil.which("nvcc"):
        check_compiles(source, "sm_80")


def test_misuse_names_the_problem():
    B, P, s, k = _panel_copy()
    other = te.placeholder((4,), name="Other")
    with pytest.raises(ScheduleError, match="reads Other"):
        s[P].prefetch(other, k, 2)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ScheduleError, match="positive number of iterations"):
            s[P].prefetch(B, k, bad)
    jo, ji = s[P].leaf_iter_vars[0], s[P].leaf_iter_vars[-1]
    s[P].split(jo, 2)
    with pytest.raises(ScheduleError, match="already split"):
        s[P].prefetch(B, jo, 2)
    s[P].prefetch(B, ji, 2)
    with pytest.raises(LowerError, match="vectorised loop"):
        tw.lower(s, [B, P])


def test_not_below_a_micro_kernel():
    A = te.placeholder((8, 8), name="A")
    P = te.compute((8, 8), lambda i, j: A[i, j] * 2.0, name="P")
    s = te.create_schedule(P.op)
    i, j = s[P].op.axis
    s[P].tensorize(i, _copy_intrin())
    s[P].prefetch(A, j, 1)
    with pytest.raises(LowerError, match="micro-kernel"):
        tw.lower(s, [A, P])


def _copy_intrin() -> TensorIntrin:
    X = te.placeholder((8, 8), name="X")
    Y = te.compute((8, 8), lambda i, j: X[i, j] * 2.0, name="Y")
    return decl_tensor_intrin(Y.op, lambda ins, outs: IntrinImpl(
        body=ExternCall("twice", (ins[0].ptr, outs[0].ptr))), name="twice")


def _blocks_copied_per_panel(K=10, N=80, nr=16):
    """The gemm schedule's shape: for each panel of B (K, N), a copy of it made inside
    the panel's loop, then a sum that reads the copy over row blocks."""
    B = te.placeholder((K, N), name="B")
    Bp = te.compute((K, N), lambda k, j: B[k, j], name="Bp")
    r = te.reduce_axis((0, K), name="r")
    C = te.compute((6, N), lambda i, j: te.sum(Bp[r, j] * (i + 1.0), axis=r), name="C")
    s = te.create_schedule(C.op)
    i, j = s[C].op.axis
    jo, ji = s[C].split(j, nr)
    io, ii = s[C].split(i, 2)
    s[C].reorder(jo, io, ii, r, ji)
    s[Bp].compute_at(s[C], jo)
    return B, C, s, (jo, io, ii)


def _rows_asked(s, args, inputs, buffer_size):
    """Run the kernel, counting at run time the hints that start at each element."""
    from tilewise.codegen.c import CRenderer

    hint = CRenderer.prefetch

    def counted(self, p):
        self.emit(f"++tw_asked[{self.expr(p.index)}];")
        hint(self, p)

    preamble = CRenderer.preamble + f"\nint tw_asked[{buffer_size}];"
    with mock.patch.object(CRenderer, "prefetch", counted), \
            mock.patch.object(CRenderer, "preamble", preamble):
        mod = tw.build(s, list(args), target="c", name="k")
    out = np.zeros(tuple(int(d) for d in args[-1].shape), "float32")
    mod(*inputs, out)
    asked = (ctypes.c_int * buffer_size).in_dll(ctypes.CDLL(mod.artifact.so_path), "tw_asked")
    return out, np.array(asked[:])


@pytest.mark.compiles
@pytest.mark.parametrize("spread_to", [1, 2])
def test_spread_over_the_loops_inside_asks_each_next_row_once(spread_to):
    """The next panel's 10 rows, spread over the 3 row blocks (then also the 2 rows of
    each: 6 shares): each share asks for its rows at the top of its iteration, so
    every row of the next panel is asked for, none twice, the last panel asks nothing."""
    K, N, nr = 10, 80, 16
    B, C, s, (jo, io, ii) = _blocks_copied_per_panel(K, N, nr)
    spread = (io, ii)[spread_to - 1]
    s[C].prefetch(B, jo, 1, spread=spread, level=2)
    f = tw.lower(s, [B, C])
    hints = collect(f.body, Prefetch)
    assert hints and all(h.level == 2 and h.extent == nr for h in hints)
    shares = 3 * (2 if spread_to == 2 else 1)
    assert any(loop.var.name == "B_pf" and loop.extent.value == -(-K // shares)
               for loop in collect(f.body, For))
    b = rand((K, N), seed=8)
    got, asked = _rows_asked(s, [B, C], [b], K * N)
    np.testing.assert_allclose(got, np.arange(1, 7)[:, None] * b.sum(axis=0), rtol=1e-5)
    asked = asked.reshape(K, N)
    for panel in range(N // nr):
        starts = asked[:, panel * nr]
        # The first panel is no panel's next; the rows past K's last share clamp to
        # the last row, asked again (harmless).
        assert (starts[:-1] == (panel > 0)).all(), (panel, starts)
        assert starts[-1] >= (panel > 0)
    assert "__builtin_prefetch" in tw.build(s, [B, C], target="c").artifact.source


@pytest.mark.compiles
def test_level_two_is_prefetcht1_in_c():
    B, C, s, (jo, io, _) = _blocks_copied_per_panel()
    s[C].prefetch(B, jo, 1, spread=io, level=2)
    source = tw.build(s, [B, C], target="c").artifact.source
    assert ", 0, 2);" in source and ", 0, 3);" not in source


def test_spread_misuse_names_the_problem():
    B, C, s, (jo, io, ii) = _blocks_copied_per_panel()
    with pytest.raises(ScheduleError, match="cache level 1 or 2"):
        s[C].prefetch(B, jo, 1, level=3)
    s[C].prefetch(B, io, 1, spread=jo)  # the loop outside it
    with pytest.raises(LowerError, match="must run inside it"):
        tw.lower(s, [B, C])
