"""Softmax over the last axis of an (M, N) matrix, numerically stable (max subtracted).

Stages: row max, exponentials, row sum, normalise. The template computes all of a
row's stages inside the parallel row loop (``compute_at``), so a row is read from
memory once and the rest stays in L1; the exponentials are either kept in a row
buffer or recomputed (inlined) in the sum and the normalisation.
"""

from __future__ import annotations

import numpy as np

from .. import te
from ..autotune import template


def softmax_compute(M: int, N: int, dtype: str = "float32"):
    x = te.placeholder((M, N), dtype, name="x")
    k1 = te.reduce_axis((0, N), name="k1")
    mx = te.compute((M,), lambda i: te.max(x[i, k1], axis=k1), name="row_max")
    e = te.compute((M, N), lambda i, j: te.exp(x[i, j] - mx[i]), name="exps")
    k2 = te.reduce_axis((0, N), name="k2")
    ssum = te.compute((M,), lambda i: te.sum(e[i, k2], axis=k2), name="row_sum")
    out = te.compute((M, N), lambda i, j: e[i, j] / ssum[i], name="out")
    return x, out, (mx, e, ssum)


def softmax_reference(M: int, N: int, dtype: str = "float32"):
    def make(rng: np.random.Generator):
        x = rng.standard_normal((M, N)).astype(dtype)
        z = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
        return [x, np.zeros((M, N), dtype)], [(z / z.sum(axis=1, keepdims=True)).astype(dtype)]

    return make


@template("softmax", reference=softmax_reference, flop=lambda M, N, dtype="float32": 5.0 * M * N)
def softmax(cfg, M: int, N: int, dtype: str = "float32"):
    """Row softmax of an (M, N) matrix."""
    x, out, (mx, e, ssum) = softmax_compute(M, N, dtype)
    cfg.define_knob("rows", [r for r in (1, 2, 4, 8) if r <= M])
    cfg.define_knob("exps", ["row_buffer", "inline"])
    cfg.fallback_with(rows=1, exps="row_buffer")
    s = te.create_schedule(out.op)
    i, j = s[out].op.axis
    io, ii = s[out].split(i, cfg["rows"].val)
    s[out].parallel(io)
    s[out].vectorize(j)
    at = ii
    if cfg["exps"].val == "inline":
        s[e].compute_inline()
    else:
        s[e].compute_at(s[out], at)
        s[e].vectorize(s[e].op.axis[1])
    s[mx].compute_at(s[out], at)
    s[ssum].compute_at(s[out], at)
    return s, [x, out]
