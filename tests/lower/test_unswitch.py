"""Loop unswitching: the bound checks of a register tile whose split does not divide
are tested once per tile, above the tile's loops, and the full tiles run branch-free."""

import numpy as np
import pytest

import tilewise as tw
from tilewise import te
from tilewise.ir import For, ForKind, IfThenElse, Select, collect
from tw_testing import matmul


def _ragged_tile(M=37, N=32, K=64, mr=8):
    """An ``mr x N`` register tile over the rows of a matmul, M % mr != 0: the tile's
    row loop is unrolled, so partitioning cannot remove its guard."""
    A, B, C = matmul(M, K, N)
    s = te.create_schedule(C.op)
    CC = s.cache_write(C, "local")
    i, j = s[C].op.axis
    io, ii = s[C].split(i, mr)
    s[C].parallel(io)
    s[CC].compute_at(s[C], io)
    ci, cj = s[CC].op.axis
    (ck,) = s[CC].op.reduce_axis
    s[CC].reorder(ck, ci, cj)
    s[CC].unroll(ci)
    s[CC].vectorize(cj)
    return s, [A, B, C]


def test_row_guard_is_lifted_above_the_reduction():
    s, args = _ragged_tile()
    func = tw.lower(s, args)
    tile = next(f for f in collect(func.body, For) if f.kind is ForKind.PARALLEL)
    reductions = [f for f in collect(tile.body, For) if f.var.name.startswith("k")]
    assert len(reductions) == 2  # the full-tile copy and the edge-tile copy
    fast, slow = reductions
    assert not collect(fast, IfThenElse)
    assert collect(slow, IfThenElse)


def test_loop_invariant_test_of_an_outer_variable_is_lifted():
    """``if (t < 5)`` inside an x loop that does not change it is tested above x."""
    A = te.placeholder((7, 512), name="A")
    B = te.compute((7, 512), lambda t, x: te.if_then_else(t < 5, A[t, x] * 2.0, A[t, x]),
                   name="B")
    s = te.create_schedule(B.op)
    t, x = s[B].op.axis
    s[B].parallel(t)
    func = tw.lower(s, [A, B])
    (tile,) = [f for f in collect(func.body, For) if f.kind is ForKind.PARALLEL]
    assert isinstance(tile.body, IfThenElse)
    assert not collect(tile.body.then_case, Select)


def test_small_nests_are_not_copied():
    """A 37-row tile over K=4 is too little work per entry to pay for a second copy."""
    s, args = _ragged_tile(K=4)
    func = tw.lower(s, args)
    tile = next(f for f in collect(func.body, For) if f.kind is ForKind.PARALLEL)
    assert len([f for f in collect(tile.body, For) if f.var.name.startswith("k")]) == 1


def test_test_true_at_every_corner_needs_no_branch():
    """A guard the nest's extreme iteration already satisfies is dropped outright."""
    A = te.placeholder((512,), name="A")
    B = te.compute((512,), lambda x: te.if_then_else(x < 600, A[x], 0.0), name="B")
    s = te.create_schedule(B.op)
    s[B].unroll(s[B].op.axis[0])
    func = tw.lower(s, [A, B])
    assert not collect(func.body, (IfThenElse, Select))


@pytest.mark.compiles
@pytest.mark.parametrize("M,mr", [(37, 8), (12, 5), (3, 4), (40, 8)])
def test_unswitched_tile_matches_numpy(M, mr):
    s, args = _ragged_tile(M=M, mr=mr)
    mod = tw.build(s, args, target="c -cores=2")
    rng = np.random.default_rng(M)
    a = rng.standard_normal((M, 64)).astype(np.float32)
    b = rng.standard_normal((64, 32)).astype(np.float32)
    c = np.full((M, 32), np.nan, np.float32)
    mod(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)


def test_lowering_for_analysis_keeps_the_nest_as_scheduled():
    """``optimize_loops=False`` (what the cost model's features read): one reduction
    nest with its guard, where the optimised lowering has two copies."""
    s, args = _ragged_tile()
    func = tw.lower(s, args, optimize_loops=False)
    tile = next(f for f in collect(func.body, For) if f.kind is ForKind.PARALLEL)
    (reduction,) = [f for f in collect(tile.body, For) if f.var.name.startswith("k")]
    assert collect(reduction, IfThenElse) or collect(reduction, Select)
