"""Depthwise NCHW convolution on a GPU (CUDA or OpenCL): the template
``gpu_depthwise_conv2d_nchw`` (weights (C, 1, R, S), channel multiplier 1).

One channel of one image per block row (``blockIdx.y``), one ``(ty * ry) x (tx * rx)``
tile of its output plane per block (``blockIdx.x``), each of the block's ``ty x tx``
threads an ``ry x rx`` register tile. The block's threads first copy together the
input patch its tile reads, zero padding included, and the channel's weights into
shared memory; then every thread sums its tile over the window from there. Where a
tile does not divide the plane, the outputs past its edge are skipped
(:mod:`.gpu_tiles`).
Any stride, padding and dilation.

The fallback is chosen from the device's limits (:class:`.DeviceLimits`), so it
builds and runs on any device that can run the template at all:

>>> from tilewise.autotune.space import ConfigSpace
>>> from tilewise.target import Target
>>> cfg = ConfigSpace(Target.from_str("cuda -arch=sm_90"))
>>> s, args = gpu_depthwise_conv2d_nchw_schedule(cfg, 1, 32, 112, 112, 3, 3, 1, 1)
>>> print(cfg.fallback)  # doctest: +ELLIPSIS
#...(tile_y=[-1, 8, 2], tile_x=[-1, 16, 1], unroll=True)
"""

from __future__ import annotations

import numpy as np

from ..autotune import template
from ..ir.dtype import as_dtype
from ..runtime.device import DeviceLimits
from .depthwise_conv2d import depthwise_conv2d_compute, depthwise_flop, depthwise_reference
from .gpu_tiles import (
    bind_threads,
    check_grid,
    define_tiles,
    fallback_tiles,
    fill_cooperatively,
    limits_of,
    limits_refusal,
    split_axis,
    unroll_tile,
    window_stages,
)
from .window import Pair, out_size, pair

# Each weight a thread reads serves this many of its outputs.
_TILE_OUTPUTS = 4


def patch_elements(rows: int, cols: int, R: int, S: int, stride: tuple[int, int],
                   dilation: tuple[int, int]) -> int:
    """Input elements a ``rows x cols`` output tile reads."""
    (sh, sw), (dh, dw) = stride, dilation
    return ((rows - 1) * sh + (R - 1) * dh + 1) * ((cols - 1) * sw + (S - 1) * dw + 1)


def refusal(tile_y, tile_x, R: int, S: int, stride, dilation, itemsize: int,
            limits: DeviceLimits) -> str:
    """Why a config cannot run on a device with ``limits``; "" where it can."""
    (_, ty, ry), (_, tx, rx) = tile_y, tile_x
    patch = patch_elements(ty * ry, tx * rx, R, S, stride, dilation)
    return limits_refusal((ty, tx), (ry, rx), (patch + R * S) * itemsize, limits)


def fallback_choices(N: int, C: int, OH: int, OW: int, R: int, S: int, stride, dilation,
                     dtype: str, limits: DeviceLimits) -> dict:
    """The config used without tuning records, of those the device can run: the tiles
    :func:`.gpu_tiles.fallback_tiles` ranks first for a register tile of 4 outputs."""
    itemsize = np.dtype(dtype).itemsize
    tile_y, tile_x = fallback_tiles(
        "gpu_depthwise_conv2d_nchw", (OH, OW), N * C,
        lambda c: refusal(*c, R, S, stride, dilation, itemsize, limits), _TILE_OUTPUTS, limits)
    return {"tile_y": tile_y, "tile_x": tile_x, "unroll": True}


def gpu_depthwise_conv2d_nchw_schedule(cfg, N: int, C: int, H: int, W: int, R: int, S: int,
                                       stride: Pair = 1, pad: Pair = 0, dilation: Pair = 1,
                                       dtype: str = "float32",
                                       limits: DeviceLimits | None = None):
    """The template's body, for a device whose ``limits`` are known (an OpenCL
    device's, from :func:`tilewise.runtime.opencl.device_limits`)."""
    as_dtype(dtype)
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(pad), pair(dilation)
    OH, OW = out_size(H, R, sh, ph, dh), out_size(W, S, sw, pw, dw)
    # the algorithm (checks the remaining sizes)
    (data, kernel), out, _, padded = depthwise_conv2d_compute(N, C, H, W, R, S, stride, pad,
                                                              dilation, dtype)
    check_grid("gpu_depthwise_conv2d_nchw", cfg.target, {"y": N * C})
    limits = limits or limits_of(cfg.target)
    define_tiles(cfg, {"tile_y": OH, "tile_x": OW}, whole=False)
    cfg.define_knob("unroll", [False, True])  # the register tile's loops
    cfg.fallback_with(**fallback_choices(N, C, OH, OW, R, S, (sh, sw), (dh, dw), dtype,
                                         limits))
    cfg.add_flop(depthwise_flop(N, C, H, W, R, S, stride, pad, dilation))
    itemsize = np.dtype(dtype).itemsize

    def why(tile_y, tile_x) -> str:
        return refusal(tile_y.size, tile_x.size, R, S, (sh, sw), (dh, dw), itemsize, limits)

    cfg.require(("tile_y", "tile_x"), lambda *knobs: not why(*knobs),
                lambda *knobs: f"gpu_depthwise_conv2d_nchw: {why(*knobs)}")
    _, ty, ry = cfg["tile_y"].size
    _, tx, rx = cfg["tile_x"].size

    # how it is scheduled
    s, OL, shared = window_stages(out, padded, kernel)
    n, c, y, x = s[out].op.axis
    by, ty_, ry_ = split_axis(s[out], y, ty, ry)
    bx, tx_, rx_ = split_axis(s[out], x, tx, rx)
    s[out].reorder(n, c, by, bx, ty_, tx_, ry_, rx_)
    bind_threads(s[out], [s[out].fuse(n, c), s[out].fuse(by, bx), ty_, tx_],
                 ["blockIdx.y", "blockIdx.x", "threadIdx.y", "threadIdx.x"])
    s[OL].compute_at(s[out], tx_)
    _, _, cy, cx = s[OL].op.axis
    s[OL].reorder(*s[OL].op.reduce_axis, cy, cx)
    if cfg["unroll"].val:
        unroll_tile([(s[OL], (cy, cx)), (s[out], (ry_, rx_))])
    fill_cooperatively(s, shared, s[out], tx_, [("threadIdx.y", ty), ("threadIdx.x", tx)])
    return s, [data, kernel, out]


@template("gpu_depthwise_conv2d_nchw", reference=depthwise_reference, flop=depthwise_flop,
          targets=("cuda", "opencl"))
def gpu_depthwise_conv2d_nchw(cfg, N: int, C: int, H: int, W: int, R: int, S: int,
                              stride: Pair = 1, pad: Pair = 0, dilation: Pair = 1,
                              dtype: str = "float32"):
    """Depthwise NCHW conv2d, weights (C, 1, R, S), on a CUDA or OpenCL device.

    Any stride, padding, dilation and window."""
    return gpu_depthwise_conv2d_nchw_schedule(cfg, N, C, H, W, R, S, stride, pad, dilation,
                                              dtype)
