"""The tensor-expression language: declare *what* to compute (TVM ``te`` names).

>>> from tilewise import te
>>> A = te.placeholder((64, 64), "float32", name="A")
>>> B = te.compute((64, 64), lambda i, j: A[i, j] * 2, name="B")
>>> s = te.create_schedule(B.op)
"""

from .math import (
    abs,
    all,
    any,
    const,
    erf,
    exp,
    if_then_else,
    log,
    max,
    min,
    power,
    sigmoid,
    sqrt,
    sum,
    tanh,
)
from .operation import ComputeOp, Operation, PlaceholderOp, compute, placeholder
from .tensor import IterKind, IterVar, Range, Reduce, ReduceKind, Tensor, TensorRead, reduce_axis


def __getattr__(name: str):
    # The public te namespace mirrors TVM's, which also hosts schedule creation; the
    # te modules themselves import nothing from schedule, and this import is lazy.
    if name in ("create_schedule", "thread_axis", "decl_tensor_intrin"):
        from .. import schedule

        return getattr(schedule, name)
    raise AttributeError(f"module 'tilewise.te' has no attribute {name!r}")


__all__ = [
    "abs", "all", "any", "const", "erf", "exp", "if_then_else", "log", "max", "min",
    "power", "sigmoid", "sqrt", "sum", "tanh", "ComputeOp", "Operation", "PlaceholderOp",
    "compute", "placeholder", "IterKind", "IterVar", "Range", "Reduce", "ReduceKind",
    "Tensor", "TensorRead", "reduce_axis", "create_schedule", "thread_axis",
    "decl_tensor_intrin",
]
