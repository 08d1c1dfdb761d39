"""Helpers for the core tests: workloads, random inputs, build-and-compare."""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from unittest import mock

import numpy as np

import tilewise as tw
from tilewise import te


def rand(shape: Sequence[int], dtype: str = "float32", seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.uniform(-1, 1, size=shape).astype(dtype)
    if np.dtype(dtype).kind == "b":
        return rng.integers(0, 2, size=shape).astype(dtype)
    return rng.integers(-8, 8, size=shape).astype(dtype)


def run(s, args: Sequence[te.Tensor], inputs: Sequence[np.ndarray], name: str = "k"):
    """Build ``s``, call it with ``inputs`` plus zero outputs; return the outputs."""
    mod = tw.build(s, list(args), target="c", name=name)
    outs = [np.zeros(t.shape, dtype=t.dtype.name) for t in args[len(inputs):]]
    mod(*inputs, *outs)
    return outs[0] if len(outs) == 1 else outs


def run_counting_stray_prefetches(s, args: Sequence[te.Tensor],
                                   inputs: Sequence[np.ndarray]):
    """:func:`run`, with each prefetch hint of the generated C also checked against its
    buffer: returns ``(outputs, how many hints asked for elements outside it)``. A hint
    never faults, so a stray one would go unseen in the results."""
    from tilewise.codegen.c import CRenderer

    hint = CRenderer.prefetch

    def counted(self, p):
        index, end = self.expr(p.index), p.buffer.size - p.extent
        self.emit(f"if (({index}) < 0 || ({index}) > {end}) ++tw_stray_prefetches;")
        hint(self, p)

    preamble = CRenderer.preamble + "\nint tw_stray_prefetches = 0;"
    with mock.patch.object(CRenderer, "prefetch", counted), \
            mock.patch.object(CRenderer, "preamble", preamble):
        mod = tw.build(s, list(args), target="c", name="k")
    outs = [np.zeros(t.shape, dtype=t.dtype.name) for t in args[len(inputs):]]
    mod(*inputs, *outs)
    stray = ctypes.c_int.in_dll(ctypes.CDLL(mod.artifact.so_path), "tw_stray_prefetches")
    return (outs[0] if len(outs) == 1 else outs), stray.value


def check(
    s,
    args: Sequence[te.Tensor],
    inputs: Sequence[np.ndarray],
    expected: np.ndarray,
    rtol: float = 1e-4,
    atol: float = 1e-4,
) -> None:
    got = run(s, args, inputs)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


def matmul(n: int, k: int, m: int, dtype: str = "float32"):
    A = te.placeholder((n, k), dtype, name="A")
    B = te.placeholder((k, m), dtype, name="B")
    r = te.reduce_axis((0, k), name="k")
    C = te.compute((n, m), lambda i, j: te.sum(A[i, r] * B[r, j], axis=r), name="C")
    return A, B, C


def conv2d_nchw(n, c, h, w, f, kh, kw, pad, stride, dtype="float32"):
    """Returns (data, weight, padded, out); padded is a separate stage."""
    data = te.placeholder((n, c, h, w), dtype, name="data")
    weight = te.placeholder((f, c, kh, kw), dtype, name="weight")
    hp, wp = h + 2 * pad, w + 2 * pad
    padded = te.compute(
        (n, c, hp, wp),
        lambda b, ci, y, x: te.if_then_else(
            te.all(y >= pad, y < h + pad, x >= pad, x < w + pad),
            data[b, ci, y - pad, x - pad],
            te.const(0.0, dtype),
        ),
        name="pad",
    )
    oh, ow = (hp - kh) // stride + 1, (wp - kw) // stride + 1
    rc = te.reduce_axis((0, c), name="rc")
    ry = te.reduce_axis((0, kh), name="ry")
    rx = te.reduce_axis((0, kw), name="rx")
    out = te.compute(
        (n, f, oh, ow),
        lambda b, ff, y, x: te.sum(
            padded[b, rc, y * stride + ry, x * stride + rx] * weight[ff, rc, ry, rx],
            axis=[rc, ry, rx],
        ),
        name="conv",
    )
    return data, weight, padded, out


def conv2d_ref(d: np.ndarray, wt: np.ndarray, pad: int, stride: int) -> np.ndarray:
    n, c, h, w = d.shape
    f, _, kh, kw = wt.shape
    dp = np.pad(d.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (h + 2 * pad - kh) // stride + 1
    ow = (w + 2 * pad - kw) // stride + 1
    out = np.zeros((n, f, oh, ow))
    for y in range(kh):
        for x in range(kw):
            win = dp[:, :, y : y + stride * oh : stride, x : x + stride * ow : stride]
            out += np.einsum("nchw,fc->nfhw", win, wt[:, :, y, x].astype(np.float64))
    return out


Ref = Callable[..., np.ndarray]


def register_tile_schedule():
    """The tour's matmul schedule: a cache_write register tile, a k split of 7 on 30,
    vector columns, unrolled rows, parallel row tiles (64x30 @ 30x48)."""
    A, B, C = matmul(64, 30, 48)
    s = te.create_schedule(C.op)
    CC = s.cache_write(C, "local")
    y, x = s[C].op.axis
    yo, yi = s[C].split(y, 8)
    xo, xi = s[C].split(x, 16)
    s[C].reorder(yo, xo, yi, xi)
    s[CC].compute_at(s[C], xo)
    i, j = s[CC].op.axis
    (kk,) = s[CC].op.reduce_axis
    ko, ki = s[CC].split(kk, 7)
    s[CC].reorder(ko, i, ki, j)
    s[CC].vectorize(j)
    s[CC].unroll(i)
    s[C].parallel(yo)
    return s, [A, B, C]


def config_with(task, **knobs):
    """The task's fallback config with ``knobs`` (name -> value) changed."""
    space = task.config_space
    return space.with_choices(space.fallback, **knobs)


#: Draws :func:`accepted_configs` makes before it gives up: the gemm family's templates
#: refuse about 96% of uniform draws, and a refusal costs well under a millisecond.
MAX_DRAWS = 1000


def accepted_configs(task, n: int, seed: int | None = None, max_draws: int = MAX_DRAWS,
                     where: Callable[..., bool] | None = None) -> list:
    """``n`` distinct random configs of ``task``'s space that its template accepts, the
    fallback never among them; ``where(config)`` narrows the draw. The draws are seeded
    (by default with the size of the space); fewer than ``n`` accepted configs in
    ``max_draws`` draws fail the test, so a test that means to check random configs
    never checks only the fallback. ``n`` is cut to the configs a small space holds."""
    from tilewise.errors import InvalidConfigError

    space = task.config_space
    fallback = space.fallback.index
    n = min(n, len(space) - 1)
    rng = np.random.default_rng(len(space) if seed is None else seed)
    picks, draws = [], 0
    for index in space.sample(min(max_draws, len(space) - 1), rng, exclude={fallback}):
        if len(picks) == n:
            break
        draws += 1
        config = space.get(index)
        if where is not None and not where(config):
            continue
        try:
            task.instantiate(config)
        except InvalidConfigError:
            continue
        picks.append(config)
    assert len(picks) == n, f"{task}: {len(picks)} of {n} configs accepted in {draws} draws"
    return picks


def check_config(task, config, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """Build ``config`` of ``task`` and compare its output with the template's NumPy
    reference (``atol`` relative to the result's largest magnitude). A config the
    template refuses raises: draw configs with :func:`accepted_configs`."""
    s, tensors = task.instantiate(config)
    mod = tw.build(s, tensors, target=task.target)
    arrays, expected = task.reference()(np.random.default_rng(0))
    mod(*arrays)
    want = expected[0]
    np.testing.assert_allclose(arrays[-1], want, rtol=rtol,
                               atol=atol * (float(np.abs(want).max()) or 1.0),
                               err_msg=f"{task} {config}")


def matmul_gpu(M: int = 100, N: int = 64, K: int = 32, bind_fill: bool = True):
    """tests/codegen/test_cuda.py's matmul: 16 x 16 blocks, A's rows of a block in
    shared memory. ``bind_fill=False`` is the schedule as it was before issue 40: the
    fill loops bound to no thread, so every thread copies the whole tile (a race)."""
    A = te.placeholder((M, K), name="A")
    B = te.placeholder((K, N), name="B")
    k = te.reduce_axis((0, K), name="k")
    C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = te.create_schedule(C.op)
    CC = s.cache_write(C, "local")
    AA = s.cache_read(A, "shared", [CC])
    tx, ty = te.thread_axis("threadIdx.x"), te.thread_axis("threadIdx.y")
    i, j = s[C].op.axis
    bi, ti = s[C].split(i, 16)
    bj, tj = s[C].split(j, 16)
    s[C].reorder(bi, bj, ti, tj)
    s[C].bind(bi, te.thread_axis("blockIdx.y"))
    s[C].bind(bj, te.thread_axis("blockIdx.x"))
    s[C].bind(ti, ty)
    s[C].bind(tj, tx)
    s[CC].compute_at(s[C], tj)
    s[AA].compute_at(s[C], bj)
    if bind_fill:
        fused = s[AA].fuse(*s[AA].op.axis)
        rest, fx = s[AA].split(fused, 16)
        _, fy = s[AA].split(rest, 16)
        s[AA].bind(fy, ty)
        s[AA].bind(fx, tx)
    return s, [A, B, C]
