"""Dense layer ``y = act(A @ B + bias)`` (A (M, K), B (K, N)): the gemm template's
compute and schedule with an element-wise epilogue fused into the output stage, so
bias, ReLU, GELU or a residual add are applied to the register tile as it is stored.
"""

from __future__ import annotations

import numpy as np

from ..autotune import template
from ..ir.dtype import as_dtype
from .epilogue import apply_epilogue, epilogue_inputs, epilogue_reference
from .gemm import define_gemm_space, gemm_compute
from .gemm_schedule import schedule_gemm_cpu


def dense_reference(M: int, N: int, K: int, epilogue: str = "bias+relu", dtype: str = "float32"):
    def make(rng: np.random.Generator):
        a = rng.standard_normal((M, K)).astype(dtype)
        b = rng.standard_normal((K, N)).astype(dtype)
        y = (a.astype(np.float64) @ b).astype(dtype)
        extra = epilogue_inputs(epilogue, y.shape, 1, rng, dtype)
        y = epilogue_reference(y, epilogue, extra, 1)
        return [a, b, *extra, np.zeros((M, N), dtype)], [y]

    return make


@template("dense", reference=dense_reference,
          flop=lambda M, N, K, epilogue="bias+relu", dtype="float32": 2.0 * M * N * K,
          weights=("B", "bias"))
def dense(cfg, M: int, N: int, K: int, epilogue: str = "bias+relu", dtype: str = "float32"):
    """``epilogue(A @ B)``; ``epilogue`` is ``+``-joined steps of bias, relu, gelu, residual."""
    as_dtype(dtype)  # an unknown dtype is named in one line, not NumPy's TypeError
    target = cfg.target
    define_gemm_space(cfg, target, dtype, M, N, K, epilogue=bool(epilogue))
    (A, B), C, Bp, Ap = gemm_compute(M, N, K, dtype, cfg["nr"].val,
                                     pack=cfg["pack"].val != "none",
                                     mr=cfg["mr"].val if cfg["pack_a"].val else 0)
    out, extra = apply_epilogue(C, epilogue, channel_axis=1, name="out")
    return schedule_gemm_cpu(cfg, target, out, Bp, Ap), [A, B, *extra, out]
