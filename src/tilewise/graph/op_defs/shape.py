"""Injective operators that move data without arithmetic: reshape, transpose, concat,
split, slice, gather, and expand (broadcast)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..ir import Node, TensorType
from ..ops import (
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


def _one(node: Node, types: Sequence[InType]) -> TensorType:
    (x,) = take_inputs(node, types, 1)
    assert x is not None
    return x


def _shape_attr(node: Node) -> tuple[int, ...]:
    shape = tuple(need_attr(node, "shape"))
    if any(not isinstance(d, int) or d < 0 for d in shape):
        raise node_error(node, f"shape {shape} must hold non-negative sizes")
    return shape


def _axis(node: Node, rank: int) -> int:
    axis = need_attr(node, "axis")
    if not isinstance(axis, int) or not 0 <= axis < rank:
        raise node_error(node, f"axis {axis!r} is outside 0..{rank - 1}")
    return axis


def _reshape_infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    x = _one(node, types)
    shape = _shape_attr(node)
    if int(np.prod(shape, dtype=np.int64)) != x.size:
        raise node_error(node, f"cannot reshape {x.shape} ({x.size} elements) to {shape}")
    return [TensorType(shape, x.dtype)]


register(OpDef("reshape", OpPattern.INJECTIVE, _reshape_infer,
               lambda node, args: [np.reshape(args[0], node.attrs["shape"])]))


def _transpose_infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    x = _one(node, types)
    perm = tuple(need_attr(node, "perm"))
    if sorted(perm) != list(range(len(x.shape))):
        raise node_error(node, f"perm {perm} is not a permutation of {len(x.shape)} axes")
    return [TensorType(tuple(x.shape[p] for p in perm), x.dtype)]


register(OpDef("transpose", OpPattern.INJECTIVE, _transpose_infer,
               lambda node, args: [np.ascontiguousarray(
                   np.transpose(args[0], node.attrs["perm"]))]))


def _concat_infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    if not types or any(t is None for t in types):
        raise node_error(node, "takes one or more inputs")
    first = types[0]
    assert first is not None
    axis = _axis(node, len(first.shape))
    total = 0
    for t in types:
        assert t is not None
        same = len(t.shape) == len(first.shape) and all(
            a == b for i, (a, b) in enumerate(zip(t.shape, first.shape, strict=True)) if i != axis)
        if not same or t.dtype != first.dtype:
            raise node_error(node, f"cannot join {t} to {first} along axis {axis}")
        total += t.shape[axis]
    shape = first.shape[:axis] + (total,) + first.shape[axis + 1:]
    return [TensorType(shape, first.dtype)]


register(OpDef("concat", OpPattern.INJECTIVE, _concat_infer,
               lambda node, args: [np.concatenate(args, axis=node.attrs["axis"])]))


def _split_infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    x = _one(node, types)
    axis = _axis(node, len(x.shape))
    sizes = tuple(need_attr(node, "sizes"))
    if (len(sizes) != len(node.outputs) or any(s < 0 for s in sizes)
            or sum(sizes) != x.shape[axis]):
        raise node_error(node, f"sizes {sizes} do not split axis {axis} of {x} into "
                               f"{len(node.outputs)} outputs")
    return [TensorType(x.shape[:axis] + (s,) + x.shape[axis + 1:], x.dtype) for s in sizes]


def _split(node: Node, args: Sequence[Any]) -> list[np.ndarray]:
    cuts = np.cumsum(node.attrs["sizes"])[:-1]
    return [np.ascontiguousarray(p) for p in np.split(args[0], cuts, axis=node.attrs["axis"])]


register(OpDef("split", OpPattern.INJECTIVE, _split_infer, _split))


def slices(node: Node, shape: Sequence[int]) -> tuple[slice, ...]:
    """The Python slices of a slice node, checked against ``shape``: with a positive
    step, 0 <= start, end <= dim; with a negative one, 0 <= start <= dim - 1 and
    -1 <= end <= dim - 1, where -1 means through index 0."""
    starts, ends, steps = (tuple(need_attr(node, k)) for k in ("starts", "ends", "steps"))
    if not len(starts) == len(ends) == len(steps) == len(shape):
        raise node_error(node, f"needs a start, end and step for each of {len(shape)} axes")
    out = []
    for start, end, step, dim in zip(starts, ends, steps, shape, strict=True):
        if step > 0:
            ok = 0 <= start <= dim and 0 <= end <= dim
        else:
            ok = step < 0 and (dim == 0 or (0 <= start <= dim - 1 and -1 <= end <= dim - 1))
        if not ok:
            raise node_error(node, f"slice {start}:{end}:{step} is not a clamped slice of "
                                   f"an axis of {dim}")
        out.append(slice(start, None if end < 0 else end, step))
    return tuple(out)


def _slice_infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    x = _one(node, types)
    shape = tuple(len(range(d)[s])
                  for s, d in zip(slices(node, x.shape), x.shape, strict=True))
    return [TensorType(shape, x.dtype)]


register(OpDef("slice", OpPattern.INJECTIVE, _slice_infer,
               lambda node, args: [np.ascontiguousarray(
                   np.asarray(args[0])[slices(node, np.shape(args[0]))])]))


def _gather_infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    data, indices = take_inputs(node, types, 2)
    assert data is not None and indices is not None
    check_dtype(node, indices, ("int32", "int64"), "indices")
    axis = _axis(node, len(data.shape))
    shape = data.shape[:axis] + indices.shape + data.shape[axis + 1:]
    return [TensorType(shape, data.dtype)]


def _gather(node: Node, args: Sequence[Any]) -> list[np.ndarray]:
    data, indices = np.asarray(args[0]), np.asarray(args[1])
    axis = node.attrs["axis"]
    dim = data.shape[axis]
    if indices.size and (indices.min() < -dim or indices.max() >= dim):
        raise node_error(node, f"an index lies outside -{dim}..{dim - 1}")
    return [np.take(data, indices, axis=axis)]


register(OpDef("gather", OpPattern.INJECTIVE, _gather_infer, _gather))


def _expand_infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    x = _one(node, types)
    shape = _shape_attr(node)
    if broadcast(node, x.shape, shape) != shape:
        raise node_error(node, f"cannot broadcast {x.shape} to exactly {shape}")
    return [TensorType(shape, x.dtype)]


register(OpDef("expand", OpPattern.BROADCAST, _expand_infer,
               lambda node, args: [np.array(np.broadcast_to(args[0], node.attrs["shape"]))]))


def _pad_widths(node: Node, rank: int) -> list[tuple[int, int]]:
    """``pads`` as ONNX writes them: every axis's start, then every axis's end."""
    pads = tuple(need_attr(node, "pads"))
    if len(pads) != 2 * rank or any(not isinstance(p, int) or p < 0 for p in pads):
        raise node_error(node, f"pads {pads} must be {2 * rank} non-negative sizes")
    return list(zip(pads[:rank], pads[rank:], strict=True))


def _pad_infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    x = _one(node, types)
    widths = _pad_widths(node, len(x.shape))
    return [TensorType(tuple(n + b + a for n, (b, a) in zip(x.shape, widths, strict=True)),
                       x.dtype)]


register(OpDef("pad", OpPattern.INJECTIVE, _pad_infer,
               lambda node, args: [np.pad(args[0], _pad_widths(node, args[0].ndim),
                                          constant_values=node.attrs.get("value", 0.0))]))
