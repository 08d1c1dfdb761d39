"""Random valid schedules of matmul and conv2d, each built and checked against NumPy.

Drawn: split factors (non-divisors and factors larger than the extent included; a
stage that sums nothing itself may shift its last tile inwards instead of guarding it),
reorders, fuses of adjacent axes, annotations (vectorize the innermost data-parallel
loop, unroll, parallel), a prefetch of an input at any loop but a vectorised one (every
hint checked to stay inside its buffer), cache_write + compute_at points, and the
placement of a producer stage (inline, root, or compute_at any legal loop).
"""

from __future__ import annotations

from unittest import mock

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tilewise import te
from tilewise.ir import ForKind
from tilewise.te import IterKind
from tilewise.te.operation import PlaceholderOp
from tw_testing import conv2d_nchw, conv2d_ref, matmul, rand, run_counting_stray_prefetches

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def _random_loops(data, stage, log) -> None:
    """Splits, a reorder, maybe a fuse, and annotations on one stage."""
    # A reduction stage's tiles may shift only under a micro-kernel (Stage.split).
    can_shift = not stage.op.reduce_axis
    for iv in list(stage.leaf_iter_vars):
        ext = iv.dom.extent
        if data.draw(st.booleans()):
            tail = "guard"
            if can_shift and iv.kind is IterKind.DATA_PAR and data.draw(st.booleans()):
                tail = "shift_inwards"
            if data.draw(st.booleans()):
                f = data.draw(st.integers(1, ext + 3))
                log.append(f"split({iv.name}, {f}, tail={tail})")
                stage.split(iv, f, tail=tail)
            else:
                p = data.draw(st.integers(1, ext + 1))
                log.append(f"split({iv.name}, nparts={p}, tail={tail})")
                stage.split(iv, nparts=p, tail=tail)
    leaves = list(stage.leaf_iter_vars)
    order = data.draw(st.permutations(leaves))
    log.append(f"reorder({', '.join(iv.name for iv in order)})")
    stage.reorder(*order)
    leaves = list(stage.leaf_iter_vars)
    pairs = [i for i in range(len(leaves) - 1) if leaves[i].kind is leaves[i + 1].kind]
    if pairs and data.draw(st.booleans()):
        i = data.draw(st.sampled_from(pairs))
        log.append(f"fuse({leaves[i].name}, {leaves[i + 1].name})")
        stage.fuse(leaves[i], leaves[i + 1])
    leaves = list(stage.leaf_iter_vars)
    if leaves[-1].kind is IterKind.DATA_PAR and data.draw(st.booleans()):
        log.append(f"vectorize({leaves[-1].name})")
        stage.vectorize(leaves[-1])
    if data.draw(st.booleans()):
        iv = data.draw(st.sampled_from(leaves))
        log.append(f"unroll({iv.name})")
        stage.unroll(iv)
    par = [iv for iv in leaves if iv.kind is IterKind.DATA_PAR]
    if par and data.draw(st.booleans()):
        iv = data.draw(st.sampled_from(par))
        log.append(f"parallel({iv.name})")
        stage.parallel(iv)
    inputs = [t for t in stage.op.input_tensors if isinstance(t.op, PlaceholderOp)]
    serial = [iv for iv in leaves
              if iv not in stage.iter_attrs or stage.iter_attrs[iv].kind is not ForKind.VECTORIZED]
    if inputs and serial and data.draw(st.booleans()):
        t, iv = data.draw(st.sampled_from(inputs)), data.draw(st.sampled_from(serial))
        ahead = data.draw(st.integers(1, iv.dom.extent + 2))
        log.append(f"prefetch({t.name}, {iv.name}, {ahead})")
        stage.prefetch(t, iv, ahead)


def _place_producer(data, s, prod, consumer, main, log) -> None:
    """Inline, root, or compute_at a loop of ``consumer`` (or of ``main`` at or
    outside ``consumer``'s attach point when consumer is a cache stage)."""
    how = data.draw(st.sampled_from(["inline", "root", "at"]))
    if how == "inline":
        log.append(f"{prod.name}.compute_inline()")
        prod.compute_inline()
    elif how == "at":
        points = [(consumer, iv) for iv in consumer.leaf_iter_vars]
        if consumer is not main:
            at = consumer.attach_ivar
            if at is not None:  # a root cache stage runs outside every loop of main
                cut = main.leaf_iter_vars.index(at) + 1
                points += [(main, iv) for iv in main.leaf_iter_vars[:cut]]
        where, iv = data.draw(st.sampled_from(points))
        log.append(f"{prod.name}.compute_at({where.name}, {iv.name})")
        prod.compute_at(where, iv)


def _schedule(data, s, out, producer, log, packable=None):
    """Schedule ``out`` (maybe through a cache_write stage) and place ``producer``;
    maybe pack ``packable`` (an input) with cache_read and place the copy too."""
    main = s[out]
    packed = None
    if packable is not None and data.draw(st.booleans()):
        packed = s.cache_read(packable, "global", [out])
        log.append(f"cache_read({packable.name})")
    consumer = main
    if data.draw(st.booleans()):
        cc = s.cache_write(out, "local")
        log.append("cache_write")
        consumer = s[cc]
        _random_loops(data, main, log)
        if data.draw(st.booleans()):
            iv = data.draw(st.sampled_from(main.leaf_iter_vars))
            log.append(f"{cc.name}.compute_at({out.name}, {iv.name})")
            consumer.compute_at(main, iv)
        _random_loops(data, consumer, log)
    else:
        _random_loops(data, main, log)
    if producer is not None:
        _place_producer(data, s, s[producer], consumer, main, log)
    if packed is not None:
        _place_producer(data, s, s[packed], consumer, main, log)


@SETTINGS
@given(
    n=st.integers(1, 9), k=st.integers(1, 11), m=st.integers(1, 13),
    packed=st.booleans(), data=st.data(),
)
def test_matmul_random_schedule(n, k, m, packed, data):
    A, B, C = matmul(n, k, m)
    producer = None
    if packed:  # a producer stage between A and the matmul
        A0 = A
        A = te.placeholder((n, k), name="A")
        AP = te.compute((n, k), lambda i, j: A[i, j] * 2.0, name="AP")
        r = te.reduce_axis((0, k), name="k")
        C = te.compute((n, m), lambda i, j: te.sum(AP[i, r] * B[r, j], axis=r), name="C")
        producer = AP
        del A0
    s = te.create_schedule(C.op)
    log: list[str] = []
    _schedule(data, s, C, producer, log, packable=B)
    data.draw(st.just(log), label="schedule")
    a, b = rand((n, k), seed=1), rand((k, m), seed=2)
    ref = (a.astype(np.float64) * (2.0 if packed else 1.0)) @ b
    got, stray = run_counting_stray_prefetches(s, [A, B, C], [a, b])
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4, err_msg="; ".join(log))
    assert stray == 0, "; ".join(log)


@SETTINGS
@given(
    c=st.integers(1, 3), h=st.integers(3, 8), w=st.integers(3, 7), f=st.integers(1, 3),
    kh=st.integers(1, 3), pad=st.integers(0, 1), stride=st.integers(1, 2), data=st.data(),
)
def test_conv2d_random_schedule(c, h, w, f, kh, pad, stride, data):
    kw = kh
    dt, wt_, padded, out = conv2d_nchw(1, c, h, w, f, kh, kw, pad, stride)
    s = te.create_schedule(out.op)
    log: list[str] = []
    _schedule(data, s, out, padded, log)
    data.draw(st.just(log), label="schedule")
    d, wt = rand(dt.shape, seed=3), rand(wt_.shape, seed=4)
    got, stray = run_counting_stray_prefetches(s, [dt, wt_, out], [d, wt])
    np.testing.assert_allclose(
        got, conv2d_ref(d, wt, pad, stride), rtol=1e-4, atol=1e-4, err_msg="; ".join(log)
    )
    assert stray == 0, "; ".join(log)


@SETTINGS
@given(
    n=st.integers(1, 9), k=st.integers(1, 11), m=st.integers(1, 13),
    packed=st.booleans(), data=st.data(),
)
def test_matmul_random_schedule_every_nest_unswitched(n, k, m, packed, data):
    """The same schedules with unswitching lifting every nest it can, however little
    work it holds (the shapes here are below its size threshold)."""
    with mock.patch("tilewise.lower.unswitch._MIN_WORK", 1):
        test_matmul_random_schedule.hypothesis.inner_test(n, k, m, packed, data)


@SETTINGS
@given(
    c=st.integers(1, 3), h=st.integers(3, 8), w=st.integers(3, 7), f=st.integers(1, 3),
    kh=st.integers(1, 3), pad=st.integers(0, 1), stride=st.integers(1, 2), data=st.data(),
)
def test_conv2d_random_schedule_every_nest_unswitched(c, h, w, f, kh, pad, stride, data):
    with mock.patch("tilewise.lower.unswitch._MIN_WORK", 1):
        test_conv2d_random_schedule.hypothesis.inner_test(c, h, w, f, kh, pad, stride, data)
