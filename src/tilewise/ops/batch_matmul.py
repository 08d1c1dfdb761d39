"""Batched matrix multiply ``C[b] = A[b] @ B[b]`` (A (B, M, K), B (B, K, N)), as in
attention's Q @ K^T.

The gemm schedule per batch (:func:`.gemm_schedule.register_tile`, the batch axis
leading the fused parallel loop): B packed into ``nr``-wide panels, an ``mr x nr``
register tile in a local buffer, blocks of row tiles, rows or columns outermost, A
optionally copied row tile by row tile, and the tile optionally the hand-written
micro-kernel. One more
schedule predates it and stays a choice: the batches spread over the cores, each
packing its own panels just before its tiles.
"""

from __future__ import annotations

import numpy as np

from .. import te
from ..autotune import template
from ..ir.dtype import as_dtype
from ..target import Target
from .epilogue import accumulator
from .gemm import sum_over_whole_tiles
from .gemm_schedule import (
    TilePlan,
    fallback_rows,
    reduction_of,
    register_tile,
    schedule_packs,
    tile_fits_registers,
    unrolled_tile,
)
from .microkernel import micro_tile_width, simd_fp32


def batch_matmul_compute(Bt: int, M: int, N: int, K: int, dtype: str = "float32",
                         nr: int = 16, mr: int = 0):
    """``(A, B, C, Bp, Ap)``: C reads B through Bp, its (Bt, ceil(N / nr), K, nr)
    panels; with ``mr``, A through Ap, (Bt, ceil(M / mr), K, mr), each k's mr values of
    a row tile side by side (else Ap is None). The sums run over whole tiles
    (:func:`.gemm.sum_over_whole_tiles`)."""
    A = te.placeholder((Bt, M, K), dtype, name="A")
    B = te.placeholder((Bt, K, N), dtype, name="B")
    zero = te.const(0.0, dtype)
    Ap = None
    if mr:
        Ap = te.compute(
            (Bt, -(-M // mr), K, mr),
            lambda b, io, k, ii: te.if_then_else(io * mr + ii < M, A[b, io * mr + ii, k], zero),
            name="Ap")

        def a_at(b, i, k):
            return Ap[b, i // mr, k, i % mr]
    else:
        def a_at(b, i, k):
            return A[b, i, k]
    Bp = te.compute(
        (Bt, -(-N // nr), K, nr),
        lambda b, jo, k, ji: te.if_then_else(jo * nr + ji < N, B[b, k, jo * nr + ji], zero),
        name="Bp")
    k = te.reduce_axis((0, K), name="k")

    def body(b, i, j):
        return te.sum(a_at(b, i, k) * Bp[b, j // nr, k, j % nr], axis=k)

    C = sum_over_whole_tiles((Bt, M, N), (0, mr, nr), body, "C")
    return A, B, C, Bp, Ap


def batch_matmul_reference(Bt: int, M: int, N: int, K: int, dtype: str = "float32"):
    def make(rng: np.random.Generator):
        a = rng.standard_normal((Bt, M, K)).astype(dtype)
        b = rng.standard_normal((Bt, K, N)).astype(dtype)
        return [a, b, np.zeros((Bt, M, N), dtype)], [(a.astype(np.float64) @ b).astype(dtype)]

    return make


def define_batch_matmul_space(cfg, target: Target, dtype: str, M: int, N: int, K: int) -> None:
    lanes = target.vector_lanes(np.dtype(dtype).itemsize)
    cfg.define_knob("nr", [lanes, 2 * lanes, 4 * lanes])
    cfg.define_knob("mr", [1, 2, 4, 6, 8, 12])
    cfg.define_knob("unroll_k", [1, 2, 4, 8])
    # "root": all of B packed first; "at_batch": packed inside the parallel loop as it
    # is needed, a batch at a time over batches spread across the cores (loops), or a
    # panel at a time just before its tiles (the micro-kernel).
    cfg.define_knob("pack", ["at_batch", "root"])
    # Defined after those, so that databases written before them keep their indices
    # (their first choices are what the template did then).
    fp32_simd = simd_fp32(target, dtype)
    cfg.define_knob("kernel", ["loops", "ukr"] if fp32_simd else ["loops"])
    cfg.define_knob("block_m", [1, 2, 4, 8])
    cfg.define_knob("order", ["ij", "ji"])
    cfg.define_knob("pack_a", [False, True])
    blocks = [kc for kc in (128, 256) if kc < K and K % kc == 0] if fp32_simd else []
    cfg.define_knob("kc", [0, *blocks])
    # The micro-kernel sums each tile in C itself, with ordinary stores, instead of in
    # a local tile that is then copied to C: over attention's 64 values of k the copy
    # is a fair share of a tile's work. Where C is the sum itself (its columns whole
    # tiles); defined last, so that databases written before it keep their indices.
    can_direct = fp32_simd and N % lanes == 0
    cfg.define_knob("direct_c", [False, True] if can_direct else [False])
    # Each batch packs its own panels just before its tiles: 12 x 77x64x77 on one core,
    # 0.70 -> 0.84x PyTorch against B packed whole first (benchmarks/paired.py, 9 rounds).
    rows = fallback_rows(target, 2 if N >= 2 * lanes else 1)
    cfg.fallback_with(nr=2 * lanes if N >= 2 * lanes else lanes, mr=rows if M >= rows else 1,
                      unroll_k=4, pack="at_batch")
    wide = micro_tile_width(target, lanes)
    if fp32_simd and M >= 4 and N >= wide:
        # gemm's micro-kernel, each panel packed just before its tiles, the last
        # padded to a whole tile; A read in place. 4x64 tiles where they divide the
        # rows: bert-attn-qk (12 x 128x128x64) on the 2-core Xeon VM, 9 rounds beside
        # PyTorch (benchmarks/paired.py): 0.76 -> 0.82-0.90x on one thread; 11 rounds
        # on two: 0.75 -> 0.89x (6x64 there: 0.86x). Elsewhere 6x64, the last row tile
        # of each batch shifted back inside (gemm_schedule.edge_tails), against the per-batch
        # loops or 4x64 over a padded copy of A, 9 rounds, one thread / two:
        # 16 x 197x197x64 0.93 -> 1.02x / 0.91 -> 1.03x, 12 x 77x77x64 0.67 -> 0.75x /
        # 0.67 -> 0.80x, 12 x 77x64x77 0.83 -> 0.88x / 0.79 -> 0.85x, 16 x 197x64x197
        # 0.87 -> 0.84x / 0.87 -> 0.88x.
        mr = 4 if M % 4 == 0 or M < 6 else 6
        cfg.fallback_with(nr=wide, mr=mr, kernel="ukr", pack="at_batch", order="ji",
                          block_m=2 if mr == 4 else 1, pack_a=False)
        if N % wide == 0:
            # Summed in C (direct_c), beside PyTorch on the 2-core Xeon VM
            # (benchmarks/paired.py, 11 rounds): bert-attn-qk 0.93 -> 0.96x on one
            # thread, 0.93 -> 0.95x on two; a scratch harness, 11-15 rounds: 0.94 ->
            # 0.98x / 1.01 -> 1.05x, and 12 x 77x64x77 0.90 -> 0.91x on one thread.
            cfg.fallback_with(direct_c=True)
    require_batch_matmul_constraints(cfg, target, lanes, M, N)
    cfg.conditional("unroll_k", ("kernel",), lambda kernel: kernel == "loops")


def require_batch_matmul_constraints(cfg, target: Target, lanes: int, M: int, N: int) -> None:
    """What :func:`batch_matmul` builds, declared on the knobs of
    :func:`define_batch_matmul_space` (B always in panels of ``nr``, padded to whole
    panels; A in row tiles where ``pack_a``)."""
    def rows(mr, pack_a):  # the sum's rows
        return -(-M // mr) * mr if pack_a else M

    def per_batch(kernel, pack):
        return kernel == "loops" and pack == "at_batch"

    cfg.require(("direct_c", "kernel", "kc", "mr", "nr", "pack_a"),
                lambda direct, kernel, kc, mr, nr, pack_a: not direct or (
                    kernel == "ukr" and not kc and rows(mr, pack_a) == M and N % nr == 0),
                "summing each tile in C itself is for the micro-kernel over the whole k, "
                "where C is the sum (columns in whole tiles)")
    cfg.require(("kernel", "pack", "pack_a", "block_m", "order"),
                lambda kernel, pack, pack_a, block, order: not per_batch(kernel, pack) or (
                    not pack_a and block == 1 and order == "ij"),
                "packing B a batch at a time is a schedule of its own: no pack_a, block_m "
                "or columns-outermost order")
    cfg.require(("kernel", "kc"), lambda kernel, kc: kernel != "loops" or not kc,
                "blocking k (kc) is the micro-kernel's")
    cfg.require(("kernel", "pack", "mr", "nr"),
                lambda kernel, pack, mr, nr: per_batch(kernel, pack)
                or tile_fits_registers(mr, -(-nr // lanes), target),
                lambda kernel, pack, mr, nr: f"register tile {mr}x{nr} with its operands needs "
                                             f"more than {target.vector_registers} vector "
                                             "registers")
    cfg.require(("kernel", "mr", "nr"),
                lambda kernel, mr, nr: kernel != "ukr" or (M >= mr and N >= nr),
                lambda kernel, mr, nr: f"the micro-kernel's {mr}x{nr} tile is larger than "
                                       f"C's {M}x{N}")
    cfg.require(("kernel", "kc", "mr", "pack_a"),
                lambda kernel, kc, mr, pack_a: kernel != "ukr" or not kc
                or rows(mr, pack_a) % mr == 0,
                lambda kernel, kc, mr, pack_a: f"the micro-kernel needs whole {mr}-row tiles "
                                               f"where k is blocked; C has {M} rows")
    cfg.require(("kernel", "kc", "mr", "pack_a", "block_m"),
                lambda kernel, kc, mr, pack_a, block: kernel != "ukr" or not kc
                or (rows(mr, pack_a) // mr) % block == 0,
                lambda kernel, kc, mr, pack_a, block:
                    f"blocking k by {kc} needs whole blocks: C has {rows(mr, pack_a) // mr} "
                    f"row tiles, in blocks of {block}")


@template("batch_matmul", reference=batch_matmul_reference,
          flop=lambda Bt, M, N, K, dtype="float32": 2.0 * Bt * M * N * K)
def batch_matmul(cfg, Bt: int, M: int, N: int, K: int, dtype: str = "float32"):
    """``C[b] = A[b] @ B[b]`` for each of ``Bt`` batches."""
    as_dtype(dtype)  # an unknown dtype is named in one line, not NumPy's TypeError
    target = cfg.target
    define_batch_matmul_space(cfg, target, dtype, M, N, K)
    mr, nr, kernel = cfg["mr"].val, cfg["nr"].val, cfg["kernel"].val
    per_batch = kernel == "loops" and cfg["pack"].val == "at_batch"
    A, B, C, Bp, Ap = batch_matmul_compute(Bt, M, N, K, dtype, nr,
                                           mr=mr if cfg["pack_a"].val else 0)
    total = reduction_of(C)
    if per_batch:
        return _schedule_per_batch(cfg, C, Bp, Ap), [A, B, C]
    s = te.create_schedule(C.op)
    CC = None if cfg["direct_c"].val else accumulator(s, C, total)
    b, i, j = s[C].op.axis
    per_panel = cfg["pack"].val == "at_batch"
    register_tile(s, cfg, target, C, CC, i, j, TilePlan(
        batch=(b,), rows_outer=cfg["order"].val == "ij", micro_kernel=kernel == "ukr",
        panel_stage=s[Bp] if per_panel else None, kc=cfg["kc"].val, a_packed=Ap is not None))
    schedule_packs(s, Ap, Bp, per_panel)
    return s, [A, B, C]


def _schedule_per_batch(cfg, C, Bp, Ap):
    """Batches across the cores, each packing its panels first, then ``mr x nr`` tiles
    (rows outermost) accumulated in registers, k unrolled by ``unroll_k``."""
    s = te.create_schedule(C.op)
    CC = accumulator(s, C, reduction_of(C))
    b, i, j = s[C].op.axis
    io, ii = s[C].split(i, cfg["mr"].val)
    jo, ji = s[C].split(j, cfg["nr"].val)
    s[C].reorder(b, io, jo, ii, ji)
    s[C].vectorize(ji)
    s[C].parallel(b)
    s[CC].compute_at(s[C], jo)
    s[Bp].compute_at(s[C], b)
    s[Bp].vectorize(s[Bp].op.axis[3])
    unrolled_tile(s, CC, cfg["unroll_k"].val)
    return s
