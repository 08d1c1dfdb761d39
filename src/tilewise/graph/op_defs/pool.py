"""Pooling over NCHW: max_pool2d, avg_pool2d (ceil_mode and count_include_pad as ONNX
defines them) and global_avg_pool."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..ir import Node, TensorType
from ..ops import (
    FLOATS,
    InType,
    OpDef,
    OpPattern,
    check_dtype,
    need_attr,
    node_error,
    register,
    take_inputs,
)
from .conv import out_size, window_attrs, windows


def _geometry(node: Node, shape: Sequence[int]) -> tuple[Any, ...]:
    """(kernel, strides, pads, dilations, (oh, ow)) of a pooling node on ``shape``."""
    kernel, strides, pads, dilations = window_attrs(node)
    ceil_mode = bool(need_attr(node, "ceil_mode"))
    out = tuple(out_size(node, shape[2 + i], kernel[i], strides[i], pads[i], pads[i + 2],
                         dilations[i], ceil_mode) for i in range(2))
    return kernel, strides, pads, dilations, out


def _nchw_input(node: Node, types: Sequence[InType]) -> TensorType:
    """A pool's one input: floating point, 4-D NCHW."""
    (x,) = take_inputs(node, types, 1)
    assert x is not None
    check_dtype(node, x, FLOATS)
    if len(x.shape) != 4:
        raise node_error(node, f"pools a 4-D NCHW input, not {x}")
    return x


def _pool_infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    x = _nchw_input(node, types)
    if node.op == "avg_pool2d":
        need_attr(node, "count_include_pad")
    out = _geometry(node, x.shape)[-1]
    return [TensorType(x.shape[:2] + out, x.dtype)]


def _padded(x: np.ndarray, node: Node, value: float) -> tuple[np.ndarray, tuple[Any, ...]]:
    """``x`` padded with ``value`` by its pads, and at the end by however much more the
    last (ceil_mode) windows reach; and the geometry."""
    kernel, strides, pads, dilations, out = geo = _geometry(node, x.shape)
    extra = [max(0, (out[i] - 1) * strides[i] + dilations[i] * (kernel[i] - 1) + 1
                 - (x.shape[2 + i] + pads[i] + pads[i + 2])) for i in range(2)]
    widths = ((0, 0), (0, 0), (pads[0], pads[2] + extra[0]), (pads[1], pads[3] + extra[1]))
    return np.pad(x, widths, constant_values=value), geo


def _max_pool(node: Node, args: Sequence[Any]) -> list[np.ndarray]:
    x = np.asarray(args[0])
    xp, (kernel, strides, _, dilations, out) = _padded(x, node, -np.inf)
    return [windows(xp, kernel, strides, dilations, out).max(axis=(2, 3)).astype(x.dtype)]


def _avg_pool(node: Node, args: Sequence[Any]) -> list[np.ndarray]:
    x = np.asarray(args[0])
    xp, (kernel, strides, pads, dilations, out) = _padded(x.astype(np.float64), node, 0.0)
    total = windows(xp, kernel, strides, dilations, out).sum(axis=(2, 3))
    # The divisor counts the window's elements inside the input, and with
    # count_include_pad those in the explicit pads too, never those past them.
    h, w = x.shape[2:]
    mask = np.zeros((1, 1) + xp.shape[2:])
    if node.attrs["count_include_pad"]:
        mask[..., : h + pads[0] + pads[2], : w + pads[1] + pads[3]] = 1
    else:
        mask[..., pads[0]: pads[0] + h, pads[1]: pads[1] + w] = 1
    count = windows(mask, kernel, strides, dilations, out).sum(axis=(2, 3))
    return [(total / np.maximum(count, 1)).astype(x.dtype)]


register(OpDef("max_pool2d", OpPattern.ANCHOR, _pool_infer, _max_pool))
register(OpDef("avg_pool2d", OpPattern.ANCHOR, _pool_infer, _avg_pool))


def _global_infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    x = _nchw_input(node, types)
    return [TensorType(x.shape[:2] + (1, 1), x.dtype)]


def _global(node: Node, args: Sequence[Any]) -> list[np.ndarray]:
    x = np.asarray(args[0])
    return [x.mean(axis=(2, 3), keepdims=True, dtype=np.float64).astype(x.dtype)]


register(OpDef("global_avg_pool", OpPattern.REDUCTION, _global_infer, _global))
