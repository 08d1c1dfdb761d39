"""Channel blocks at a kernel's edge: the NCHW[x]c layout (``NCHW16c``: (N, C/16, H, W,
16), channel ``c`` at block ``c // 16``, lane ``c % 16``) in which a convolution may read
its input and write its output, so that a network keeps activations packed from one
convolution to the next instead of transforming them around each.

A template's ``in_block`` and ``out_block`` arguments name the layout of its data and of
its output (and residual): 0 for plain NCHW, else the block. The graph's layout planning
(:mod:`tilewise.graph.layouts`) picks them.
"""

from __future__ import annotations

import numpy as np

from ..errors import TensorError


def layout_name(block: int) -> str:
    """``NCHW`` or ``NCHW{block}c``."""
    return f"NCHW{block}c" if block else "NCHW"


def check_blocks(what: str, channels: dict[str, int], blocks: dict[str, int]) -> None:
    """One line naming a block that does not divide its channels (or is negative)."""
    for side, block in blocks.items():
        if block < 0 or (block and channels[side] % block):
            raise TensorError(f"{what}: {side}_block {block} must be 0 (NCHW) or divide the "
                              f"{channels[side]} channels")


def blocked_shape(shape: tuple[int, ...], block: int) -> tuple[int, ...]:
    """The NCHW ``shape`` in ``layout_name(block)``."""
    if not block:
        return tuple(shape)
    N, C, H, W = shape
    return (N, C // block, H, W, block)


def to_blocks(a: np.ndarray, block: int) -> np.ndarray:
    """An NCHW array in NCHW[block]c (itself where ``block`` is 0)."""
    if not block:
        return a
    N, C, H, W = a.shape
    return np.ascontiguousarray(a.reshape(N, C // block, block, H, W).transpose(0, 1, 3, 4, 2))
