"""Convolution, normalisation, matrix products, pooling and reductions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .registry import attr_or_input, norm_axes, norm_axis, translates

if TYPE_CHECKING:
    from ..onnx import NodeContext


def _window_pads(ctx: NodeContext, spatial: Sequence[int], kernel: Sequence[int],
                 strides: Sequence[int], dilations: Sequence[int]) -> list[int]:
    """Explicit (top, left, bottom, right) pads from ``pads`` or ``auto_pad``."""
    auto = ctx.attr("auto_pad", "NOTSET")
    if auto == "NOTSET":
        pads = [int(p) for p in ctx.attr("pads", [0, 0, 0, 0])]
        if len(pads) != 4:
            raise ctx.error(f"pads {pads} are not 4 numbers")
        return pads
    if auto == "VALID":
        return [0, 0, 0, 0]
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise ctx.error(f"auto_pad {auto!r} is unknown")
    begin, end = [], []
    for size, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
        out = -(-size // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small, large = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else large)
        end.append(large if auto == "SAME_UPPER" else small)
    return begin + end


def _window(ctx: NodeContext, x: str, kernel: Sequence[int]) -> dict[str, Any]:
    if ctx.rank(x) != 4:
        raise ctx.error(f"only 2-D windows (a 4-D NCHW input) are supported, not "
                        f"{ctx.type(x)}")
    kernel = [int(k) for k in kernel]
    strides = [int(s) for s in ctx.attr("strides", [1, 1])]
    dilations = [int(d) for d in ctx.attr("dilations", [1, 1])]
    if len(kernel) != 2 or len(strides) != 2 or len(dilations) != 2:
        raise ctx.error("takes 2 kernel sizes, strides and dilations")
    if min(strides) < 1 or min(dilations) < 1:
        raise ctx.error(f"strides {strides} and dilations {dilations} must be positive")
    pads = _window_pads(ctx, ctx.type(x).shape[2:], kernel, strides, dilations)
    return {"strides": tuple(strides), "pads": tuple(pads), "dilations": tuple(dilations)}


@translates("Conv")
def _conv(ctx: NodeContext) -> list[Any]:
    x, w, b = ctx.input(0), ctx.input(1), ctx.input(2)
    if ctx.rank(w) != 4:
        raise ctx.error(f"only 2-D convolution is supported; the weight is {ctx.type(w)}")
    kernel = ctx.type(w).shape[2:]
    if "kernel_shape" in ctx.attrs and tuple(ctx.attrs["kernel_shape"]) != kernel:
        raise ctx.error(f"kernel_shape {ctx.attrs['kernel_shape']} differs from the "
                        f"weight's {kernel}")
    attrs = _window(ctx, x, kernel)
    attrs["groups"] = int(ctx.attr("group", 1))
    return [ctx.emit1("conv2d", [x, w, b] if b else [x, w], attrs)]


@translates("BatchNormalization")
def _batch_norm(ctx: NodeContext) -> list[Any]:
    if ctx.attr("training_mode", 0) or any(ctx.outputs[1:]):
        raise ctx.error("runs in training mode; tilewise imports models for inference")
    attrs = {"epsilon": float(ctx.attr("epsilon", 1e-5))}
    return [ctx.emit1("batch_norm", ctx.inputs[:5], attrs)]


@translates("MatMul")
def _matmul(ctx: NodeContext) -> list[Any]:
    return [ctx.emit1("matmul", [ctx.input(0), ctx.input(1)])]


@translates("Gemm")
def _gemm(ctx: NodeContext) -> list[Any]:
    a, b, c = ctx.input(0), ctx.input(1), ctx.input(2)
    if ctx.rank(a) != 2 or ctx.rank(b) != 2:
        raise ctx.error(f"multiplies 2-D matrices, not {ctx.type(a)} and {ctx.type(b)}")
    dtype = ctx.type(a).dtype
    alpha, beta = float(ctx.attr("alpha", 1.0)), float(ctx.attr("beta", 1.0))
    if ctx.attr("transA", 0):
        a = ctx.emit1("transpose", [a], {"perm": (1, 0)})
    if ctx.attr("transB", 0):
        b = ctx.emit1("transpose", [b], {"perm": (1, 0)})  # folds when b is a weight
    y = ctx.emit1("matmul", [a, b])
    if alpha != 1.0:
        y = ctx.emit1("mul", [y, ctx.constant(np.array(alpha, dtype), "alpha")])
    if c and beta != 0.0:
        if beta != 1.0:
            c = ctx.emit1("mul", [c, ctx.constant(np.array(beta, dtype), "beta")])
        y = ctx.emit1("add", [y, c])
    return [y]


@translates("Softmax")
def _softmax(ctx: NodeContext) -> list[Any]:
    x = ctx.input(0)
    axis = norm_axis(ctx, int(ctx.attr("axis", -1)), ctx.rank(x))
    return [ctx.emit1("softmax", [x], {"axis": axis})]


@translates("LayerNormalization")
def _layer_norm(ctx: NodeContext) -> list[Any]:
    if any(ctx.outputs[1:]):
        raise ctx.error("its Mean and InvStdDev outputs are not supported")
    x = ctx.input(0)
    axis = norm_axis(ctx, int(ctx.attr("axis", -1)), ctx.rank(x))
    ins = [x, ctx.input(1)] + ([ctx.input(2)] if ctx.input(2) else [])
    return [ctx.emit1("layer_norm", ins, {"axis": axis,
                                          "epsilon": float(ctx.attr("epsilon", 1e-5))})]


@translates("MaxPool", "AveragePool")
def _pool(ctx: NodeContext) -> list[Any]:
    if ctx.op_type == "MaxPool" and any(ctx.outputs[1:]):
        raise ctx.error("its Indices output is not supported")
    if "kernel_shape" not in ctx.attrs:
        raise ctx.error("has no kernel_shape")
    kernel = tuple(int(k) for k in ctx.attrs["kernel_shape"])
    x = ctx.input(0)
    attrs = {"kernel": kernel, **_window(ctx, x, kernel),
             "ceil_mode": int(ctx.attr("ceil_mode", 0))}
    if ctx.op_type == "AveragePool":
        attrs["count_include_pad"] = int(ctx.attr("count_include_pad", 0))
        return [ctx.emit1("avg_pool2d", [x], attrs)]
    return [ctx.emit1("max_pool2d", [x], attrs)]


@translates("GlobalAveragePool")
def _global_avg_pool(ctx: NodeContext) -> list[Any]:
    x = ctx.input(0)
    if ctx.rank(x) != 4:
        raise ctx.error(f"only 4-D NCHW inputs are supported, not {ctx.type(x)}")
    return [ctx.emit1("global_avg_pool", [x])]


@translates("ReduceMean", "ReduceSum", "ReduceMax")
def _reduce(ctx: NodeContext) -> list[Any]:
    x = ctx.input(0)
    rank = ctx.rank(x)
    axes = attr_or_input(ctx, "axes", 1) or []
    if not axes:
        if ctx.attr("noop_with_empty_axes", 0):
            return [x]
        axes = list(range(rank))
    op = {"ReduceMean": "reduce_mean", "ReduceSum": "reduce_sum",
          "ReduceMax": "reduce_max"}[ctx.op_type]
    attrs = {"axes": norm_axes(ctx, axes, rank), "keepdims": int(ctx.attr("keepdims", 1))}
    return [ctx.emit1(op, [x], attrs)]
