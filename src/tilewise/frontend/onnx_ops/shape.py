"""ONNX operators that move data: reshapes, transposes, concat, split, slice,
gather, expand."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .registry import attr_or_input, ints, norm_axes, norm_axis, translates

if TYPE_CHECKING:
    from ..onnx import NodeContext


def _reshape_to(ctx: NodeContext, x: str, shape: Sequence[int]) -> str:
    return ctx.emit1("reshape", [x], {"shape": tuple(int(d) for d in shape)})


@translates("Reshape")
def _reshape(ctx: NodeContext) -> list[Any]:
    x = ctx.input(0)
    target = ctx.required_const_input(1, "shape")
    src = ctx.type(x).shape
    allowzero = int(ctx.attr("allowzero", 0))
    shape = ints(target)
    if allowzero and 0 in shape and -1 in shape:
        raise ctx.error(f"shape {shape} holds both 0 and -1 with allowzero")
    if not allowzero:
        if any(d == 0 and i >= len(src) for i, d in enumerate(shape)):
            raise ctx.error(f"shape {shape} copies a dimension {src} does not have")
        shape = [src[i] if d == 0 else d for i, d in enumerate(shape)]
    if shape.count(-1) > 1 or any(d < -1 for d in shape):
        raise ctx.error(f"shape {shape} is not a shape")
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
        size = int(np.prod(src, dtype=np.int64))
        if known == 0 or size % known:
            raise ctx.error(f"cannot reshape {src} to {shape}")
        shape[shape.index(-1)] = size // known
    return [_reshape_to(ctx, x, shape)]


@translates("Flatten")
def _flatten(ctx: NodeContext) -> list[Any]:
    x = ctx.input(0)
    src = ctx.type(x).shape
    axis = int(ctx.attr("axis", 1))
    if not -len(src) <= axis <= len(src):
        raise ctx.error(f"axis {axis} is outside {-len(src)}..{len(src)}")
    axis = axis + len(src) if axis < 0 else axis
    shape = (int(np.prod(src[:axis], dtype=np.int64)), int(np.prod(src[axis:], dtype=np.int64)))
    return [_reshape_to(ctx, x, shape)]


@translates("Squeeze")
def _squeeze(ctx: NodeContext) -> list[Any]:
    x = ctx.input(0)
    src = ctx.type(x).shape
    axes = attr_or_input(ctx, "axes", 1)
    if axes is None:
        drop = {i for i, d in enumerate(src) if d == 1}
    else:
        drop = set(norm_axes(ctx, axes, len(src)))
        if any(src[i] != 1 for i in drop):
            raise ctx.error(f"cannot squeeze axes {sorted(drop)} of {src}: not all are 1")
    return [_reshape_to(ctx, x, [d for i, d in enumerate(src) if i not in drop])]


@translates("Unsqueeze")
def _unsqueeze(ctx: NodeContext) -> list[Any]:
    x = ctx.input(0)
    src = list(ctx.type(x).shape)
    axes = attr_or_input(ctx, "axes", 1)
    if not axes:
        raise ctx.error("has no axes")
    new = norm_axes(ctx, axes, len(src) + len(axes))
    rest = iter(src)
    shape = [1 if i in new else next(rest) for i in range(len(src) + len(axes))]
    return [_reshape_to(ctx, x, shape)]


@translates("Transpose")
def _transpose(ctx: NodeContext) -> list[Any]:
    x = ctx.input(0)
    rank = ctx.rank(x)
    perm = ctx.attr("perm")
    perm = list(range(rank))[::-1] if perm is None else [norm_axis(ctx, p, rank) for p in perm]
    return [ctx.emit1("transpose", [x], {"perm": tuple(perm)})]


@translates("Concat")
def _concat(ctx: NodeContext) -> list[Any]:
    if not ctx.inputs or "axis" not in ctx.attrs:
        raise ctx.error("needs inputs and an axis")
    axis = norm_axis(ctx, int(ctx.attrs["axis"]), ctx.rank(ctx.inputs[0]))
    return [ctx.emit1("concat", ctx.inputs, {"axis": axis})]


@translates("Split")
def _split(ctx: NodeContext) -> list[Any]:
    x = ctx.input(0)
    src = ctx.type(x).shape
    axis = norm_axis(ctx, int(ctx.attr("axis", 0)), len(src))
    n, dim = len(ctx.outputs), src[axis]
    sizes = attr_or_input(ctx, "split", 1)
    if sizes is None and "num_outputs" in ctx.attrs:
        n = int(ctx.attrs["num_outputs"])
        chunk = -(-dim // n) if n > 0 else 0
        sizes = [chunk] * (n - 1) + [dim - chunk * (n - 1)]
    elif sizes is None:
        if n == 0 or dim % n:
            raise ctx.error(f"cannot split {dim} into {n} equal parts")
        sizes = [dim // n] * n
    if len(sizes) != len(ctx.outputs) or min(sizes, default=0) < 0 or sum(sizes) != dim:
        raise ctx.error(f"sizes {sizes} do not split {dim} into {len(ctx.outputs)} outputs")
    return ctx.emit("split", [x], {"axis": axis, "sizes": tuple(sizes)}, len(sizes))


@translates("Slice")
def _slice(ctx: NodeContext) -> list[Any]:
    x = ctx.input(0)
    src = ctx.type(x).shape
    starts_in = ctx.const_input(1, "starts")
    ends_in = ctx.const_input(2, "ends")
    if starts_in is None or ends_in is None:
        raise ctx.error("needs starts and ends")
    starts, ends = ints(starts_in), ints(ends_in)
    axes_in = ctx.const_input(3, "axes")
    steps_in = ctx.const_input(4, "steps")
    axes = list(range(len(starts))) if axes_in is None else ints(axes_in)
    steps = [1] * len(starts) if steps_in is None else ints(steps_in)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ctx.error("starts, ends, axes and steps differ in length")
    norm = [norm_axis(ctx, a, len(src)) for a in axes]
    if len(set(norm)) != len(norm):
        raise ctx.error(f"axes {axes} repeat an axis")
    bounds = {i: (0, d, 1) for i, d in enumerate(src)}
    for axis, start, end, step in zip(norm, starts, ends, steps, strict=True):
        bounds[axis] = _clamp(ctx, src[axis], start, end, step)
    attrs = {k: tuple(bounds[i][j] for i in range(len(src)))
             for j, k in enumerate(("starts", "ends", "steps"))}
    return [ctx.emit1("slice", [x], attrs)]


def _clamp(ctx: NodeContext, dim: int, start: int, end: int, step: int
           ) -> tuple[int, int, int]:
    """ONNX's clamping: negative bounds count from the end; then start in [0, dim]
    and end in [0, dim] stepping forward, start in [0, dim-1] and end in [-1, dim-1]
    stepping backward (end -1: through index 0)."""
    if step == 0:
        raise ctx.error("a slice step is 0")
    if dim == 0:
        return 0, 0, step
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        return min(max(start, 0), dim), min(max(end, 0), dim), step
    return min(max(start, 0), dim - 1), min(max(end, -1), dim - 1), step


@translates("Gather")
def _gather(ctx: NodeContext) -> list[Any]:
    data, indices = ctx.input(0), ctx.input(1)
    axis = norm_axis(ctx, int(ctx.attr("axis", 0)), ctx.rank(data))
    values = ctx.const(indices)
    if values is not None:
        dim = ctx.type(data).shape[axis]
        if values.size and (values.min() < -dim or values.max() >= dim):
            raise ctx.error(f"an index lies outside -{dim}..{dim - 1}")
        if values.size and values.min() < 0:
            indices = ctx.constant(np.where(values < 0, values + dim, values), "indices")
    return [ctx.emit1("gather", [data, indices], {"axis": axis})]


@translates("Expand")
def _expand(ctx: NodeContext) -> list[Any]:
    x = ctx.input(0)
    target = ctx.required_const_input(1, "shape")
    try:
        shape = np.broadcast_shapes(ctx.type(x).shape, tuple(ints(target)))
    except ValueError:
        raise ctx.error(f"cannot broadcast {ctx.type(x).shape} with {ints(target)}") \
            from None
    return [ctx.emit1("expand", [x], {"shape": tuple(int(d) for d in shape)})]


@translates("Pad")
def _pad(ctx: NodeContext) -> list[Any]:
    x = ctx.input(0)
    rank = ctx.rank(x)
    mode = ctx.attr("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        raise ctx.error(f"mode {mode!r} is not supported yet (only 'constant')")
    pads = attr_or_input(ctx, "pads", 1)
    if pads is None:
        raise ctx.error("pads must be a constant")
    value = ctx.const_input(2, "constant_value")
    axes = ctx.const_input(3, "axes")
    # pads follow the axes in the order given, so they are not sorted (norm_axes sorts)
    picked = (tuple(norm_axis(ctx, a, rank, "axis") for a in ints(axes))
              if axes is not None else tuple(range(rank)))
    if len(set(picked)) != len(picked):
        raise ctx.error(f"axes {ints(axes)} repeat an axis")
    if len(pads) != 2 * len(picked):
        raise ctx.error(f"pads {pads} must hold a start and an end for each of "
                        f"{len(picked)} axes")
    if min(pads) < 0:
        raise ctx.error(f"negative pads {pads} (cropping) are not supported yet")
    full = [0] * (2 * rank)
    for k, a in enumerate(picked):
        full[a], full[rank + a] = pads[k], pads[len(picked) + k]
    fill = float(np.asarray(value).reshape(-1)[0]) if value is not None and np.size(value) \
        else 0.0
    if not any(full):
        return [x]
    return [ctx.emit1("pad", [x], {"pads": tuple(full), "value": fill})]
