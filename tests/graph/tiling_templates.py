"""A template of the tests' own over a compute that no operator template covers, an
attention score with its softmax, searched in its generated space.

Kept in an importable module (not a test file) so that measuring processes register it.
"""

from __future__ import annotations

import math

import numpy as np

from tilewise import te
from tilewise.autotune import template
from tilewise.graph.generated_task import generated_space
from tilewise.ops import nn


def attention_compute(heads: int, n: int, d: int):
    """``softmax(q @ k^T / sqrt(d))`` over the last axis: (q, k, probabilities)."""
    q = te.placeholder((heads, n, d), name="q")
    k = te.placeholder((heads, n, d), name="k")
    r = te.reduce_axis((0, d), name="r")
    scores = te.compute((heads, n, n), lambda h, i, j: te.sum(q[h, i, r] * k[h, j, r], axis=r),
                        name="scores")
    scale = te.const(1.0 / math.sqrt(d), "float32")
    scaled = te.compute((heads, n, n), lambda h, i, j: scores[h, i, j] * scale, name="scaled")
    return q, k, nn.softmax(scaled, axis=2, name="probs")


def attention_numpy(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    s = q.astype(np.float64) @ k.transpose(0, 2, 1) / math.sqrt(q.shape[-1])
    e = np.exp(s - s.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def attention_reference(heads: int, n: int, d: int):
    def make(rng: np.random.Generator):
        q = rng.standard_normal((heads, n, d)).astype(np.float32)
        k = rng.standard_normal((heads, n, d)).astype(np.float32)
        return [q, k, np.zeros((heads, n, n), np.float32)], [attention_numpy(q, k)]

    return make


@template("test_attention_scores", reference=attention_reference)
def attention_scores(cfg, heads: int, n: int, d: int):
    q, k, p = attention_compute(heads, n, d)
    return generated_space(cfg, [p]), [q, k, p]
