"""Batched matrix multiply ``C[b] = A[b] @ B[b]`` (A (B, M, K), B (B, K, N)), as in
attention's Q @ K^T.

The gemm structure per batch: B packed into ``nr``-wide panels, an ``mr x nr``
register tile in a local buffer (rows unrolled, columns vectorised, k unrolled by
``unroll_k``), and the (batch, row tile, column panel) loops fused and spread over
the cores.
"""

from __future__ import annotations

import numpy as np

from .. import te
from ..autotune import template


def batch_matmul_compute(Bt: int, M: int, N: int, K: int, dtype: str = "float32", nr: int = 16):
    A = te.placeholder((Bt, M, K), dtype, name="A")
    B = te.placeholder((Bt, K, N), dtype, name="B")
    panels = -(-N // nr)
    Bp = te.compute(
        (Bt, panels, K, nr),
        lambda b, jo, k, ji: te.if_then_else(jo * nr + ji < N, B[b, k, jo * nr + ji],
                                             te.const(0.0, dtype)),
        name="Bp")
    k = te.reduce_axis((0, K), name="k")
    C = te.compute((Bt, M, N),
                   lambda b, i, j: te.sum(A[b, i, k] * Bp[b, j // nr, k, j % nr], axis=k),
                   name="C")
    return A, B, C, Bp


def batch_matmul_reference(Bt: int, M: int, N: int, K: int, dtype: str = "float32"):
    def make(rng: np.random.Generator):
        a = rng.standard_normal((Bt, M, K)).astype(dtype)
        b = rng.standard_normal((Bt, K, N)).astype(dtype)
        return [a, b, np.zeros((Bt, M, N), dtype)], [(a.astype(np.float64) @ b).astype(dtype)]

    return make


@template("batch_matmul", reference=batch_matmul_reference,
          flop=lambda Bt, M, N, K, dtype="float32": 2.0 * Bt * M * N * K)
def batch_matmul(cfg, Bt: int, M: int, N: int, K: int, dtype: str = "float32"):
    """``C[b] = A[b] @ B[b]`` for each of ``Bt`` batches."""
    lanes = cfg.target.vector_lanes(np.dtype(dtype).itemsize)
    cfg.define_knob("nr", [lanes, 2 * lanes, 4 * lanes])
    cfg.define_knob("mr", [1, 2, 4, 6, 8, 12])
    cfg.define_knob("unroll_k", [1, 2, 4, 8])
    cfg.define_knob("pack", ["at_batch", "root"])
    cfg.fallback_with(nr=2 * lanes if N >= 2 * lanes else lanes, mr=8 if M >= 8 else 1,
                      unroll_k=4, pack="root")
    mr, nr = cfg["mr"].val, cfg["nr"].val
    A, B, C, Bp = batch_matmul_compute(Bt, M, N, K, dtype, nr)
    s = te.create_schedule(C.op)
    CC = s.cache_write(C, "local")
    b, i, j = s[C].op.axis
    io, ii = s[C].split(i, mr)
    jo, ji = s[C].split(j, nr)
    s[C].reorder(b, io, jo, ii, ji)
    s[C].vectorize(ji)
    if cfg["pack"].val == "at_batch":  # pack one batch's panels, then use them
        s[C].parallel(b)
        s[CC].compute_at(s[C], jo)
        s[Bp].compute_at(s[C], b)
    else:
        tile = s[C].fuse(b, io, jo)
        s[C].parallel(tile)
        s[CC].compute_at(s[C], tile)
        pb, pj, _, _ = s[Bp].op.axis
        s[Bp].parallel(s[Bp].fuse(pb, pj))
    s[Bp].vectorize(s[Bp].op.axis[3])
    _, ci, cj = s[CC].op.axis
    (ck,) = s[CC].op.reduce_axis
    ko, ki = s[CC].split(ck, cfg["unroll_k"].val)
    s[CC].reorder(ko, ki, ci, cj)
    s[CC].unroll(ki)
    s[CC].unroll(ci)
    s[CC].vectorize(cj)
    return s, [A, B, C]
