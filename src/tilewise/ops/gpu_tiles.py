"""What the GPU templates share: the device limits a target describes and what a
config needs of them, the ``[-1, threads, registers]`` splits of an output axis and
their binding to block and thread indices, the copy of a shared tile spread over a
block's threads, the grid sizes CUDA allows, and how a fallback is ranked.

An output axis is cut three ways: blocks of ``threads * regs`` elements, each thread of
a block ``regs`` consecutive elements held in registers. Where the block tile does not
divide the axis, the last block's elements past the edge are skipped element by element
in the register tile's loops (the split's guards), never around a thread's whole
share: every thread of a block still helps fill the shared tiles and waits at their
barriers. (Shifting the last block back inside the axis instead would have two blocks
store the same elements, a race however equal the values.)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .. import te
from ..errors import TensorError, TuningError
from ..runtime.device import DeviceLimits
from ..target import Target, TargetKind

THREADS = (1, 2, 4, 8, 16, 32)
REGS = (1, 2, 4, 8)
# A register tile of more accumulators than this spills on every GPU we target.
MAX_REG_TILE = 64
# The fallbacks aim at a block of this many threads (8 warps: the classic hand-written
# kernels' block) and a register tile of this many accumulators.
BLOCK_THREADS = 256
TILE_ACCUMULATORS = 16
# ... and a grid of at least this many blocks, about one per SM of a large GPU (an
# H100 has 132), where the workload has that many tiles.
GRID_BLOCKS = 128
# CUDA's grid has at most this many blocks along y and z (x: 2**31 - 1).
_CUDA_GRID_YZ = 65535


def limits_of(target: Target) -> DeviceLimits:
    """The device limits a target describes (an OpenCL device's own; a CUDA target's
    what an sm_xx GPU allows without opting in)."""
    return DeviceLimits(str(target), target.local_mem_bytes, target.max_threads)


def limits_refusal(threads: Sequence[int], regs: Sequence[int], shared: int,
                   limits: DeviceLimits) -> str:
    """Why a block of ``threads`` (per axis), each holding a register tile of ``regs``
    (per axis), with ``shared`` bytes of shared tiles, cannot run on a device with
    ``limits``; "" where it can."""
    if math.prod(threads) > limits.max_threads:
        return (f"{' x '.join(map(str, threads))} threads, the device allows "
                f"{limits.max_threads} a block")
    if shared > limits.local_mem_bytes:
        return f"{shared} bytes of shared tiles, the device has {limits.local_mem_bytes}"
    if math.prod(regs) > MAX_REG_TILE:
        return (f"a {' x '.join(map(str, regs))} register tile (at most {MAX_REG_TILE} "
                "accumulators)")
    return ""


def best_runnable(name: str, configs: Iterable, why: Callable[[Any], str],
                  score: Callable[[Any], Any], limits: DeviceLimits):
    """Of ``configs`` (the smallest first), the best by ``score`` that the device
    runs (``why(config)``: its refusal, "" where none). Raises TuningError where it
    runs none: the workload needs more of the device than its smallest tile."""
    configs = list(configs)
    runnable = [c for c in configs if not why(c)]
    if not runnable:
        raise TuningError(f"{name}: {limits.name} runs no config of this workload; the "
                          f"smallest needs {why(configs[0])}")
    return max(runnable, key=score)


def tile_candidates(extent: int, whole: bool = True) -> list[list[int]]:
    """``[-1, threads, regs]`` splits of ``extent``: block tiles that divide it, or
    (``whole=False``) any no larger than it; those may also be one block of as many
    threads as an extent of up to 32 (a 7 x 7 plane in one block, no thread idle)."""
    if whole:
        return [[-1, t, r] for t, r in itertools.product(THREADS, REGS)
                if extent % (t * r) == 0]
    threads = THREADS if extent > THREADS[-1] or extent in THREADS else (*THREADS, extent)
    return [[-1, t, r] for t, r in itertools.product(threads, REGS) if t * r <= extent]


def tile_waste(extent: int, tile: int) -> float:
    """Elements the blocks of ``tile`` span per element of ``extent`` (those past the
    edge leave their threads idle)."""
    return -(-extent // tile) * tile / extent


def define_tiles(cfg, extents: dict[str, int], whole: bool = True) -> None:
    """A ``[-1, threads, regs]`` split knob per output axis (name: extent), of
    :func:`tile_candidates`."""
    for name, extent in extents.items():
        cfg.define_split(name, extent, num_outputs=3, policy="candidate",
                         candidate=tile_candidates(extent, whole))


def split_axis(stage, axis, threads: int, regs: int):
    """``axis`` of ``stage`` as (block, thread, register) loops: ``threads * regs``
    elements a block, ``regs`` consecutive ones a thread."""
    block, rest = stage.split(axis, threads * regs)
    thread, reg = stage.split(rest, regs)
    return block, thread, reg


def bind_threads(stage, loops: Sequence, tags: Sequence[str]) -> None:
    """Bind each loop to its index (``"blockIdx.x"``, ``"threadIdx.y"``...)."""
    for loop, tag in zip(loops, tags, strict=True):
        stage.bind(loop, te.thread_axis(tag))


def unroll_tile(loops: Sequence[tuple[Any, Sequence]]) -> None:
    """Unroll the register tile's loops: ``(stage, axes)`` pairs, the sum's and the
    copy out's."""
    for stage, axes in loops:
        for ax in axes:
            stage.unroll(ax)


def fill_cooperatively(s, tiles: Sequence, stage, at, threads: Sequence[tuple[str, int]]
                       ) -> None:
    """Compute the shared ``tiles`` at ``stage``'s loop ``at`` (they then hold what
    all the block's threads read there: bound inference relaxes threadIdx for shared
    buffers), each copy spread over the block's threads, given outermost first as
    ``(tag, count)``: the tile's axes fused, the innermost thread index the fastest,
    so neighbouring threads copy neighbouring elements."""
    for tile in tiles:
        s[tile].compute_at(stage, at)
        axes = s[tile].op.axis
        rest = s[tile].fuse(*axes) if len(axes) > 1 else axes[0]
        for tag, count in reversed(threads):
            rest, inner = s[tile].split(rest, count)
            s[tile].bind(inner, te.thread_axis(tag))


def window_stages(out, padded, kernel):
    """The schedule of a convolution ``out`` with a register tile (``cache_write``)
    that reads the zero-``padded`` input and the ``kernel`` through shared tiles:
    ``(schedule, tile, (input tile, weight tile))``. The input tile's copy writes the
    padding's zeros itself (``padded`` is inlined)."""
    s = te.create_schedule(out.op)
    s[padded].compute_inline()
    local = s.cache_write(out, "local")
    return s, local, (s.cache_read(padded, "shared", [local]),
                      s.cache_read(kernel, "shared", [local]))


def check_grid(name: str, target: Target, blocks: dict[str, int]) -> None:
    """Raise TensorError where a CUDA grid would need more blocks along y or z than
    CUDA allows (``blocks``: e.g. ``{"z": batches}``)."""
    if target.kind is not TargetKind.CUDA:
        return
    for axis, count in blocks.items():
        if axis in "yz" and count > _CUDA_GRID_YZ:
            raise TensorError(f"{name}: {count} blocks along {axis}, CUDA's grid allows "
                              f"{_CUDA_GRID_YZ}")


def grid_wanted(outputs: int) -> int:
    """The blocks a fallback's grid should have for ``outputs`` elements: one per SM
    of a large GPU, fewer where that would leave a block under 128 outputs."""
    return max(1, min(GRID_BLOCKS, outputs // (BLOCK_THREADS // 2)))


def balance(a: int, b: int) -> float:
    """How far apart two sizes are, by ratio (0 when equal)."""
    return abs(math.log2(a) - math.log2(b))


def fallback_tiles(name: str, extents: Sequence[int], blocks_around: int,
                   why: Callable[[Any], str], accumulators: int, limits: DeviceLimits):
    """A convolution's fallback tiles: a ``[-1, threads, regs]`` split of each output
    axis of ``extents`` (x last; tiles need not divide them), the grid ``blocks_around``
    times their blocks, of those the device runs (``why``: a config's refusal). Ranked
    by fewest threads idle past the edges (:func:`tile_waste`), then blocks up to
    :func:`grid_wanted`, then at least 128 threads, then a register tile nearest
    ``accumulators``, then nearest 256 threads; then register tiles as square as they
    come (each loaded value reused most), the most threads along x (neighbouring
    threads, neighbouring columns) and blocks as square as they come."""
    enough = grid_wanted(blocks_around * math.prod(extents))

    def score(tiles) -> tuple:
        threads = [t for _, t, _ in tiles]
        regs = [r for _, _, r in tiles]
        sizes = [t * r for _, t, r in tiles]
        waste = math.prod(tile_waste(e, s) for e, s in zip(extents, sizes, strict=True))
        blocks = blocks_around * math.prod(-(-e // s) for e, s in zip(extents, sizes,
                                                                     strict=True))
        count = math.prod(threads)
        squares = [-balance(r, math.prod(regs[i + 1:])) for i, r in enumerate(regs[:-1])]
        return (-round(waste, 2), min(blocks, enough), min(count, BLOCK_THREADS // 2),
                -balance(math.prod(regs), accumulators), -balance(count, BLOCK_THREADS),
                *squares, threads[-1], -balance(threads[-2], threads[-1]))

    candidates = itertools.product(*(tile_candidates(e, whole=False) for e in extents))
    return best_runnable(name, candidates, why, score, limits)
