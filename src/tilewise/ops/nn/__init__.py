"""Tensor-level operators (TVM's TOPI): functions from te tensors to te tensors.

Each function declares *what* an ONNX-style operator computes, with NumPy's semantics,
as one or more ``te.compute`` stages; nothing here schedules. Whole-model compilation
maps graph nodes onto them (:mod:`tilewise.graph.compute`) and schedules the result by
rule (:func:`tilewise.autotune.generated.generated_schedule`).

>>> from tilewise import te
>>> from tilewise.ops import nn
>>> x = te.placeholder((3, 1, 5), name="x")
>>> b = te.placeholder((4, 1), name="b")
>>> y = nn.unary("relu", nn.binary("add", x, b))     # (3, 4, 5)

Element types: float32/float64 throughout; int32/int64 for the index and integer
operators; comparisons produce ``bool``. Rank-0 tensors (shape ``()``) work; zero-size
dimensions do not (te needs positive extents).
"""

from .broadcast import BINARY, binary, broadcast_shape, expand, where
from .contraction import conv2d, matmul
from .elementwise import UNARY, cast, clip, gelu, unary
from .normalization import batch_norm, layer_norm
from .pooling import pool2d
from .reduction import REDUCE, global_avg_pool, reduce, softmax
from .transform import concat, pad, reshape, split, strided_slice, take, transpose

__all__ = [
    "BINARY", "REDUCE", "UNARY", "batch_norm", "binary", "broadcast_shape", "cast", "clip",
    "concat", "conv2d", "expand", "gelu", "global_avg_pool", "layer_norm", "matmul", "pad",
    "pool2d", "reduce", "reshape", "softmax", "split", "strided_slice", "take", "transpose",
    "unary", "where",
]
