"""Layer normalisation over the last axis of an (M, N) matrix, with gain and bias:
``y = (x - mean) / sqrt(var + eps) * gamma + beta``.

Mean and mean of squares are two row reductions computed inside the parallel row
loop (``compute_at``); the normalisation is vectorised along the row.
"""

from __future__ import annotations

import numpy as np

from .. import te
from ..autotune import template


def layer_norm_compute(M: int, N: int, eps: float = 1e-5, dtype: str = "float32"):
    x = te.placeholder((M, N), dtype, name="x")
    gamma = te.placeholder((N,), dtype, name="gamma")
    beta = te.placeholder((N,), dtype, name="beta")
    k1 = te.reduce_axis((0, N), name="k1")
    k2 = te.reduce_axis((0, N), name="k2")
    s1 = te.compute((M,), lambda i: te.sum(x[i, k1], axis=k1), name="row_sum")
    s2 = te.compute((M,), lambda i: te.sum(x[i, k2] * x[i, k2], axis=k2), name="row_sumsq")
    inv_n = te.const(1.0 / N, dtype)

    def norm(i, j):
        mean = s1[i] * inv_n
        var = s2[i] * inv_n - mean * mean
        return (x[i, j] - mean) / te.sqrt(var + te.const(eps, dtype)) * gamma[j] + beta[j]

    out = te.compute((M, N), norm, name="out")
    return [x, gamma, beta], out, (s1, s2)


def layer_norm_reference(M: int, N: int, eps: float = 1e-5, dtype: str = "float32"):
    def make(rng: np.random.Generator):
        x = rng.standard_normal((M, N)).astype(dtype)
        g = rng.standard_normal(N).astype(dtype)
        b = rng.standard_normal(N).astype(dtype)
        x64 = x.astype(np.float64)
        mu = x64.mean(axis=1, keepdims=True)
        y = (x64 - mu) / np.sqrt(x64.var(axis=1, keepdims=True) + eps) * g + b
        return [x, g, b, np.zeros((M, N), dtype)], [y.astype(dtype)]

    return make


@template("layer_norm", reference=layer_norm_reference,
          flop=lambda M, N, eps=1e-5, dtype="float32": 8.0 * M * N)
def layer_norm(cfg, M: int, N: int, eps: float = 1e-5, dtype: str = "float32"):
    """Layer norm of each row of an (M, N) matrix (single-pass moments)."""
    inputs, out, (s1, s2) = layer_norm_compute(M, N, eps, dtype)
    cfg.define_knob("rows", [r for r in (1, 2, 4, 8) if r <= M])
    cfg.fallback_with(rows=1)
    s = te.create_schedule(out.op)
    i, j = s[out].op.axis
    io, ii = s[out].split(i, cfg["rows"].val)
    s[out].parallel(io)
    s[out].vectorize(j)
    s[s1].compute_at(s[out], ii)
    s[s2].compute_at(s[out], ii)
    return s, [*inputs, out]
