"""GEMM ``C[M, N] = A[M, K] @ B[K, N]`` (optionally ``+ bias[N]``, then ReLU): the
compute definition and the CPU template.

The template holds the structure of a hand-written BLAS kernel: B packed into
column panels ``nr`` wide (``nr`` a multiple of the target's vector lanes), an
``mr x nr`` register tile accumulated in a local buffer with the row loop unrolled
and the column loop vectorised, blocks of tiles for cache reuse, and the tiles
spread over the cores. The epilogue runs while the tile is still hot.
"""

from __future__ import annotations

import numpy as np

from .. import te
from ..autotune import template
from ..errors import InvalidConfigError
from ..target import Target
from ..te.tensor import Tensor
from .epilogue import accumulator
from .microkernel import avx512_fp32, gemm_microkernel, stream_tile_intrin


def gemm_compute(
    M: int, N: int, K: int, dtype: str = "float32", nr: int = 16,
    bias: bool = False, relu: bool = False, pack: bool = True, mr: int = 0,
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

    if bias or relu:  # the epilogue reads the (M, N) corner
        C = te.compute(whole_tiles((M, N), tiles), body, name="acc")
    else:
        C = sum_over_whole_tiles((M, N), tiles, body, "C")
    inputs = [A, B]
    out = C
    if bias:
        bvec = te.placeholder((N,), dtype, name="bias")
        inputs.append(bvec)
        prev = out
        out = te.compute((M, N), lambda i, j: prev[i, j] + bvec[j],
                         name="C" if not relu else "biased")
    if relu:
        prev = out
        out = te.compute((M, N), lambda i, j: te.max(prev[i, j], te.const(0.0, dtype)), name="C")
    return inputs, out, Bp, Ap


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


def reduction_of(out: Tensor, *packs: Tensor | None) -> Tensor:
    """The sum behind ``out``: walked back through the epilogue or the copy out of
    whole tiles, past the packed copies ``packs`` of the operands."""
    acc = out
    while not acc.op.reduce_axis:
        acc = next(t for t in acc.op.input_tensors
                   if t.op.input_tensors and all(t is not p for p in packs))
    return acc


def schedule_gemm_cpu(cfg, target: Target, C, Bp, Ap=None):
    """The shared CPU schedule of gemm/dense; ``C`` may carry an epilogue chain; ``Bp``
    is B's packed copy, None where B is read in place; ``Ap`` A's tile-packed copy."""
    s = te.create_schedule(C.op)
    kernel, prefetch = cfg["kernel"].val, 0
    stream, total = cfg["stream_c"].val, reduction_of(C, Bp, Ap)
    if stream and total is not C:
        raise InvalidConfigError("streaming C's tiles needs C to be the sum itself: "
                                 "no epilogue, no tiles past C's edge")
    if stream and kernel != "loops" and not cfg["kc"].val:
        CC = None  # the micro-kernel sums each tile in C and streams it out
    else:
        CC = accumulator(s, C, total)
    i, j = s[C].op.axis
    per_panel = cfg["pack"].val == "panel"
    if cfg["stream_b"].val:
        if (Bp is not None or Ap is not None or kernel != "loops" or cfg["kc"].val
                or stream):
            raise InvalidConfigError("streaming B reads it in place, A too, with the loops "
                                     "kernel and the whole k, and stores C as usual")
        stream_b(s, cfg, C, CC, i, j)
        return s
    if kernel == "ukr+prefetch":
        kernel, prefetch = "ukr", next_panel_offset(cfg["nr"].val, Bp, per_panel)
    register_tile(s, cfg, target, C, CC, i, j, rows_outer=cfg["order"].val == "ij",
                  kernel=kernel, panel_stage=s[Bp] if per_panel else None,
                  panels_per_pack=cfg["pack_panels"].val, prefetch=prefetch,
                  kc=cfg["kc"].val, a_packed=Ap is not None, stream_out=stream)
    schedule_packs(s, Ap, Bp, per_panel)
    return s


def stream_b(s, cfg, C, CC, i, j) -> None:
    """A few rows against a wide B read in place (a GEMV; a batch of one through a
    dense layer): chunks of ``16 * nr`` columns spread over the cores. In each, the rows'
    sums wait in a local buffer (in L1) while B streams past row by row, in runs of the
    whole chunk; ``unroll_k`` rows of B are summed in registers inside the vector loop,
    so the buffer is loaded and stored once per ``unroll_k`` of them. A register tile
    would read B one short panel at a time, a row of B apart, and miss on each."""
    rows, mr = int(i.domain.extent), cfg["mr"].val
    if rows > mr:
        raise InvalidConfigError(f"streaming B is for rows that one row tile holds: "
                                 f"{C.name} has {rows}, mr is {mr}")
    jo, ji = s[C].split(j, 16 * cfg["nr"].val)
    s[C].reorder(jo, i, ji)
    s[C].parallel(jo)
    s[C].vectorize(ji)
    s[CC].compute_at(s[C], jo)
    ci, cj = s[CC].op.axis
    (ck,) = s[CC].op.reduce_axis
    ko, ki = s[CC].split(ck, cfg["unroll_k"].val)
    s[CC].reorder(ko, ci, cj, ki)
    s[CC].unroll(ci)
    s[CC].vectorize(cj)
    s[CC].unroll(ki)


def schedule_packs(s, Ap, Bp, per_panel: bool) -> None:
    """The copies of the gemm schedule, each along its source's rows, after any leading
    (batch) axes. ``Ap`` (..., row tile, k, mr): parallel over the row tiles. ``Bp``
    (..., panel, k, nr), vectorised: row by row of B, the copy reads runs of whole
    panels' width, which the hardware prefetcher follows, where panel by panel it would
    read K short rows far apart; parallel over the rows unless ``per_panel`` (packed
    inside the tiles' parallel loop). Either may be None."""
    if Ap is not None:
        *lead, ao, ak, ai = s[Ap].op.axis
        s[Ap].reorder(*lead, ao, ai, ak)
        s[Ap].parallel(s[Ap].fuse(*lead, ao) if lead else ao)
    if Bp is None:
        return
    *lead, pj, pk, pji = s[Bp].op.axis
    s[Bp].reorder(*lead, pk, pj, pji)
    s[Bp].vectorize(pji)
    if not per_panel:
        s[Bp].parallel(s[Bp].fuse(*lead, pk) if lead else pk)


def next_panel_offset(nr: int, packed, per_panel: bool) -> int:
    """Elements from a tile's B to the next panel's, where the micro-kernel prefetches
    it: the next ``nr`` columns of each row of B read in place (``packed`` None), the
    next (rows, ``nr``) block of a copy ``packed`` whole first. Packed panel by panel,
    no buffer holds the next panel yet."""
    if per_panel:
        raise InvalidConfigError("prefetching the next panel needs the data read in place "
                                 "or packed whole, not packed panel by panel")
    return nr * (int(packed.shape[-2]) if packed is not None else 1)


def register_tile(s, cfg, target: Target, C, CC, i, j, batch=(), rows_outer=True,
                  kernel: str = "loops", panel_stage=None, panels_per_pack: int = 1,
                  prefetch: int = 0, kc: int = 0, a_packed: bool = False,
                  stream_out: bool = False) -> None:
    """The gemm schedule of ``C`` over its rows ``i`` and columns ``j``: ``mr x nr``
    tiles accumulated in ``CC`` (rows unrolled, columns vectorised, k unrolled by
    ``unroll_k``), ``block_m`` row tiles per block, the blocks and column panels
    (after any leading ``batch`` axes) fused into the parallel loop, rows outermost
    or columns. Knobs: mr, nr, block_m, unroll_k. With ``kernel="ukr"`` the tile is the
    hand-written AVX-512 micro-kernel of :mod:`.microkernel` (tensorized; unroll_k is
    then unused) instead of loops for gcc to vectorise.
    ``panel_stage`` (B's packing) is computed inside the parallel loop, one column
    panel just before the tiles that read it; with columns outermost the parallel loop
    is then the panel loop alone, so each panel is packed once, or each group of
    ``panels_per_pack`` panels (longer runs of each row to copy). With ``prefetch``
    (elements from a tile's B to the next panel's) each micro-kernel call fetches the
    next panel of B into L2 as it computes. With ``kc`` (micro-kernel only) the
    reduction is blocked as in GotoBLAS: a whole block of ``block_m`` row tiles is
    accumulated in ``CC`` over ``kc`` values of k at a time, so the ``kc x nr`` slice
    of B that all of them read stays in L1 while they pass it, and the tiles' sums wait
    in ``CC`` (also in L1) between slices. Without ``CC`` (None; the micro-kernel over
    the whole k) it sums each tile of ``C`` in place and streams it out around the
    cache; with ``CC`` and ``stream_out``, each finished tile is copied out of ``CC``
    that way (:func:`.microkernel.stream_tile_intrin`), for a ``C`` that is written
    once and read by nothing here."""
    mr, nr = cfg["mr"].val, cfg["nr"].val
    lanes = target.vector_lanes(np.dtype(str(C.dtype)).itemsize)
    if mr * -(-nr // lanes) > 30:
        # More accumulators than vector registers: it spills, and gcc takes seconds on it.
        raise InvalidConfigError(f"register tile {mr}x{nr} needs more than 30 vector registers")
    grouped = panel_stage is not None and not rows_outer
    if panels_per_pack > 1 and not grouped:
        raise InvalidConfigError("packing several panels at once needs per-panel packing "
                                 "with columns outermost")
    tails = edge_tails(s[C] if CC is None else s[CC], (i, j), (mr, nr),
                       kernel != "loops" and not kc)
    io, ii = s[C].split(i, mr, tail=tails[0])
    jo, ji = s[C].split(j, nr, tail=tails[1])
    s[C].reorder(io, jo, ii, ji)
    ioo, ioi = s[C].split(io, cfg["block_m"].val)
    group, lead = jo, ()
    if panels_per_pack > 1:
        group, jo = s[C].split(jo, panels_per_pack)
        lead = (group,)
    blocks = (ioo, jo) if rows_outer else (jo, ioo)
    s[C].reorder(*batch, *lead, *blocks, ioi, ii, ji, *s[C].op.reduce_axis)
    outer_axes = (*batch, group) if grouped else (*batch, *blocks)
    outer = s[C].fuse(*outer_axes) if len(outer_axes) > 1 else outer_axes[0]
    s[C].parallel(outer)
    if panel_stage is not None:
        panel_stage.compute_at(s[C], outer)
    if stream_out and CC is not None:
        rows, cols = int(i.domain.extent), int(j.domain.extent)
        if cut_tiles((rows, cols), (mr, nr), tails) or not avx512_fp32(target, str(C.dtype)):
            raise InvalidConfigError(
                f"storing tiles around the cache needs whole {mr}x{nr} tiles of fp32 on "
                f"16-lane vectors; {C.name} is {rows}x{cols} {C.dtype}, {lanes} lanes")
        s[C].tensorize(ii, stream_tile_intrin(mr, nr))
    elif CC is not None:
        s[C].vectorize(ji)
    acc = s[C] if CC is None else s[CC]
    *cbatch, ci, cj = acc.op.axis
    (ck,) = acc.op.reduce_axis
    if prefetch and kernel == "loops":
        raise InvalidConfigError("prefetching the next panel is the micro-kernel's")
    if kc and kernel == "loops":
        raise InvalidConfigError("blocking k (kc) is the micro-kernel's")
    if kernel != "loops":
        rows, cols = int(ci.domain.extent), int(cj.domain.extent)
        if int(i.domain.extent) < mr or int(j.domain.extent) < nr:
            raise InvalidConfigError(f"the micro-kernel's {mr}x{nr} tile is larger than "
                                     f"{C.name}'s {i.domain.extent}x{j.domain.extent}")
        if cut_tiles((rows, cols), (mr, nr), tails):
            raise InvalidConfigError(
                f"the micro-kernel needs whole {mr}x{nr} tiles; {C.name} has {rows}x{cols}"
                " (A packed pads the rows to whole tiles, B packed the columns)")
        if (cols // nr) % panels_per_pack:
            raise InvalidConfigError(f"the micro-kernel needs whole groups of "
                                     f"{panels_per_pack} panels; {C.name} has {cols // nr}")
        depth, lead = int(ck.domain.extent), ()
        if kc:
            block = cfg["block_m"].val
            if kc >= depth or depth % kc or (rows // mr) % block:
                raise InvalidConfigError(
                    f"blocking k by {kc} needs whole blocks: k has {depth} values and "
                    f"{C.name} {rows // mr} row tiles, in blocks of {block}")
            # CC holds the whole block; its k slices run outside the block's tiles
            s[CC].compute_at(s[C], blocks[-1] if grouped else outer)
            cio, ci = s[CC].split(ci, mr)
            cko, ck = s[CC].split(ck, kc)
            lead = (cko, cio)
        elif CC is not None:
            s[CC].compute_at(s[C], ioi)
        # Columns padded to whole tiles: the last tile computes only what it needs.
        edge = int(j.domain.extent) if cols != int(j.domain.extent) else 0
        ukr = gemm_microkernel(mr, nr, kc or depth, prefetch, a_packed, edge,
                               stream=CC is None)
        if CC is None:
            s[C].tensorize(ii, ukr)
            return
        s[CC].reorder(*cbatch, *lead, ci, cj, ck)
        s[CC].tensorize(ci, ukr)
        return
    s[CC].compute_at(s[C], ioi)
    unrolled_tile(s, CC, cfg["unroll_k"].val)


def edge_tails(acc, axes, tiles, whole: bool) -> tuple[str, ...]:
    """How each of ``C``'s tile splits ends (:meth:`Stage.split`'s ``tail``): where the
    tile must be ``whole`` (a micro-kernel) and ``acc``, the stage that sums it, is
    not padded to whole tiles along that axis (its operand is read in place, not
    packed), the last tile shifts back inside the edge and recomputes a few rows or
    columns (gemm-512 in 6x64 tiles, the last from row 506: 0.95x PyTorch on one core,
    against 0.89x in the 4x64 tiles that divide it); else bound checks cut it."""
    *_, ci, cj = acc.op.axis
    tails = []
    for axis, own, tile in zip(axes, (ci, cj), tiles, strict=True):
        n = int(axis.domain.extent)
        padded = int(own.domain.extent) != n
        tails.append("shift_inwards" if whole and not padded and n % tile and n > tile
                     else "guard")
    return tuple(tails)


def cut_tiles(extents, tiles, tails) -> bool:
    """Whether bound checks cut a tile: an extent that its tile does not divide, with
    a guarded tail (:func:`edge_tails`)."""
    return any(n % t and tail == "guard" for n, t, tail in zip(extents, tiles, tails,
                                                                strict=True))


def unrolled_tile(s, CC, unroll_k: int) -> None:
    """``CC``'s register tile as loops for gcc: k split by ``unroll_k`` outside the tile,
    the inner k and the rows unrolled, the columns vectorised."""
    *batch, ci, cj = s[CC].op.axis
    (ck,) = s[CC].op.reduce_axis
    ko, ki = s[CC].split(ck, unroll_k)
    s[CC].reorder(*batch, ko, ki, ci, cj)
    s[CC].unroll(ki)
    s[CC].unroll(ci)
    s[CC].vectorize(cj)


def define_gemm_space(cfg, target: Target, dtype: str, M: int, N: int, K: int,
                      epilogue: bool = False) -> None:
    lanes = target.vector_lanes(np.dtype(dtype).itemsize)
    cfg.define_knob("nr", [lanes, 2 * lanes, 3 * lanes, 4 * lanes])
    cfg.define_knob("mr", [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16])
    cfg.define_knob("unroll_k", [1, 2, 4, 8])
    cfg.define_knob("block_m", [1, 2, 4, 8, 16])
    cfg.define_knob("order", ["ij", "ji"])
    fp32_avx512 = avx512_fp32(target, dtype)
    # "ukr+prefetch": the micro-kernel also fetches the next panel of B into L2 as it
    # computes (microkernel.gemm_microkernel). Read in place, B's rows are more streams
    # than the hardware prefetcher follows: gemm-bert-ffn (128x3072x768) on one Zen 4
    # core, 8x48 tile, 100 GFLOP/s against the packed 4x64 fallback's 86.
    cfg.define_knob("kernel", ["loops", "ukr", "ukr+prefetch"] if fp32_avx512 else ["loops"])
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
    blocks = [kc for kc in (128, 256) if kc < K and K % kc == 0] if fp32_avx512 else []
    cfg.define_knob("kc", [0, *blocks])
    cfg.define_knob("pack_a", [False, True])
    cfg.define_knob("stream_b", [False, True])  # see stream_b()
    # C's tiles stored around the cache: summed in place by the micro-kernel over the
    # whole k, else copied out of the local tile with non-temporal stores. Offered
    # where C is the sum itself: no epilogue, columns in whole vectors.
    can_stream = fp32_avx512 and not epilogue and N % lanes == 0
    cfg.define_knob("stream_c", [False, True] if can_stream else [False])
    # Columns outermost ("ji"): a K x nr panel of B stays in L2 while every row tile
    # passes it, so A crosses memory N / nr times; rows outermost moves B M / mr times,
    # nr / mr = 4x the traffic (gemm-1024 on one SPR core: 98 -> 165 GFLOP/s).
    cfg.fallback_with(nr=2 * lanes, mr=8, unroll_k=4, block_m=1, order="ji", kernel="loops",
                      pack="root", pack_panels=1)
    if fp32_avx512 and M >= 6 and N >= 64:
        # The micro-kernel, each 64-wide panel of B packed as its tiles start (4x64
        # tiles, one Zen 5 core: gemm-1024 169 -> 181 GFLOP/s against the loops). 6x64
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
        cfg.fallback_with(nr=64, mr=6, block_m=4, kernel="ukr", pack="panel", pack_a=False,
                          stream_c=N % 64 == 0 and not epilogue)
    if M <= 8:
        # A few rows (a batch of one through a dense layer): B streamed past them in
        # place, not packed for one use. N=4096, K=1024 on one core, beside PyTorch
        # (benchmarks/paired.py, 5 rounds): M=1 0.12 -> 0.94x (PyTorch runs a GEMV
        # there), M=3 0.56 -> 2.4x, M=4 1.02 -> 2.3x, M=8 0.99 -> 1.7x.
        cfg.fallback_with(stream_b=True, mr=M, nr=4 * lanes, unroll_k=4, block_m=1,
                          kernel="loops", pack="none", pack_a=False, kc=0, stream_c=False)


def gemm_reference(M: int, N: int, K: int, dtype: str = "float32"):
    def make(rng: np.random.Generator):
        a = rng.standard_normal((M, K)).astype(dtype)
        b = rng.standard_normal((K, N)).astype(dtype)
        return [a, b, np.zeros((M, N), dtype)], [a @ b]

    return make


@template("gemm", reference=gemm_reference, flop=lambda M, N, K, dtype="float32": 2.0 * M * N * K)
def gemm(cfg, M: int, N: int, K: int, dtype: str = "float32"):
    """``C = A @ B`` with A (M, K), B (K, N), fp32 or fp64."""
    target = cfg.target
    define_gemm_space(cfg, target, dtype, M, N, K)
    inputs, C, Bp, Ap = gemm_compute(M, N, K, dtype, cfg["nr"].val,
                                     pack=cfg["pack"].val != "none",
                                     mr=cfg["mr"].val if cfg["pack_a"].val else 0)
    return schedule_gemm_cpu(cfg, target, C, Bp, Ap), [*inputs, C]
