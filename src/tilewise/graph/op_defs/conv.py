"""conv2d (NCHW input, OIHW weight, groups), and the sliding-window arithmetic it shares
with pooling: output sizes and windows gathered as a strided view (im2col)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

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


def window_attrs(node: Node, kernel: Sequence[int] | None = None
                 ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int, int, int],
                            tuple[int, int]]:
    """(kernel, strides, pads, dilations), checked; ``kernel`` given for conv2d, whose
    window is its weight's."""
    kernel = tuple(need_attr(node, "kernel") if kernel is None else kernel)
    strides = tuple(need_attr(node, "strides"))
    pads = tuple(need_attr(node, "pads"))
    dilations = tuple(need_attr(node, "dilations"))
    if len(kernel) != 2 or len(strides) != 2 or len(dilations) != 2 or len(pads) != 4:
        raise node_error(node, "takes 2 kernel sizes, strides and dilations and 4 pads")
    if min(kernel) < 1 or min(strides) < 1 or min(dilations) < 1 or min(pads) < 0:
        raise node_error(node, f"has kernel {kernel}, strides {strides}, dilations "
                               f"{dilations}, pads {pads}: sizes must be positive, pads >= 0")
    return kernel, strides, pads, dilations  # type: ignore[return-value]


def out_size(node: Node, size: int, k: int, s: int, p0: int, p1: int, d: int,
             ceil_mode: bool = False) -> int:
    """Windows along one axis. With ``ceil_mode`` a partial last window counts if it
    starts inside the input or its leading pad (ONNX, as ONNX Runtime computes it)."""
    span = size + p0 + p1 - (d * (k - 1) + 1)
    if span < 0:
        raise node_error(node, f"its window ({k} wide, dilation {d}) is larger than the "
                               f"padded input ({size} + {p0} + {p1})")
    if not ceil_mode:
        return span // s + 1
    n = -(-span // s) + 1
    if (n - 1) * s >= size + p0:
        n -= 1
    return n


def windows(x: np.ndarray, kernel: Sequence[int], strides: Sequence[int],
            dilations: Sequence[int], out: Sequence[int]) -> np.ndarray:
    """A read-only (N, C, kh, kw, oh, ow) view of the windows of an NCHW array that is
    already padded to cover them."""
    n, c = x.shape[:2]
    sn, sc, sh, sw = x.strides
    shape = (n, c, kernel[0], kernel[1], out[0], out[1])
    steps = (sn, sc, sh * dilations[0], sw * dilations[1], sh * strides[0], sw * strides[1])
    return as_strided(x, shape, steps, writeable=False)


def _conv_infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    x, w, b = take_inputs(node, types, 2, 3)
    assert x is not None and w is not None
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise node_error(node, f"takes a 4-D input and weight, not {x} and {w}")
    check_dtype(node, x, FLOATS)
    if w.dtype != x.dtype or (b is not None and b.dtype != x.dtype):
        raise node_error(node, "input, weight and bias must share one element type")
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    groups = need_attr(node, "groups")
    if not isinstance(groups, int) or groups < 1 or c != cg * groups or o % groups:
        raise node_error(node, f"input has {c} channels, weight {w.shape} with groups "
                               f"{groups} expects {cg * groups if isinstance(groups, int) else '?'}"
                               f" and {o} output channels divisible by groups")
    if b is not None and b.shape != (o,):
        raise node_error(node, f"bias has shape {b.shape}, not ({o},)")
    _, (sh, sw), (pt, pl, pb, pr), (dh, dw) = window_attrs(node, (kh, kw))
    oh = out_size(node, h, kh, sh, pt, pb, dh)
    ow = out_size(node, wd, kw, sw, pl, pr, dw)
    return [TensorType((n, o, oh, ow), x.dtype)]


def _conv(node: Node, args: Sequence[Any]) -> list[np.ndarray]:
    x, w = np.asarray(args[0]), np.asarray(args[1])
    b = args[2] if len(args) > 2 else None
    n, c = x.shape[:2]
    o, cg, kh, kw = w.shape
    g = node.attrs["groups"]
    _, strides, (pt, pl, pb, pr), dilations = window_attrs(node, (kh, kw))
    oh = out_size(node, x.shape[2], kh, strides[0], pt, pb, dilations[0])
    ow = out_size(node, x.shape[3], kw, strides[1], pl, pr, dilations[1])
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    cols = windows(xp, (kh, kw), strides, dilations, (oh, ow))
    cols = cols.reshape(n, g, cg * kh * kw, oh * ow)  # the im2col copy
    y = np.matmul(w.reshape(g, o // g, cg * kh * kw), cols).reshape(n, o, oh, ow)
    if b is not None:
        y = y + np.asarray(b).reshape(1, o, 1, 1)
    return [np.ascontiguousarray(y, dtype=x.dtype)]


register(OpDef("conv2d", OpPattern.ANCHOR, _conv_infer, _conv))
