"""The ATen operators the PyTorch frontend translates, each onto the graph's operators
(docs/graph-ops.md) with every attribute resolved: pads as (top, left, bottom, right),
axes non-negative, numbers as 0-d constants of the result's element type, shapes from
what PyTorch recorded for the node."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import fx

if TYPE_CHECKING:
    from .torch_export import TorchNodeContext

Translator = Callable[["TorchNodeContext"], Any]
TRANSLATORS: dict[str, Translator] = {}

#: PyTorch element types the graph holds.
TORCH_DTYPES = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64",
                torch.int32: "int32", torch.bool: "bool"}


def translates(*ops: str) -> Callable[[Translator], Translator]:
    """Register a translator for ATen overloads, named as ``str(op)`` prints them less
    the ``aten.`` prefix (``"add.Tensor"``)."""
    def add(fn: Translator) -> Translator:
        for op in ops:
            TRANSLATORS[f"aten.{op}"] = fn
        return fn

    return add


def _kind(ctx: TorchNodeContext) -> str:
    """The operator's name without namespace and overload: ``add`` for aten.add.Tensor."""
    return ctx.op.split(".")[1]


def _pair(ctx: TorchNodeContext, value: Any, what: str) -> tuple[int, int]:
    values = [int(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
    if len(values) == 1:
        values *= 2
    if len(values) != 2:
        raise ctx.error(f"takes 2 {what}, not {values}")
    return values[0], values[1]


def _reshape(ctx: TorchNodeContext, x: str, shape: Sequence[int]) -> str:
    shape = tuple(int(d) for d in shape)
    return x if ctx.type(x).shape == shape else ctx.emit1("reshape", [x], {"shape": shape})


# --- copies, casts and shapes -------------------------------------------------------------

@translates("clone.default", "alias.default", "detach.default", "lift_fresh_copy.default",
            "contiguous.default")
def _identity(ctx: TorchNodeContext) -> Any:
    return ctx.x(0)


@translates("dropout.default", "native_dropout.default")
def _dropout(ctx: TorchNodeContext) -> Any:
    if ctx.arg(2) and ctx.arg(1):
        raise ctx.error("runs in training mode; tilewise imports models for inference")
    return ctx.x(0) if _kind(ctx) == "dropout" else [ctx.x(0), None]


@translates("_to_copy.default", "to.dtype")
def _cast(ctx: TorchNodeContext) -> Any:
    return ctx.operand(ctx.arg(0), ctx.out.dtype)


@translates("view.default", "_unsafe_view.default", "reshape.default", "flatten.using_ints",
            "unflatten.int", "unsqueeze.default", "squeeze.default", "squeeze.dim",
            "squeeze.dims")
def _view(ctx: TorchNodeContext) -> Any:
    return _reshape(ctx, ctx.x(0), ctx.out.shape)


@translates("expand.default")
def _expand(ctx: TorchNodeContext) -> Any:
    x, shape = ctx.x(0), ctx.out.shape
    return x if ctx.type(x).shape == shape else ctx.emit1("expand", [x], {"shape": shape})


@translates("permute.default", "transpose.int", "t.default")
def _transpose(ctx: TorchNodeContext) -> Any:
    x = ctx.x(0)
    rank, kind = ctx.rank(x), _kind(ctx)
    perm = list(range(rank))
    if kind == "permute":
        perm = [ctx.axis(int(d), rank) for d in ctx.arg(1)]
    elif rank >= 2:
        a, b = (0, 1) if kind == "t" else (ctx.axis(int(ctx.arg(i)), rank) for i in (1, 2))
        perm[a], perm[b] = perm[b], perm[a]
    if perm == list(range(rank)):
        return x
    return ctx.emit1("transpose", [x], {"perm": tuple(perm)})


@translates("cat.default")
def _cat(ctx: TorchNodeContext) -> Any:
    out = ctx.out
    values = [ctx.operand(t, out.dtype) for t in ctx.arg(0)]
    # PyTorch skips empty 1-D tensors when joining others
    values = [v for v in values if len(out.shape) == 1 or ctx.type(v).shape != (0,)]
    axis = ctx.axis(int(ctx.args["dim"]), len(out.shape))
    return values[0] if len(values) == 1 else ctx.emit1("concat", values, {"axis": axis})


@translates("split.Tensor", "split_with_sizes.default", "chunk.default", "unbind.int")
def _split(ctx: TorchNodeContext) -> Any:
    x = ctx.x(0)
    shape = ctx.type(x).shape
    axis = ctx.axis(int(ctx.args.get("dim", 0)), len(shape))
    vals = ctx.node.meta["val"]
    unbind = _kind(ctx) == "unbind"
    sizes = (1,) * shape[axis] if unbind else tuple(int(v.shape[axis]) for v in vals)
    parts = [x] if len(sizes) == 1 else ctx.emit("split", [x], {"axis": axis, "sizes": sizes},
                                                 len(sizes))
    if unbind:
        parts = [_reshape(ctx, p, tuple(v.shape)) for p, v in zip(parts, vals, strict=True)]
    return parts


def _slice_axis(ctx: TorchNodeContext, x: str, axis: int, start: int, end: int,
                step: int) -> str:
    shape = ctx.type(x).shape
    if (start, end, step) == (0, shape[axis], 1):
        return x
    starts, ends, steps = [0] * len(shape), list(shape), [1] * len(shape)
    starts[axis], ends[axis], steps[axis] = start, end, step
    return ctx.emit1("slice", [x], {"starts": tuple(starts), "ends": tuple(ends),
                                    "steps": tuple(steps)})


@translates("slice.Tensor")
def _slice(ctx: TorchNodeContext) -> Any:
    x = ctx.x(0)
    shape = ctx.type(x).shape
    axis = ctx.axis(int(ctx.args["dim"]), len(shape))
    step = int(ctx.args["step"])
    if step < 1:
        raise ctx.error(f"slice step {step} is not positive")
    start, end, _ = slice(ctx.args["start"], ctx.args["end"], step).indices(shape[axis])
    return _slice_axis(ctx, x, axis, start, max(start, end), step)


@translates("select.int")
def _select(ctx: TorchNodeContext) -> Any:
    x = ctx.x(0)
    shape = ctx.type(x).shape
    axis = ctx.axis(int(ctx.args["dim"]), len(shape))
    index = int(ctx.args["index"])
    if not -shape[axis] <= index < shape[axis]:
        raise ctx.error(f"index {index} is outside an axis of {shape[axis]}")
    index %= shape[axis]
    return _reshape(ctx, _slice_axis(ctx, x, axis, index, index + 1, 1), ctx.out.shape)


@translates("embedding.default", "index_select.default")
def _gather(ctx: TorchNodeContext) -> Any:
    if _kind(ctx) == "embedding":
        return ctx.emit1("gather", [ctx.x(0), ctx.x(1)], {"axis": 0})
    x = ctx.x(0)
    axis = ctx.axis(int(ctx.args["dim"]), ctx.rank(x))
    return ctx.emit1("gather", [x, ctx.x(2)], {"axis": axis})


@translates("full_like.default", "zeros_like.default", "ones_like.default")
def _full_like(ctx: TorchNodeContext) -> Any:
    fill = {"zeros_like": 0, "ones_like": 1}.get(_kind(ctx))
    out = ctx.out
    value = ctx.arg(1) if fill is None else fill
    return ctx.constant(np.full(out.shape, value, out.dtype), "fill")


# --- element-wise ---------------------------------------------------------------------

_UNARY = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "exp": "exp",
          "sqrt": "sqrt", "neg": "neg", "erf": "erf", "log": "log", "abs": "abs",
          "reciprocal": "reciprocal"}


@translates(*(f"{name}.default" for name in _UNARY))
def _unary(ctx: TorchNodeContext) -> Any:
    return ctx.emit1(_UNARY[_kind(ctx)], [ctx.operand(ctx.arg(0), ctx.out.dtype)])


@translates("rsqrt.default", "silu.default", "hardswish.default", "hardsigmoid.default")
def _composite_unary(ctx: TorchNodeContext) -> Any:
    dtype = ctx.out.dtype
    x = ctx.operand(ctx.arg(0), dtype)
    kind = _kind(ctx)
    if kind == "rsqrt":
        return ctx.emit1("reciprocal", [ctx.emit1("sqrt", [x])])
    if kind == "silu":
        return ctx.emit1("mul", [x, ctx.emit1("sigmoid", [x])])
    three, six = (ctx.constant(np.array(v, dtype), "scalar") for v in (3, 6))
    gate = ctx.emit1("clip", [ctx.emit1("add", [x, three])], {"min": 0.0, "max": 6.0})
    gate = ctx.emit1("div", [gate, six])
    return gate if kind == "hardsigmoid" else ctx.emit1("mul", [x, gate])


@translates("gelu.default")
def _gelu(ctx: TorchNodeContext) -> Any:
    approximate = ctx.args["approximate"]
    if approximate not in ("none", "tanh"):
        raise ctx.error(f"approximate is {approximate!r}, not 'none' or 'tanh'")
    x = ctx.operand(ctx.arg(0), ctx.out.dtype)
    return ctx.emit1("gelu", [x], {"approximate": approximate})


@translates("hardtanh.default", "relu6.default", "clamp.default", "clamp_min.default",
            "clamp_max.default")
def _clip(ctx: TorchNodeContext) -> Any:
    dtype = ctx.out.dtype
    x = ctx.operand(ctx.arg(0), dtype)
    kind = _kind(ctx)
    lo, hi = {"relu6": (0, 6), "clamp_min": (ctx.arg(1), None),
              "clamp_max": (None, ctx.arg(1))}.get(kind, (ctx.arg(1), ctx.arg(2)))
    number = float if dtype.startswith("float") else int
    return ctx.emit1("clip", [x], {"min": None if lo is None else number(lo),
                                   "max": None if hi is None else number(hi)})


_BINARY = {"add": "add", "sub": "sub", "rsub": "sub", "mul": "mul", "div": "div",
           "pow": "pow", "maximum": "max", "minimum": "min"}


@translates("add.Tensor", "add.Scalar", "sub.Tensor", "sub.Scalar", "rsub.Tensor",
            "rsub.Scalar", "mul.Tensor", "mul.Scalar", "div.Tensor", "div.Scalar",
            "div.Tensor_mode", "pow.Tensor_Scalar", "pow.Tensor_Tensor", "pow.Scalar",
            "maximum.default", "minimum.default")
def _binary(ctx: TorchNodeContext) -> Any:
    """Operands are cast to the result's element type first, as PyTorch computes."""
    dtype, kind = ctx.out.dtype, _kind(ctx)
    if ctx.args.get("rounding_mode") not in (None, "trunc") or (
            ctx.args.get("rounding_mode") == "trunc" and dtype.startswith("float")):
        raise ctx.error(f"rounding_mode {ctx.args['rounding_mode']!r} is not supported")
    a, b = (ctx.operand(ctx.arg(i), dtype) for i in (0, 1))
    if kind == "rsub":
        a, b = b, a
    alpha = ctx.args.get("alpha", 1)
    if alpha != 1:
        b = ctx.emit1("mul", [b, ctx.constant(np.array(alpha, dtype), "alpha")])
    return ctx.emit1(_BINARY[kind], [a, b])


_COMPARE = {"eq": "equal", "lt": "less", "gt": "greater"}


def _common_dtype(ctx: TorchNodeContext, args: Sequence[Any]) -> str:
    """The element type PyTorch computes ``args`` in (tensors with dimensions first, then
    0-d tensors, then numbers)."""
    probes = [torch.empty([0] * min(a.meta["val"].dim(), 1), dtype=a.meta["val"].dtype)
              if isinstance(a, fx.Node) else a for a in args]
    dtype = torch.result_type(*probes)
    if dtype not in TORCH_DTYPES:
        raise ctx.error(f"computes in {dtype}; the graph holds "
                        f"{', '.join(TORCH_DTYPES.values())}")
    return TORCH_DTYPES[dtype]


@translates(*(f"{name}.{overload}" for name in _COMPARE for overload in ("Tensor", "Scalar")))
def _compare(ctx: TorchNodeContext) -> Any:
    dtype = _common_dtype(ctx, [ctx.arg(0), ctx.arg(1)])
    a, b = (ctx.operand(ctx.arg(i), dtype) for i in (0, 1))
    return ctx.emit1(_COMPARE[_kind(ctx)], [a, b])


@translates("where.self", "masked_fill.Scalar", "masked_fill.Tensor")
def _where(ctx: TorchNodeContext) -> Any:
    dtype = ctx.out.dtype
    if _kind(ctx) == "where":
        cond, x, y = ctx.arg(0), ctx.arg(1), ctx.arg(2)
    else:
        cond, x, y = ctx.arg(1), ctx.arg(2), ctx.arg(0)
    c = ctx.operand(cond, "bool")
    return ctx.emit1("where", [c, ctx.operand(x, dtype), ctx.operand(y, dtype)])


# --- neural-network operators ---------------------------------------------------------------

@translates("linear.default")
def _linear(ctx: TorchNodeContext) -> Any:
    """x @ weight.T + bias; the transpose of a constant weight folds at import."""
    x, w = ctx.x(0), ctx.x(1)
    if ctx.rank(w) != 2:
        raise ctx.error(f"takes a 2-D weight, not {ctx.type(w)}")
    y = ctx.emit1("matmul", [x, ctx.emit1("transpose", [w], {"perm": (1, 0)})])
    bias = ctx.arg(2)
    return y if bias is None else ctx.emit1("add", [y, ctx.value(bias)])


@translates("mm.default", "bmm.default", "matmul.default")
def _matmul(ctx: TorchNodeContext) -> Any:
    return ctx.emit1("matmul", [ctx.x(0), ctx.x(1)])


@translates("addmm.default")
def _addmm(ctx: TorchNodeContext) -> Any:
    dtype = ctx.out.dtype
    beta, alpha = ctx.args["beta"], ctx.args["alpha"]
    y = ctx.emit1("matmul", [ctx.x(1), ctx.x(2)])
    if alpha != 1:
        y = ctx.emit1("mul", [y, ctx.constant(np.array(alpha, dtype), "alpha")])
    if beta == 0:
        return y
    bias = ctx.x(0)
    if beta != 1:
        bias = ctx.emit1("mul", [bias, ctx.constant(np.array(beta, dtype), "beta")])
    return ctx.emit1("add", [y, bias])


@translates("conv2d.default", "convolution.default")
def _conv(ctx: TorchNodeContext) -> Any:
    args = ctx.args
    if args.get("transposed"):
        raise ctx.error("transposed convolution is not supported")
    x, w = ctx.x(0), ctx.x(1)
    unbatched = ctx.rank(x) == 3 and ctx.rank(w) == 4
    if unbatched:
        x = _reshape(ctx, x, (1,) + ctx.type(x).shape)
    if ctx.rank(x) != 4 or ctx.rank(w) != 4:
        raise ctx.error(f"only 2-D convolution is supported, not input {ctx.type(x)} and "
                        f"weight {ctx.type(w)}")
    ph, pw = _pair(ctx, args["padding"], "pads")
    attrs = {"strides": _pair(ctx, args["stride"], "strides"), "pads": (ph, pw, ph, pw),
             "dilations": _pair(ctx, args["dilation"], "dilations"),
             "groups": int(args["groups"])}
    ins = [x, w] + ([] if args["bias"] is None else [ctx.value(args["bias"])])
    y = ctx.emit1("conv2d", ins, attrs)
    return _reshape(ctx, y, ctx.out.shape) if unbatched else y


@translates("_native_batch_norm_legit_no_training.default", "batch_norm.default",
            "native_batch_norm.default")
def _batch_norm(ctx: TorchNodeContext) -> Any:
    args = ctx.args
    if args.get("training"):
        raise ctx.error("runs in training mode; tilewise imports models for inference")
    x = ctx.x(0)
    t = ctx.type(x)
    if args["running_mean"] is None or args["running_var"] is None:
        raise ctx.error("has no running statistics (track_running_stats=False)")
    ins = [x]
    for key, fill in (("weight", 1), ("bias", 0)):
        value = args[key]
        ins.append(ctx.constant(np.full(t.shape[1], fill, t.dtype), key) if value is None
                   else ctx.value(value))
    ins += [ctx.value(args["running_mean"]), ctx.value(args["running_var"])]
    y = ctx.emit1("batch_norm", ins, {"epsilon": float(args["eps"])})
    return y if _kind(ctx) == "batch_norm" else [y, None, None]


@translates("layer_norm.default", "native_layer_norm.default")
def _layer_norm(ctx: TorchNodeContext) -> Any:
    args = ctx.args
    x = ctx.x(0)
    t = ctx.type(x)
    normalized = tuple(int(d) for d in args["normalized_shape"])
    axis = len(t.shape) - len(normalized)
    if axis < 0 or t.shape[axis:] != normalized:
        raise ctx.error(f"normalises {normalized}, not the last axes of {t}")
    scale = ctx.constant(np.ones(normalized, t.dtype), "weight") if args["weight"] is None \
        else ctx.value(args["weight"])
    ins = [x, scale] + ([] if args["bias"] is None else [ctx.value(args["bias"])])
    y = ctx.emit1("layer_norm", ins, {"axis": axis, "epsilon": float(args["eps"])})
    return y if _kind(ctx) == "layer_norm" else [y, None, None]


@translates("scaled_dot_product_attention.default")
def _attention(ctx: TorchNodeContext) -> Any:
    """softmax(q @ k^T * scale + mask) @ v, as PyTorch's reference (math) kernel does."""
    args = ctx.args
    if args["dropout_p"] or args.get("enable_gqa"):
        raise ctx.error("dropout_p > 0 and enable_gqa are not supported")
    q, k, v = ctx.x(0), ctx.x(1), ctx.x(2)
    dtype, (length, depth), source = ctx.out.dtype, ctx.type(q).shape[-2:], ctx.type(k).shape[-2]
    rank = ctx.rank(k)
    perm = tuple(range(rank - 2)) + (rank - 1, rank - 2)
    scores = ctx.emit1("matmul", [q, ctx.emit1("transpose", [k], {"perm": perm})])
    scale = depth ** -0.5 if args["scale"] is None else args["scale"]
    scores = ctx.emit1("mul", [scores, ctx.constant(np.array(scale, dtype), "scale")])
    masks = [] if args["attn_mask"] is None else [ctx.value(args["attn_mask"])]
    if args["is_causal"]:
        masks.append(ctx.constant(np.tril(np.ones((length, source), bool)), "causal"))
    for mask in masks:
        if ctx.type(mask).dtype == "bool":
            minus_inf = ctx.constant(np.array(-np.inf, dtype), "minus_inf")
            scores = ctx.emit1("where", [mask, scores, minus_inf])
        else:
            scores = ctx.emit1("add", [scores, ctx.operand(args["attn_mask"], dtype)])
    probs = ctx.emit1("softmax", [scores], {"axis": rank - 1})
    return ctx.emit1("matmul", [probs, v])


@translates("softmax.int", "_softmax.default")
def _softmax(ctx: TorchNodeContext) -> Any:
    x = ctx.operand(ctx.arg(0), ctx.out.dtype)
    return ctx.emit1("softmax", [x], {"axis": ctx.axis(int(ctx.arg(1)), ctx.rank(x))})


@translates("_log_softmax.default", "log_softmax.int")
def _log_softmax(ctx: TorchNodeContext) -> Any:
    """x - max - log(sum(exp(x - max))), which keeps far-off classes finite."""
    x = ctx.operand(ctx.arg(0), ctx.out.dtype)
    reduce = {"axes": (ctx.axis(int(ctx.arg(1)), ctx.rank(x)),), "keepdims": 1}
    shifted = ctx.emit1("sub", [x, ctx.emit1("reduce_max", [x], reduce)])
    total = ctx.emit1("reduce_sum", [ctx.emit1("exp", [shifted])], reduce)
    return ctx.emit1("sub", [shifted, ctx.emit1("log", [total])])


@translates("max_pool2d.default", "max_pool2d_with_indices.default", "avg_pool2d.default")
def _pool(ctx: TorchNodeContext) -> Any:
    args = ctx.args
    x = ctx.x(0)
    if ctx.rank(x) != 4:
        raise ctx.error(f"pools a 4-D NCHW input, not {ctx.type(x)}")
    kernel = _pair(ctx, args["kernel_size"], "kernel sizes")
    ph, pw = _pair(ctx, args["padding"], "pads")
    attrs: dict[str, Any] = {
        "kernel": kernel, "pads": (ph, pw, ph, pw), "ceil_mode": int(bool(args["ceil_mode"])),
        "strides": _pair(ctx, args["stride"], "strides") if args["stride"] else kernel}
    if _kind(ctx) == "avg_pool2d":
        if args["divisor_override"] is not None:
            raise ctx.error("divisor_override is not supported")
        attrs.update(dilations=(1, 1), count_include_pad=int(bool(args["count_include_pad"])))
        return ctx.emit1("avg_pool2d", [x], attrs)
    attrs["dilations"] = _pair(ctx, args["dilation"], "dilations")
    y = ctx.emit1("max_pool2d", [x], attrs)
    return [y, None] if _kind(ctx) == "max_pool2d_with_indices" else y


@translates("adaptive_avg_pool2d.default", "_adaptive_avg_pool2d.default")
def _adaptive_avg_pool(ctx: TorchNodeContext) -> Any:
    """To 1x1: global_avg_pool; to a size that divides the input's: avg_pool2d, whose
    windows are then exactly PyTorch's."""
    x = ctx.x(0)
    if ctx.rank(x) != 4:
        raise ctx.error(f"pools a 4-D NCHW input, not {ctx.type(x)}")
    (h, w), (oh, ow) = ctx.type(x).shape[2:], ctx.out.shape[2:]
    if (oh, ow) == (1, 1):
        return ctx.emit1("global_avg_pool", [x])
    if h % oh or w % ow:
        raise ctx.error(f"pools {h}x{w} to {oh}x{ow}; only to 1x1 or to a size dividing "
                        "the input's is supported")
    kernel = (h // oh, w // ow)
    if kernel == (1, 1):
        return x
    return ctx.emit1("avg_pool2d", [x], {"kernel": kernel, "strides": kernel,
                                         "pads": (0, 0, 0, 0), "dilations": (1, 1),
                                         "ceil_mode": 0, "count_include_pad": 0})


_REDUCE = {"mean": "reduce_mean", "sum": "reduce_sum", "amax": "reduce_max"}


@translates("mean.dim", "mean.default", "sum.dim_IntList", "sum.default", "amax.default")
def _reduce(ctx: TorchNodeContext) -> Any:
    x = ctx.operand(ctx.arg(0), ctx.out.dtype)
    rank = ctx.rank(x)
    dims = ctx.args.get("dim")
    dims = [dims] if isinstance(dims, int) else list(dims or range(rank))
    axes = tuple(sorted({ctx.axis(int(d), rank) for d in dims}))
    if not axes:
        return x
    attrs = {"axes": axes, "keepdims": int(bool(ctx.args.get("keepdim", False)))}
    return ctx.emit1(_REDUCE[_kind(ctx)], [x], attrs)
