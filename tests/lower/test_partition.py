"""Loop partitioning: padding selects and split guards leave the loop's main body."""

import numpy as np
import pytest

import tilewise as tw
from tilewise import te
from tilewise.ir import For, IfThenElse, Select, collect


def _pad_copy(n=30, pad=2):
    A = te.placeholder((n,), name="A")
    P = te.compute((n + 2 * pad,),
                   lambda i: te.if_then_else(te.all(i >= pad, i < n + pad), A[i - pad], 0.0),
                   name="P")
    s = te.create_schedule(P.op)
    s[P].vectorize(s[P].op.axis[0])
    return s, [A, P]


def test_padding_select_leaves_the_vector_loop():
    s, args = _pad_copy()
    func = tw.lower(s, args)
    loops = collect(func.body, For)
    main = max(loops, key=lambda f: f.extent.value)
    assert main.extent.value == 30
    assert not collect(main.body, Select)


@pytest.mark.compiles
def test_partitioned_padding_is_correct():
    s, args = _pad_copy()
    mod = tw.build(s, args)
    a = np.arange(30, dtype=np.float32)
    p = np.full(34, -1, np.float32)
    mod(a, p)
    np.testing.assert_array_equal(p, np.pad(a, 2))


def test_split_guard_becomes_a_trip_count():
    A = te.placeholder((30,), name="A")
    B = te.compute((30,), lambda i: A[i] * 2, name="B")
    s = te.create_schedule(B.op)
    xo, xi = s[B].split(s[B].op.axis[0], 8)
    text = str(tw.lower(s, [A, B]))
    assert "let i.inner_hi = min(8, (30 - (i.outer * 8)))" in text
    func = tw.lower(s, [A, B])
    first = [f for f in collect(func.body, For) if f.var.name == "i.inner"][0]
    assert not collect(first.body, IfThenElse)


def _vector_tiles(n=30, factor=16):
    """``B = 2 * A`` in vector tiles of ``factor``; the last one ragged."""
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: A[i] * 2, name="B")
    s = te.create_schedule(B.op)
    _, inner = s[B].split(s[B].op.axis[0], factor)
    s[B].vectorize(inner)
    return s, [A, B]


def test_a_vector_loop_cut_at_a_tile_edge_runs_whole_where_the_tile_is():
    """Split by 16 and vectorised, 30 elements: the first tile is whole. It runs a loop
    of constant extent under one test; the last, ragged tile the partitioned loops."""
    func = tw.lower(*_vector_tiles())
    (test,) = [n for n in collect(func.body, IfThenElse) if n.else_case is not None]
    assert str(test.cond) == "((30 - (i.outer * 16)) >= 16)"
    (whole,) = collect(test.then_case, For)
    assert whole.extent.value == 16 and not collect(whole.body, (IfThenElse, Select))
    assert all(not isinstance(f.extent, type(whole.extent)) for f in collect(test.else_case, For))


@pytest.mark.compiles
def test_whole_and_ragged_tiles_are_correct():
    mod = tw.build(*_vector_tiles())
    a, b = np.arange(30, dtype=np.float32), np.zeros(30, np.float32)
    mod(a, b)
    np.testing.assert_array_equal(b, 2 * a)


def _shifted_pad(n=37, pad=2):
    """Row ``a`` of P is A shifted by ``a`` with zero padding: partitioning the vector
    loop leaves three loops whose extents depend on ``a`` (as a convolution's
    ``rx`` does with inline padding)."""
    A = te.placeholder((4, n), name="A")
    P = te.compute(
        (5, 4, n),
        lambda a, b, i: te.if_then_else(
            te.all(i + a >= pad, i + a < n + pad), A[b, i + a - pad], 0.0),
        name="P")
    s = te.create_schedule(P.op)
    a, b, i = s[P].op.axis
    s[P].unroll(a)
    s[P].unroll(b)
    s[P].vectorize(i)
    return s, [A, P]


def test_unrolling_stops_before_it_copies_too_many_ragged_loops():
    """Unrolled 5 x 4 around three loops of run-time extent would be 60 of them in the
    source (minutes of gcc in a real kernel); the inner unroll stays, the outer runs
    serially."""
    from tilewise.lower.passes import MAX_UNROLLED_RAGGED

    s, args = _shifted_pad()
    func = tw.lower(s, args)
    kinds = {f.var.name: f.kind for f in collect(func.body, For)}
    assert kinds["a"] is tw.ir.ForKind.SERIAL
    assert kinds["b"] is tw.ir.ForKind.UNROLLED
    b_loop = next(f for f in collect(func.body, For) if f.var.name == "b")
    ragged = [f for f in collect(b_loop.body, For) if not isinstance(f.extent, tw.ir.Const)]
    assert len(ragged) * b_loop.extent.value <= MAX_UNROLLED_RAGGED


@pytest.mark.compiles
def test_bounded_unrolling_is_correct():
    s, args = _shifted_pad()
    mod = tw.build(s, args)
    a = np.random.default_rng(0).random((4, 37), dtype=np.float32)
    p = np.full((5, 4, 37), -1, np.float32)
    mod(a, p)
    padded = np.pad(a, ((0, 0), (2, 2)))
    want = np.stack([padded[:, s_: s_ + 37] for s_ in range(5)])
    np.testing.assert_array_equal(p, want)
