"""GEMM ``C[M, N] = A[M, K] @ B[K, N]``: the compute definition and the CPU template
(:mod:`.dense` adds the epilogues: bias, ReLU, GELU, a residual).

The template's space holds the structure of a hand-written BLAS kernel (the schedule
itself is :mod:`.gemm_schedule`): B packed into column panels ``nr`` wide (``nr`` a
multiple of the target's vector lanes), an ``mr x nr`` register tile accumulated in
a local buffer with the row loop unrolled and the column loop vectorised, blocks of
tiles for cache reuse, and the tiles spread over the cores. The epilogue runs while
the tile is still hot.
"""

from __future__ import annotations

import numpy as np

from .. import te
from ..autotune import template
from ..ir.dtype import as_dtype
from ..target import Target
from ..te.tensor import Tensor
from .gemm_schedule import (
    STREAM_B_ROWS,
    cut_tiles,
    edge_tail,
    fallback_rows,
    schedule_gemm_cpu,
    tile_fits_registers,
)
from .microkernel import micro_tile_width, simd_fp32


def gemm_compute(
    M: int, N: int, K: int, dtype: str = "float32", nr: int = 16,
    pack: bool = True, mr: int = 0,
) -> tuple[list[Tensor], Tensor, Tensor | None, Tensor | None]:
    """``(inputs, C, Bp, Ap)``: C reads B through a packed copy Bp of nr-wide panels, or
    in place (``Bp`` None) without ``pack``; with ``mr``, A through a tile-packed copy
    Ap (else None), (ceil(M / mr), K, mr), each k's mr values of a row tile side by
    side."""
    A = te.placeholder((M, K), dtype, name="A")
    B = te.placeholder((K, N), dtype, name="B")
    k = te.reduce_axis((0, K), name="k")
    Ap = None
    if mr:
        Ap = te.compute(
            (-(-M // mr), K, mr),
            lambda io, k, ii: te.if_then_else(io * mr + ii < M, A[io * mr + ii, k], 0.0),
            name="Ap")

        def a_at(i, k):
            return Ap[i // mr, k, i % mr]
    else:
        def a_at(i, k):
            return A[i, k]
    Bp = None
    if pack:
        panels = -(-N // nr)
        Bp = packed = te.compute(
            (panels, K, nr),
            lambda jo, k, ji: te.if_then_else(jo * nr + ji < N, B[k, jo * nr + ji], 0.0),
            name="Bp",
        )

        def b_at(k, j):
            return packed[j // nr, k, j % nr]
    else:
        def b_at(k, j):
            return B[k, j]

    # Whole tiles: rows rounded up to mr where A's copy pads them, columns to nr where
    # B's panels do.
    tiles = (mr, nr if pack else 0)

    def body(i, j):
        return te.sum(a_at(i, k) * b_at(k, j), axis=k)

    return [A, B], sum_over_whole_tiles((M, N), tiles, body, "C"), Bp, Ap


def whole_tiles(shape, tiles) -> tuple[int, ...]:
    """``shape`` with each extent rounded up to a whole number of its tile (0: as it is)."""
    return tuple(-(-n // t) * t if t else n for n, t in zip(shape, tiles, strict=True))


def sum_over_whole_tiles(shape, tiles, body, name: str) -> Tensor:
    """The ``shape`` result of the reduction ``body``, computed over ``shape`` rounded
    up to whole ``tiles`` (:func:`whole_tiles`; where the operands' packed copies are
    zero), and copied out of it where that is larger. A tile at the edge is then
    computed whole, in registers or by the micro-kernel, and only its copy to memory
    stops at the edge; bound checks inside it would cut the register tile into loops
    of run-time length (gemm 1000x1000x1000: 12 GFLOP/s on one core)."""
    padded = whole_tiles(shape, tiles)
    if padded == tuple(shape):
        return te.compute(shape, body, name=name)
    acc = te.compute(padded, body, name=f"{name}_acc")
    if len(shape) == 2:
        return te.compute(shape, lambda i, j: acc[i, j], name=name)
    return te.compute(shape, lambda b, i, j: acc[b, i, j], name=name)


def define_gemm_space(cfg, target: Target, dtype: str, M: int, N: int, K: int,
                      epilogue: bool = False) -> None:
    lanes = target.vector_lanes(np.dtype(dtype).itemsize)
    cfg.define_knob("nr", [lanes, 2 * lanes, 3 * lanes, 4 * lanes])
    cfg.define_knob("mr", [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16])
    cfg.define_knob("unroll_k", [1, 2, 4, 8])
    cfg.define_knob("block_m", [1, 2, 4, 8, 16])
    cfg.define_knob("order", ["ij", "ji"])
    fp32_simd = simd_fp32(target, dtype)
    # "ukr+prefetch": the micro-kernel also fetches the next panel of B into L2 as it
    # computes (microkernel.gemm_microkernel). Read in place, B's rows are more streams
    # than the hardware prefetcher follows: gemm-bert-ffn (128x3072x768) on one Zen 4
    # core, 8x48 tile, 100 GFLOP/s against the packed 4x64 fallback's 86.
    cfg.define_knob("kernel", ["loops", "ukr", "ukr+prefetch"] if fp32_simd else ["loops"])
    # "none": the tiles read B in place, rows N apart; "root": packed whole first;
    # "panel": each panel (or pack_panels of them) packed just before its tiles.
    cfg.define_knob("pack", ["root", "panel", "none"])
    cfg.define_knob("pack_panels", [1, 2, 4, 8])
    # k blocked for L1 (0: whole). With 1 MiB of L2 per core (Zen 5) a whole-k panel
    # streams from L2 at full speed and kc costs: 4x64 tiles, gemm-2048 on one core,
    # 226 GFLOP/s whole, 218 at kc=256, 212 at 128, 138 at 64 (C's block reloaded too
    # often). It is for smaller L2s. Defined last, so that the configs of databases
    # written before it keep their indices (kc=0, as then); only where the micro-kernel
    # is offered, and only the sizes that cut k into two or more whole blocks, or most
    # of the space would be refused.
    blocks = [kc for kc in (128, 256) if kc < K and K % kc == 0] if fp32_simd else []
    cfg.define_knob("kc", [0, *blocks])
    cfg.define_knob("pack_a", [False, True])
    cfg.define_knob("stream_b", [False, True])  # see stream_b()
    # C's tiles stored around the cache: summed in place by the micro-kernel over the
    # whole k, else copied out of the local tile with non-temporal stores. Offered
    # where C is the sum itself: no epilogue, columns in whole vectors.
    can_stream = fp32_simd and not epilogue and N % lanes == 0
    cfg.define_knob("stream_c", [False, True] if can_stream else [False])
    # Rows of B that the per-panel copy asks for ahead of reading them (0: none; see
    # gemm_schedule.schedule_packs). One distance: 4, 8 and 16 rows read within 2% of
    # each other, and each value beside 0 halves the share of the space that the
    # template accepts where B is not packed per panel.
    cfg.define_knob("pack_prefetch", [0, 8])
    # Columns outermost ("ji"): a K x nr panel of B stays in L2 while every row tile
    # passes it, so A crosses memory N / nr times; rows outermost moves B M / mr times,
    # nr / mr = 4x the traffic (gemm-1024 on one SPR core: 98 -> 165 GFLOP/s).
    cfg.fallback_with(nr=2 * lanes, mr=fallback_rows(target, 2), unroll_k=4, block_m=1,
                      order="ji", kernel="loops", pack="root", pack_panels=1)
    nr = micro_tile_width(target, lanes)
    if fp32_simd and M >= 6 and N >= nr:
        # The micro-kernel, each panel of B (micro_tile_width: 64 wide on AVX-512, 16
        # on AVX2) packed as its tiles start. AVX2, one Zen 3 core beside PyTorch
        # (benchmarks/paired.py, 5 rounds): gemm-1024 in 6x16 tiles 1.03x, 4x24 1.01x,
        # the loops 0.80x. AVX-512: 4x64 tiles, one Zen 5 core: gemm-1024 169 -> 181
        # GFLOP/s against the loops. 6x64
        # tiles, A read in place, the last row tile shifted back inside C (edge_tails):
        # 24 accumulators instead of 16, so each row of the panel, streamed from L2,
        # feeds 1.5x the FMAs (one row tile against one panel of gemm-512 on one Xeon
        # core: 82% of the FMA peak in 4x64 tiles, 91% in 6x64). 2-core Xeon VM, beside
        # PyTorch (benchmarks/paired.py, 9-11 rounds), 4x64 -> 6x64: one core
        # gemm-512 0.89 -> 0.95x, gemm-1024 0.89 -> 0.96-1.00x, bert-ffn 1.00 ->
        # 1.03x; two cores gemm-512 0.84 -> 0.88x, gemm-1024 0.89 -> 0.92x.
        # stream_c where the columns are whole tiles: C summed in place and streamed
        # out around the cache, so its lines do not evict the A that the next tiles
        # read (gemm-512 in 4x64 tiles: 0.79 -> 0.84x on one core, 0.76 -> 0.80x on two).
        # pack_prefetch: B's rows asked for 8 ahead of the copy of a panel; one Zen 3
        # core, same process, 5-9 alternating rounds: gemm-bert-ffn 1.02-1.06x,
        # gemm-1024 1.03x, gemm-512 1.00x; two cores: gemm-bert-ffn 1.02x. (The 1x1
        # convolution's copy of its data, rows 12 KiB apart too, read 1.00x.)
        cfg.fallback_with(nr=nr, mr=6, block_m=4, kernel="ukr", pack="panel", pack_a=False,
                          stream_c=N % nr == 0 and not epilogue, pack_prefetch=8)
        panels = N // nr
        if N % nr == 0 and panels % 4 == 0 and panels // 4 >= 4 * target.cores:
            # Four panels packed at once (longer runs of each row of B to copy) where
            # that leaves at least four groups per core. 2-core Xeon VM, beside PyTorch
            # (benchmarks/paired.py, 7-9 rounds), one thread / two: gemm-bert-ffn
            # 0.76 -> 0.82x and 0.82 -> 0.86x / 0.91 -> 0.91x, gemm-2048 0.99 -> 1.01x /
            # 0.95 -> 0.95x; the tuner picked it for gemm-bert-ffn in 5 of 6 compare.py rows.
            # Fewer groups cost: gemm-512 on one thread 0.95 -> 0.91x.
            cfg.fallback_with(pack_panels=4)
    # The next group's rows of B fetched into L2 while this group computes (see
    # gemm_schedule.TilePlan.fetch_next).
    cfg.define_knob("fetch_next", [False, True])
    require_gemm_constraints(cfg, target, lanes, M, N)
    declare_gemm_conditions(cfg)
    if M <= 8:
        # A few rows (a batch of one through a dense layer): B streamed past them in
        # place, not packed for one use. N=4096, K=1024 on one core, beside PyTorch
        # (benchmarks/paired.py, 5 rounds): M=1 0.12 -> 0.94x (PyTorch runs a GEMV
        # there), M=3 0.56 -> 2.4x, M=4 1.02 -> 2.3x, M=8 0.99 -> 1.7x.
        cfg.fallback_with(stream_b=True, mr=M, nr=4 * lanes, unroll_k=4, block_m=1,
                          kernel="loops", pack="none", pack_panels=1, pack_a=False, kc=0,
                          stream_c=False, pack_prefetch=0)


def declare_gemm_conditions(cfg) -> None:
    """The knobs of :func:`define_gemm_space` that only some schedules read: streaming
    B makes no register tile, the micro-kernel unrolls k itself, and only B's copy made
    panel by panel, columns outermost, fetches the next group's rows."""
    for knob in ("mr", "block_m", "order", "pack_panels"):
        cfg.conditional(knob, ("stream_b",), lambda sb: not sb)
    cfg.conditional("unroll_k", ("kernel",), lambda kernel: kernel == "loops")
    cfg.conditional("fetch_next", ("stream_b", "pack", "order"),
                    lambda sb, pack, order: not sb and pack == "panel" and order == "ji")


def require_gemm_constraints(cfg, target: Target, lanes: int, M: int, N: int) -> None:
    """What :func:`~.gemm_schedule.schedule_gemm_cpu` builds, declared on the knobs of
    :func:`define_gemm_space` for the operands :func:`gemm_compute` makes of them (B
    packed unless ``pack`` is "none", A in row tiles where ``pack_a``), in the order the
    schedule checks them."""
    shape = f"C is {M}x{N}"

    def summed(mr, nr, pack_a, pack):  # the sum's extents: gemm_compute's padding
        return whole_tiles((M, N), (mr if pack_a else 0, nr if pack != "none" else 0))

    def tiles_whole(kernel, kc, mr, nr, pack_a, pack):
        rows, cols = summed(mr, nr, pack_a, pack)
        whole = kernel != "loops" and not kc
        tails = (edge_tail(M, rows, mr, whole), edge_tail(N, cols, nr, whole))
        return not cut_tiles((rows, cols), (mr, nr), tails)

    cfg.require(("stream_c", "pack_a", "mr", "pack", "nr"),
                lambda sc, pack_a, mr, pack, nr: not sc or summed(mr, nr, pack_a, pack) == (M, N),
                "streaming C's tiles needs C to be the sum itself: no epilogue, no tiles "
                "past C's edge")
    cfg.require(("stream_b", "pack", "pack_a", "kernel", "kc", "stream_c", "pack_prefetch"),
                lambda sb, pack, pack_a, kernel, kc, sc, ahead: not sb or (
                    pack == "none" and not pack_a and kernel == "loops" and not kc
                    and not sc and not ahead),
                "streaming B reads it in place, A too, with the loops kernel and the whole "
                "k, and stores C as usual")
    cfg.require(("stream_b",), lambda sb: not sb or M <= STREAM_B_ROWS,
                f"streaming B is for at most {STREAM_B_ROWS} rows: C has {M}")
    # The rest is the register tile's, which streaming B does not make.
    cfg.require(("stream_b", "kernel", "pack"),
                lambda sb, kernel, pack: sb or kernel != "ukr+prefetch" or pack != "panel",
                "prefetching the next panel needs the data read in place or packed whole, "
                "not packed panel by panel")
    cfg.require(("stream_b", "mr", "nr"),
                lambda sb, mr, nr: sb or tile_fits_registers(mr, -(-nr // lanes), target),
                lambda sb, mr, nr: f"register tile {mr}x{nr} with its operands needs more "
                                   f"than {target.vector_registers} vector registers")
    cfg.require(("stream_b", "pack_panels", "pack", "order"),
                lambda sb, panels, pack, order: sb or panels == 1 or (
                    pack == "panel" and order == "ji"),
                "packing several panels at once needs per-panel packing with columns "
                "outermost")
    cfg.require(("stream_b", "kc", "kernel"),
                lambda sb, kc, kernel: sb or not kc or kernel != "loops",
                "blocking k (kc) is the micro-kernel's")
    cfg.require(("stream_b", "stream_c", "kernel", "kc", "mr", "nr", "pack_a", "pack"),
                lambda sb, sc, kernel, kc, mr, nr, pack_a, pack: sb or not sc
                or (kernel != "loops" and not kc)
                or tiles_whole(kernel, kc, mr, nr, pack_a, pack),
                lambda sb, sc, kernel, kc, mr, nr, pack_a, pack:
                    f"storing tiles around the cache needs whole {mr}x{nr} tiles; {shape}")
    cfg.require(("stream_b", "kernel", "mr", "nr"),
                lambda sb, kernel, mr, nr: sb or kernel == "loops" or (M >= mr and N >= nr),
                lambda sb, kernel, mr, nr: f"the micro-kernel's {mr}x{nr} tile is larger "
                                           f"than C's {M}x{N}")
    cfg.require(("stream_b", "kernel", "kc", "mr", "nr", "pack_a", "pack"),
                lambda sb, kernel, kc, mr, nr, pack_a, pack: sb or kernel == "loops"
                or tiles_whole(kernel, kc, mr, nr, pack_a, pack),
                lambda sb, kernel, kc, mr, nr, pack_a, pack:
                    f"the micro-kernel needs whole {mr}x{nr} tiles; {shape} (A packed pads "
                    f"the rows to whole tiles, B packed the columns)")
    cfg.require(("stream_b", "kernel", "nr", "pack", "pack_panels"),
                lambda sb, kernel, nr, pack, panels: sb or kernel == "loops"
                or (summed(1, nr, False, pack)[1] // nr) % panels == 0,
                lambda sb, kernel, nr, pack, panels:
                    f"the micro-kernel needs whole groups of {panels} panels; C has "
                    f"{summed(1, nr, False, pack)[1] // nr}")
    cfg.require(("stream_b", "kernel", "kc", "mr", "pack_a", "block_m"),
                lambda sb, kernel, kc, mr, pack_a, block: sb or kernel == "loops" or not kc
                or (summed(mr, 1, pack_a, "none")[0] // mr) % block == 0,
                lambda sb, kernel, kc, mr, pack_a, block:
                    f"blocking k by {kc} needs whole blocks: C has "
                    f"{summed(mr, 1, pack_a, 'none')[0] // mr} row tiles, in blocks of {block}")
    cfg.require(("stream_b", "pack_prefetch", "pack"),
                lambda sb, ahead, pack: sb or not ahead or pack == "panel",
                "fetching rows ahead is for the copy of B made panel by panel; a whole copy "
                "reads whole rows, which the hardware prefetcher follows")


def gemm_reference(M: int, N: int, K: int, dtype: str = "float32"):
    def make(rng: np.random.Generator):
        a = rng.standard_normal((M, K)).astype(dtype)
        b = rng.standard_normal((K, N)).astype(dtype)
        return [a, b, np.zeros((M, N), dtype)], [a @ b]

    return make


@template("gemm", reference=gemm_reference, flop=lambda M, N, K, dtype="float32": 2.0 * M * N * K)
def gemm(cfg, M: int, N: int, K: int, dtype: str = "float32"):
    """``C = A @ B`` with A (M, K), B (K, N), fp32 or fp64."""
    as_dtype(dtype)  # an unknown dtype is named in one line, not NumPy's TypeError
    target = cfg.target
    define_gemm_space(cfg, target, dtype, M, N, K)
    inputs, C, Bp, Ap = gemm_compute(M, N, K, dtype, cfg["nr"].val,
                                     pack=cfg["pack"].val != "none",
                                     mr=cfg["mr"].val if cfg["pack_a"].val else 0)
    return schedule_gemm_cpu(cfg, target, C, Bp, Ap), [*inputs, C]
