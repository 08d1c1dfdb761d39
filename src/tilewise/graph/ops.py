"""The graph operators: per operator, its fusion pattern, its shape and type rule, and
its NumPy evaluation (used by constant folding and the reference interpreter).
The set and its attributes are described in docs/graph-ops.md."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from .ir import Node, TensorType


class OpPattern(enum.IntEnum):
    """How an operator fuses (TVM's FuseOps kinds; lower fuses more freely)."""

    ELEMWISE = 0
    BROADCAST = 1
    INJECTIVE = 2
    REDUCTION = 3
    ANCHOR = 4  # runs an operator template; element-wise consumers fuse as its epilogue


@dataclass(frozen=True)
class OpDef:
    name: str
    pattern: OpPattern
    infer: Callable[[Node, Sequence[TensorType]], list[TensorType]]
    evaluate: Callable[[Node, Sequence[np.ndarray]], list[np.ndarray]]


_OPS: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    _OPS[op.name] = op
    return op


def op_def(name: str) -> OpDef:
    try:
        return _OPS[name]
    except KeyError:
        raise ModelError(f"unknown graph operator {name!r}") from None


def all_ops() -> dict[str, OpDef]:
    return dict(_OPS)
