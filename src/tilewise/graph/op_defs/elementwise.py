"""Element-wise and broadcast operators: unary math, clip, gelu, cast, binary arithmetic,
comparisons and where. Results keep the input's element type (float32 stays float32);
the transcendental ones compute in float64 and round once."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..ir import DTYPES, Node, TensorType
from ..ops import (
    FLOATS,
    NUMERIC,
    InType,
    OpDef,
    OpPattern,
    broadcast,
    check_dtype,
    need_attr,
    node_error,
    register,
    take_inputs,
)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function in float64: SciPy's where installed, else math.erf per element."""
    try:
        from scipy.special import erf as scipy_erf
    except ImportError:
        return np.vectorize(math.erf, otypes=[np.float64])(np.asarray(x, np.float64))
    return scipy_erf(np.asarray(x, np.float64))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))  # never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _same_type(dtypes: Sequence[str]) -> Callable[[Node, Sequence[InType]], list[TensorType]]:
    def infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
        (x,) = take_inputs(node, types, 1)
        assert x is not None
        check_dtype(node, x, dtypes)
        return [x]

    return infer


def _unary(name: str, fn: Callable[[np.ndarray], Any], dtypes: Sequence[str]) -> None:
    def evaluate(node: Node, args: Sequence[Any]) -> list[np.ndarray]:
        x = np.asarray(args[0])
        wide = x.astype(np.float64) if x.dtype.kind == "f" else x
        return [np.asarray(fn(wide)).astype(x.dtype)]

    register(OpDef(name, OpPattern.ELEMWISE, _same_type(dtypes), evaluate))


_unary("relu", lambda x: np.maximum(x, 0), NUMERIC)
_unary("sigmoid", _sigmoid, FLOATS)
_unary("tanh", np.tanh, FLOATS)
_unary("erf", erf, FLOATS)
_unary("sqrt", np.sqrt, FLOATS)
_unary("exp", np.exp, FLOATS)
_unary("log", np.log, FLOATS)
_unary("neg", np.negative, NUMERIC)
_unary("abs", np.abs, NUMERIC)
_unary("reciprocal", lambda x: 1.0 / x, FLOATS)


def _clip(node: Node, args: Sequence[Any]) -> list[np.ndarray]:
    x = np.asarray(args[0])
    lo, hi = need_attr(node, "min"), need_attr(node, "max")
    y = x
    if lo is not None:
        y = np.maximum(y, np.asarray(lo).astype(x.dtype))
    if hi is not None:  # after min: with min > max every element becomes max, as ONNX says
        y = np.minimum(y, np.asarray(hi).astype(x.dtype))
    return [np.asarray(y, dtype=x.dtype)]


register(OpDef("clip", OpPattern.ELEMWISE, _same_type(NUMERIC), _clip))


def gelu_reference(x: np.ndarray, approximate: str) -> np.ndarray:
    """GELU in float64: ``x * Phi(x)``, or its tanh approximation."""
    x = np.asarray(x, np.float64)
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
        return 0.5 * x * (1.0 + np.tanh(inner))
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _gelu_infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    if need_attr(node, "approximate") not in ("none", "tanh"):
        raise node_error(node, f"approximate is {node.attrs['approximate']!r}, "
                               "not 'none' or 'tanh'")
    return _same_type(FLOATS)(node, types)


def _gelu(node: Node, args: Sequence[Any]) -> list[np.ndarray]:
    x = np.asarray(args[0])
    return [gelu_reference(x, node.attrs["approximate"]).astype(x.dtype)]


register(OpDef("gelu", OpPattern.ELEMWISE, _gelu_infer, _gelu))


def _cast_infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    (x,) = take_inputs(node, types, 1)
    assert x is not None
    to = need_attr(node, "to")
    if to not in DTYPES:
        raise node_error(node, f"cannot cast to {to!r}; the graph holds {'/'.join(DTYPES)}")
    return [TensorType(x.shape, to)]


def _cast(node: Node, args: Sequence[Any]) -> list[np.ndarray]:
    return [np.asarray(args[0]).astype(node.attrs["to"])]


register(OpDef("cast", OpPattern.ELEMWISE, _cast_infer, _cast))


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer division truncating toward zero, as C (and ONNX Runtime) does."""
    q = np.floor_divide(a, b)
    return q + ((q < 0) & (q * b != a))


def _pow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "f":
        return np.power(a.astype(np.float64), b.astype(np.float64))
    return np.power(a.astype(np.float64), b.astype(np.float64)).astype(a.dtype)


_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": lambda a, b: np.divide(a, b) if a.dtype.kind == "f" else _int_div(a, b),
    "pow": _pow,
    "max": np.maximum,
    "min": np.minimum,
}


def _binary_infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    a, b = take_inputs(node, types, 2)
    assert a is not None and b is not None
    check_dtype(node, a, NUMERIC, "a")
    check_dtype(node, b, NUMERIC, "b")
    if node.op != "pow" and a.dtype != b.dtype:
        raise node_error(node, f"mixes element types {a.dtype} and {b.dtype}")
    return [TensorType(broadcast(node, a.shape, b.shape), a.dtype)]


def _binary(node: Node, args: Sequence[Any]) -> list[np.ndarray]:
    a, b = np.asarray(args[0]), np.asarray(args[1])
    return [np.asarray(_BINARY[node.op](a, b)).astype(a.dtype)]


for _name in _BINARY:
    register(OpDef(_name, OpPattern.BROADCAST, _binary_infer, _binary))


_COMPARE: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {
    "equal": np.equal,
    "less": np.less,
    "greater": np.greater,
}


def _compare_infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    a, b = take_inputs(node, types, 2)
    assert a is not None and b is not None
    if a.dtype != b.dtype:
        raise node_error(node, f"compares element types {a.dtype} and {b.dtype}")
    if node.op != "equal":
        check_dtype(node, a, NUMERIC)
    return [TensorType(broadcast(node, a.shape, b.shape), "bool")]


def _compare(node: Node, args: Sequence[Any]) -> list[np.ndarray]:
    return [np.asarray(_COMPARE[node.op](np.asarray(args[0]), np.asarray(args[1])))]


for _name in _COMPARE:
    register(OpDef(_name, OpPattern.BROADCAST, _compare_infer, _compare))


def _where_infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    c, x, y = take_inputs(node, types, 3)
    assert c is not None and x is not None and y is not None
    check_dtype(node, c, ("bool",), "cond")
    if x.dtype != y.dtype:
        raise node_error(node, f"chooses between element types {x.dtype} and {y.dtype}")
    return [TensorType(broadcast(node, c.shape, x.shape, y.shape), x.dtype)]


def _where(node: Node, args: Sequence[Any]) -> list[np.ndarray]:
    c, x, y = (np.asarray(a) for a in args)
    return [np.asarray(np.where(c, x, y)).astype(x.dtype)]


register(OpDef("where", OpPattern.BROADCAST, _where_infer, _where))
