"""Injective operators: each output element is one input element, found by index
arithmetic (reshape, transpose, concat, split, slice, gather)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ... import te
from ...errors import TensorError
from ...te import Tensor


def _axis(axis: int, ndim: int, what: str) -> int:
    if not -ndim <= axis < ndim:
        raise TensorError(f"{what}: axis {axis} is out of range for rank {ndim}")
    return axis % ndim


def _strides(shape: Sequence[int]) -> list[int]:
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= n
    return out[::-1]


def reshape(x: Tensor, shape: Sequence[int], name: str = "reshape") -> Tensor:
    """``x.reshape(shape)`` (C order); ``shape`` is concrete (no -1).

    The output's flat index is split into ``x``'s indices with ``//`` and ``%`` by
    constants; the simplifier folds them away where the shapes share a suffix.
    """
    shape = tuple(shape)
    if math.prod(shape) != math.prod(x.shape):
        raise TensorError(f"reshape of {x.name}: {x.shape} has {math.prod(x.shape)} "
                          f"elements, {shape} has {math.prod(shape)}")
    out_strides, in_strides = _strides(shape), _strides(x.shape)

    def body(*i):
        flat = sum((ix * st for ix, st in zip(i, out_strides, strict=True)), te.const(0))
        index = []
        for d, (n, st) in enumerate(zip(x.shape, in_strides, strict=True)):
            v = flat // st if st != 1 else flat
            index.append(v % n if d > 0 else v)
        return x[tuple(index)]

    return te.compute(shape, body, name=name)


def transpose(x: Tensor, perm: Sequence[int], name: str = "transpose") -> Tensor:
    """``np.transpose(x, perm)``: output axis ``k`` is input axis ``perm[k]``."""
    perm = tuple(perm)
    if sorted(perm) != list(range(x.ndim)):
        raise TensorError(f"transpose of {x.name}: {perm} is not a permutation of its "
                          f"{x.ndim} axes")
    shape = tuple(x.shape[p] for p in perm)

    def body(*i):
        index = [None] * x.ndim
        for k, p in enumerate(perm):
            index[p] = i[k]
        return x[tuple(index)]

    return te.compute(shape, body, name=name)


def concat(xs: Sequence[Tensor], axis: int, name: str = "concat") -> Tensor:
    """``np.concatenate(xs, axis)``: a select on the axis' index picks the input."""
    xs = list(xs)
    if not xs:
        raise TensorError("concat: needs at least one tensor")
    ndim = xs[0].ndim
    axis = _axis(axis, ndim, "concat")
    for t in xs[1:]:
        same = t.ndim == ndim and all(
            a == b for d, (a, b) in enumerate(zip(t.shape, xs[0].shape, strict=True))
            if d != axis)
        if not same or t.dtype != xs[0].dtype:
            raise TensorError(f"concat: {t.name} {t.shape} {t.dtype} does not match "
                              f"{xs[0].name} {xs[0].shape} {xs[0].dtype} off axis {axis}")
    starts = [0]
    for t in xs:
        starts.append(starts[-1] + t.shape[axis])
    shape = tuple(starts[-1] if d == axis else n for d, n in enumerate(xs[0].shape))

    def read(t: Tensor, start: int, i: tuple):
        return t[tuple(ix - start if d == axis else ix for d, ix in enumerate(i))]

    def body(*i):
        v = read(xs[-1], starts[-2], i)
        for k in range(len(xs) - 2, -1, -1):
            v = te.if_then_else(i[axis] < starts[k + 1], read(xs[k], starts[k], i), v)
        return v

    return te.compute(shape, body, name=name)


def split(x: Tensor, axis: int, sizes: Sequence[int], name: str = "split") -> list[Tensor]:
    """``x`` cut along ``axis`` into pieces of ``sizes`` (summing to the axis' length):
    one tensor per piece."""
    axis = _axis(axis, x.ndim, "split")
    sizes = list(sizes)
    if sum(sizes) != x.shape[axis] or any(n <= 0 for n in sizes):
        raise TensorError(f"split of {x.name}: sizes {sizes} must be positive and sum to "
                          f"{x.shape[axis]} (axis {axis})")
    def piece(start: int):
        return lambda *i: x[tuple(ix + start if d == axis else ix for d, ix in enumerate(i))]

    outs, start = [], 0
    for k, n in enumerate(sizes):
        shape = tuple(n if d == axis else m for d, m in enumerate(x.shape))
        outs.append(te.compute(shape, piece(start), name=f"{name}_{k}"))
        start += n
    return outs


def strided_slice(x: Tensor, starts: Sequence[int], ends: Sequence[int],
                  steps: Sequence[int], name: str = "slice") -> Tensor:
    """``x[s0:e0:t0, s1:e1:t1, ...]``, one ``start:end:step`` per axis.

    Bounds follow the graph's convention (docs/graph-ops.md): non-negative and clamped,
    so an axis takes ``range(start, end, step)``; a negative step runs down to ``end``
    exclusive, where ``end = -1`` means through index 0. An empty axis is refused
    (te has no zero-size tensors).
    """
    if not len(starts) == len(ends) == len(steps) == x.ndim:
        raise TensorError(f"slice of {x.name}: need one start, end and step per axis "
                          f"({x.ndim}), got {len(starts)}, {len(ends)}, {len(steps)}")
    shape = []
    for d, (b, e, t) in enumerate(zip(starts, ends, steps, strict=True)):
        n = len(range(b, e, t)) if t else 0
        if n == 0 or not (0 <= b < x.shape[d] and 0 <= b + (n - 1) * t < x.shape[d]):
            raise TensorError(f"slice of {x.name}: axis {d} [{b}:{e}:{t}] of extent "
                              f"{x.shape[d]} is empty or reaches outside it")
        shape.append(n)
    return te.compute(tuple(shape), lambda *i: x[tuple(
        b + ix * t for ix, b, t in zip(i, starts, steps, strict=True))], name=name)


def take(data: Tensor, indices: Tensor, axis: int, name: str = "gather") -> Tensor:
    """``np.take(data, indices, axis)`` (ONNX ``Gather``): the output's shape is
    ``data.shape[:axis] + indices.shape + data.shape[axis + 1:]``.

    A negative index counts from the end; an index still outside ``[0, n)`` is clamped
    into it (ONNX calls it an error; a kernel never reads outside ``data``).
    """
    axis = _axis(axis, data.ndim, "gather")
    if not indices.dtype.is_int:
        raise TensorError(f"gather: indices {indices.name} must be integers, not "
                          f"{indices.dtype}")
    n, r = data.shape[axis], indices.ndim
    shape = data.shape[:axis] + indices.shape + data.shape[axis + 1:]

    def body(*i):
        ix = indices[i[axis:axis + r]]
        ix = te.if_then_else(ix < 0, ix + n, ix)
        ix = te.min(te.max(ix, 0), n - 1)
        return data[(*i[:axis], ix, *i[axis + r:])]

    return te.compute(shape, body, name=name)


def pad(x: Tensor, before: Sequence[int], after: Sequence[int], value: float = 0.0,
        name: str = "pad") -> Tensor:
    """``x`` with ``before[d]`` and ``after[d]`` elements of ``value`` around axis ``d``
    (NumPy's ``np.pad(..., constant_values=value)``); ``value`` may be -inf."""
    if not len(before) == len(after) == x.ndim or min(*before, *after) < 0:
        raise TensorError(f"pad of {x.name}: need a non-negative before and after per "
                          f"axis ({x.ndim}), got {tuple(before)} and {tuple(after)}")
    shape = tuple(n + b + a for n, b, a in zip(x.shape, before, after, strict=True))
    fill = te.const(value, str(x.dtype))

    def element(*i):
        inside = [c for ix, b, a, n in zip(i, before, after, x.shape, strict=True)
                  if b or a for c in (ix >= b, ix < b + n)]
        read = x[tuple(ix - b for ix, b in zip(i, before, strict=True))]
        return te.if_then_else(te.all(*inside), read, fill) if inside else read

    return te.compute(shape, element, name=name)
