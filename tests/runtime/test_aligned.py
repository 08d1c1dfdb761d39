"""Cache-line-aligned NumPy arrays for calling and timing kernels."""

import numpy as np
import pytest

from tilewise.runtime import aligned, empty
from tilewise.runtime.aligned import ALIGNMENT


@pytest.mark.parametrize("shape,dtype", [((1,), "float32"), ((3, 5, 7), "float64"),
                                         ((256, 3136), "float32"), ((0,), "int32")])
def test_empty_starts_on_a_cache_line(shape, dtype):
    a = empty(shape, dtype)
    assert a.shape == shape and a.dtype == np.dtype(dtype) and a.flags.c_contiguous
    assert a.ctypes.data % ALIGNMENT == 0 or a.size == 0
    a[...] = 1  # writeable, and the whole of it is there
    assert a.sum() == a.size


def test_aligned_copies_only_what_is_not_aligned():
    base = np.arange(1 + 64 * 33, dtype=np.float32)
    off = base[1:].reshape(64, 33)  # 4 bytes past an allocation: never aligned
    assert off.ctypes.data % ALIGNMENT != 0
    got = aligned(off)
    assert got.ctypes.data % ALIGNMENT == 0
    np.testing.assert_array_equal(got, off)
    assert aligned(got) is got
    strided = aligned(empty((8, 8))[:, ::2])  # not contiguous: copied contiguous
    assert strided.flags.c_contiguous and strided.shape == (8, 4)
