"""Element-wise ONNX operators, Identity and Dropout."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .registry import dtype_name, translates

if TYPE_CHECKING:
    from ..onnx import NodeContext


_UNARY = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Erf": "erf",
          "Sqrt": "sqrt", "Exp": "exp", "Log": "log", "Neg": "neg", "Abs": "abs",
          "Reciprocal": "reciprocal"}
_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow",
           "Equal": "equal", "Less": "less", "Greater": "greater"}


@translates(*_UNARY)
def _unary(ctx: NodeContext) -> list[Any]:
    return [ctx.emit1(_UNARY[ctx.op_type], [ctx.input(0)])]


@translates(*_BINARY)
def _binary(ctx: NodeContext) -> list[Any]:
    return [ctx.emit1(_BINARY[ctx.op_type], [ctx.input(0), ctx.input(1)])]


@translates("Where")
def _where(ctx: NodeContext) -> list[Any]:
    return [ctx.emit1("where", ctx.inputs[:3])]


@translates("Max", "Min")
def _max_min(ctx: NodeContext) -> list[Any]:
    if not ctx.inputs:
        raise ctx.error("takes one or more inputs")
    acc = ctx.inputs[0]
    for other in ctx.inputs[1:]:
        acc = ctx.emit1(ctx.op_type.lower(), [acc, other])
    return [acc]


@translates("Clip")
def _clip(ctx: NodeContext) -> list[Any]:
    x = ctx.input(0)
    kind = float if ctx.type(x).dtype.startswith("float") else int
    bounds = []
    for key, index in (("min", 1), ("max", 2)):
        value = ctx.attrs.get(key)
        if value is None:
            arr = ctx.const_input(index, key)
            value = None if arr is None else arr.reshape(-1)[0] if arr.size == 1 else "bad"
            if isinstance(value, str):
                raise ctx.error(f"its {key} must be a scalar")
        bounds.append(None if value is None else kind(value))
    return [ctx.emit1("clip", [x], {"min": bounds[0], "max": bounds[1]})]


@translates("Gelu")
def _gelu(ctx: NodeContext) -> list[Any]:
    approximate = ctx.attr("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise ctx.error(f"approximate is {approximate!r}, not 'none' or 'tanh'")
    return [ctx.emit1("gelu", [ctx.input(0)], {"approximate": approximate})]


@translates("Cast")
def _cast(ctx: NodeContext) -> list[Any]:
    to = dtype_name(int(ctx.attr("to", 0)), f"Cast node {ctx.name!r}'s target")
    return [ctx.emit1("cast", [ctx.input(0)], {"to": to})]


@translates("Identity")
def _identity(ctx: NodeContext) -> list[Any]:
    return [ctx.input(0)]


@translates("Dropout")
def _dropout(ctx: NodeContext) -> list[Any]:
    training = ctx.const_input(2, "training_mode")
    if training is not None and bool(training.reshape(-1)[0]):
        raise ctx.error("runs in training mode; tilewise imports models for inference")
    x = ctx.input(0)
    if len(ctx.outputs) < 2 or not ctx.outputs[1]:
        return [x]
    return [x, ctx.constant(np.ones(ctx.type(x).shape, dtype=bool), "mask")]
