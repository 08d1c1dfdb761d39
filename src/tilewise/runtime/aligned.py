"""NumPy arrays on cache-line boundaries, as the kernels are timed and as frameworks
(PyTorch, TVM) allocate tensors.

NumPy aligns large arrays to 16 bytes only. A kernel that reads its input in place,
one ``nr``-wide row segment at a time, then splits every vector load across two cache
lines and touches a third line per segment: resnet-c2-1x1 reading its data unpacked
drops from 129 to 107 GFLOP/s on one core.
"""

from __future__ import annotations

import numpy as np

ALIGNMENT = 64  # bytes: a cache line, and one AVX-512 register


def empty(shape, dtype="float32") -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a cache line."""
    dt = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    raw = np.empty(count * dt.itemsize + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start:start + count * dt.itemsize].view(dt).reshape(shape)


def aligned(a: np.ndarray) -> np.ndarray:
    """``a`` itself if it is C-contiguous and starts on a cache line, else such a copy."""
    if a.flags.c_contiguous and a.ctypes.data % ALIGNMENT == 0:
        return a
    out = empty(a.shape, a.dtype)
    out[...] = a
    return out
