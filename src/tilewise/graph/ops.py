"""The graph operators: per operator, its fusion pattern, its shape and type rule, and
its NumPy evaluation (used by constant folding and the reference interpreter).
The set and its attributes are described in docs/graph-ops.md; the definitions live
in :mod:`tilewise.graph.op_defs`, one module per family, and register themselves here.

>>> from tilewise.graph.ir import Node, TensorType
>>> relu = op_def("relu")
>>> relu.infer(Node("relu", ("x",), ("y",)), [TensorType((2, 3), "float32")])
[TensorType(shape=(2, 3), dtype='float32')]
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ModelError, TilewiseError
from .ir import Node, TensorType


class OpPattern(enum.IntEnum):
    """How an operator fuses (TVM's FuseOps kinds; lower fuses more freely)."""

    ELEMWISE = 0
    BROADCAST = 1
    INJECTIVE = 2
    REDUCTION = 3
    ANCHOR = 4  # runs an operator template; element-wise consumers fuse as its epilogue


#: The element types an operator may be restricted to (with :func:`check_dtype`).
FLOATS = ("float32", "float64")
NUMERIC = ("float32", "float64", "int32", "int64")

#: An input's type, or None where an optional input is omitted ("").
InType = TensorType | None


@dataclass(frozen=True)
class OpDef:
    """One operator: ``infer`` maps input types to output types (raising ModelError on
    inputs it cannot take); ``evaluate`` maps NumPy inputs to NumPy outputs."""

    name: str
    pattern: OpPattern
    infer: Callable[[Node, Sequence[InType]], list[TensorType]]
    evaluate: Callable[[Node, Sequence[Any]], list[np.ndarray]]


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


def node_error(node: Node, problem: str) -> ModelError:
    """The one-line error about ``node``: operator, node name, problem."""
    return ModelError(f"{node.op} node {node.name!r}: {problem}")


def take_inputs(node: Node, types: Sequence[InType], least: int,
                most: int | None = None) -> list[InType]:
    """``types`` padded with None to ``most`` (default ``least``), after checking that
    the node has between ``least`` and ``most`` inputs and all required ones are given."""
    most = least if most is None else most
    if not least <= len(types) <= most:
        want = str(least) if least == most else f"{least} to {most}"
        raise node_error(node, f"takes {want} inputs, not {len(types)}")
    if any(t is None for t in types[:least]):
        raise node_error(node, f"its first {least} inputs are required")
    return list(types) + [None] * (most - len(types))


def need_attr(node: Node, key: str) -> Any:
    """An attribute the importer must have resolved (docs/graph-ops.md)."""
    if key not in node.attrs:
        raise node_error(node, f"misses attribute {key!r}")
    return node.attrs[key]


def check_dtype(node: Node, t: TensorType, allowed: Sequence[str], what: str = "input") -> None:
    if t.dtype not in allowed:
        raise node_error(node, f"{what} has element type {t.dtype}; takes {'/'.join(allowed)}")


def broadcast(node: Node, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    """NumPy's broadcast of ``shapes``, or a ModelError naming them."""
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise node_error(node, "shapes " + " and ".join(map(str, shapes))
                         + " do not broadcast") from None


def evaluate(node: Node, args: Sequence[np.ndarray | None]) -> list[np.ndarray]:
    """Evaluate ``node`` on NumPy inputs. NumPy's own complaints (an index out of range,
    an allocation too large) come back as a ModelError naming the node."""
    definition = op_def(node.op)
    try:
        # NaN and inf are values here, as in ONNX Runtime; the empty mean is NaN too
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return definition.evaluate(node, args)
    except TilewiseError:
        raise
    except (ValueError, TypeError, IndexError, ArithmeticError, MemoryError) as e:
        raise node_error(node, f"cannot evaluate: {type(e).__name__}: {e}") from None


# The definitions register themselves; imported last, as they import this module.
from . import op_defs as _op_defs  # noqa: E402,F401
