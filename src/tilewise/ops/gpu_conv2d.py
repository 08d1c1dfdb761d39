"""Direct NCHW convolution on a GPU (CUDA or OpenCL): the template ``gpu_conv2d_nchw``.

A block of ``tk x ty x tx`` threads computes ``tk * rk`` output channels of a
``(ty * ry) x (tx * rx)`` tile of one image's output, each thread an ``rk x ry x rx``
register tile (its channels, rows and columns). Blocks run over (image, channel
tile) along z, row tiles along y and column tiles along x; where a tile does not
divide its axis, the outputs past the edge are skipped (:mod:`.gpu_tiles`).

The sum over the input channels runs in steps of ``ct``: at each, the block's threads
together copy the input patch its outputs read (zero padding included: out of the
image they write zeros) and the weights of its channels into shared memory, then
every thread sums its register tile over the step. ``step="window"`` copies the whole
kernel window's patch at once; ``step="row"`` one window row at a time, a patch of
fewer rows (for large windows). Any stride, padding and dilation.

The fallback is chosen from the device's limits (:class:`.DeviceLimits`), so it
builds and runs on any device that can run the template at all:

>>> from tilewise.autotune.space import ConfigSpace
>>> from tilewise.target import Target
>>> cfg = ConfigSpace(Target.from_str("cuda -arch=sm_90"))
>>> s, args = gpu_conv2d_nchw_schedule(cfg, 1, 128, 28, 28, 128, 3, 3, 1, 1)
>>> print(cfg.fallback)  # doctest: +ELLIPSIS
#...(tile_k=[-1, 16, 2], tile_y=[-1, 2, 2], tile_x=[-1, 4, 1], ct=8, step=window, unroll=True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..autotune import template
from ..ir.dtype import as_dtype
from ..runtime.device import DeviceLimits
from .conv2d import conv2d_flop, conv2d_nchw_compute, conv2d_reference
from .gpu_tiles import (
    TILE_ACCUMULATORS,
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

_CT = (1, 2, 4, 8, 16, 32)
_STEPS = ("window", "row")


@dataclass(frozen=True)
class Geometry:
    """A convolution's output and window: what its tiles' shared patches span."""

    N: int
    K: int
    OH: int
    OW: int
    R: int
    S: int
    stride: tuple[int, int]
    dilation: tuple[int, int]

    def patch(self, rows: int, cols: int, step: str) -> int:
        """Input elements per channel that a ``rows x cols`` output tile reads in one
        step: the whole window's, or one window row's."""
        (sh, sw), (dh, dw) = self.stride, self.dilation
        window_rows = (self.R - 1) * dh + 1 if step == "window" else 1
        return ((rows - 1) * sh + window_rows) * ((cols - 1) * sw + (self.S - 1) * dw + 1)

    def blocks(self, channels: int, rows: int, cols: int) -> int:
        """Blocks in the grid of ``channels x rows x cols`` output tiles."""
        return (self.N * -(-self.K // channels) * -(-self.OH // rows)
                * -(-self.OW // cols))

    def shared_bytes(self, channels: int, rows: int, cols: int, ct: int, step: str,
                     itemsize: int) -> int:
        """The shared tiles of a step: the patch of ``ct`` input channels and the
        weights of ``channels`` output channels over them."""
        taps = self.R * self.S if step == "window" else self.S
        return (ct * self.patch(rows, cols, step) + channels * ct * taps) * itemsize


def refusal(tiles, ct: int, step: str, geo: Geometry, itemsize: int,
            limits: DeviceLimits) -> str:
    """Why a config cannot run on a device with ``limits``; "" where it can.
    ``tiles``: the ``[-1, threads, regs]`` splits of the channels, rows and columns."""
    (_, tk, rk), (_, ty, ry), (_, tx, rx) = tiles
    return limits_refusal((tk, ty, tx), (rk, ry, rx),
                          geo.shared_bytes(tk * rk, ty * ry, tx * rx, ct, step, itemsize),
                          limits)


def _ct_values(C: int) -> list[int]:
    return [c for c in _CT if c <= C]


def fallback_choices(C: int, geo: Geometry, dtype: str, limits: DeviceLimits) -> dict:
    """The config used without tuning records, of those the device can run: the tiles
    :func:`.gpu_tiles.fallback_tiles` ranks first for a register tile of 16 outputs;
    then the whole window a step, ``ct`` nearest 8."""
    itemsize = np.dtype(dtype).itemsize
    smallest = _ct_values(C)[0]
    tiles = fallback_tiles("gpu_conv2d_nchw", (geo.K, geo.OH, geo.OW), geo.N,
                           lambda c: refusal(c, smallest, "row", geo, itemsize, limits),
                           TILE_ACCUMULATORS, limits)
    steps = [(ct, step) for step in _STEPS for ct in _ct_values(C)
             if not refusal(tiles, ct, step, geo, itemsize, limits)]
    ct, step = min(steps, key=lambda s: (_STEPS.index(s[1]), abs(s[0] - 8)))
    return {"tile_k": tiles[0], "tile_y": tiles[1], "tile_x": tiles[2], "ct": ct,
            "step": step, "unroll": True}


def gpu_conv2d_nchw_schedule(cfg, N: int, C: int, H: int, W: int, K: int, R: int, S: int,
                             stride: Pair = 1, pad: Pair = 0, dilation: Pair = 1,
                             dtype: str = "float32", limits: DeviceLimits | None = None):
    """The template's body, for a device whose ``limits`` are known (an OpenCL
    device's, from :func:`tilewise.runtime.opencl.device_limits`)."""
    as_dtype(dtype)
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(pad), pair(dilation)
    geo = Geometry(N, K, out_size(H, R, sh, ph, dh), out_size(W, S, sw, pw, dw), R, S,
                   (sh, sw), (dh, dw))
    # the algorithm (checks the remaining sizes)
    data, kernel, padded, out = conv2d_nchw_compute(N, C, H, W, K, R, S, stride, pad,
                                                    dilation, dtype)
    limits = limits or limits_of(cfg.target)
    define_tiles(cfg, {"tile_k": K, "tile_y": geo.OH, "tile_x": geo.OW}, whole=False)
    cfg.define_knob("ct", _ct_values(C))
    cfg.define_knob("step", list(_STEPS))
    cfg.define_knob("unroll", [False, True])  # the register tile's loops
    cfg.fallback_with(**fallback_choices(C, geo, dtype, limits))
    cfg.add_flop(conv2d_flop(N, C, H, W, K, R, S, stride, pad, dilation))
    itemsize = np.dtype(dtype).itemsize

    def why(tile_k, tile_y, tile_x, ct, step) -> str:
        return refusal((tile_k.size, tile_y.size, tile_x.size), ct, step, geo, itemsize,
                       limits)

    cfg.require(("tile_k", "tile_y", "tile_x", "ct", "step"), lambda *knobs: not why(*knobs),
                lambda *knobs: f"gpu_conv2d_nchw: {why(*knobs)}")
    _, tk, rk = cfg["tile_k"].size
    _, ty, ry = cfg["tile_y"].size
    _, tx, rx = cfg["tile_x"].size
    check_grid("gpu_conv2d_nchw", cfg.target, {"z": geo.blocks(tk * rk, geo.OH, geo.OW),
                                               "y": -(-geo.OH // (ty * ry))})

    # how it is scheduled
    s, OL, shared = window_stages(out, padded, kernel)
    n, k, y, x = s[out].op.axis
    bk, tk_, rk_ = split_axis(s[out], k, tk, rk)
    by, ty_, ry_ = split_axis(s[out], y, ty, ry)
    bx, tx_, rx_ = split_axis(s[out], x, tx, rx)
    s[out].reorder(n, bk, by, bx, tk_, ty_, tx_, rk_, ry_, rx_)
    bind_threads(s[out], [s[out].fuse(n, bk), by, bx, tk_, ty_, tx_],
                 ["blockIdx.z", "blockIdx.y", "blockIdx.x", "threadIdx.z", "threadIdx.y",
                  "threadIdx.x"])
    s[OL].compute_at(s[out], tx_)
    _, ck, cy, cx = s[OL].op.axis
    rc, rr, rs = s[OL].op.reduce_axis
    rco, rci = s[OL].split(rc, cfg["ct"].val)
    if cfg["step"].val == "window":
        s[OL].reorder(rco, rci, rr, rs, ck, cy, cx)
        at = rco
    else:
        s[OL].reorder(rco, rr, rci, rs, ck, cy, cx)
        at = rr
    if cfg["unroll"].val:
        unroll_tile([(s[OL], (ck, cy, cx)), (s[out], (rk_, ry_, rx_))])
    fill_cooperatively(s, shared, s[OL], at,
                       [("threadIdx.z", tk), ("threadIdx.y", ty), ("threadIdx.x", tx)])
    return s, [data, kernel, out]


@template("gpu_conv2d_nchw", reference=conv2d_reference, flop=conv2d_flop,
          targets=("cuda", "opencl"))
def gpu_conv2d_nchw(cfg, N: int, C: int, H: int, W: int, K: int, R: int, S: int,
                    stride: Pair = 1, pad: Pair = 0, dilation: Pair = 1,
                    dtype: str = "float32"):
    """NCHW conv2d (OIHW weights) on a CUDA or OpenCL device, direct.

    Any stride, padding, dilation and kernel size."""
    return gpu_conv2d_nchw_schedule(cfg, N, C, H, W, K, R, S, stride, pad, dilation, dtype)
