"""The CPU schedule of a sum of products over two matrices: packed panels of B, an
``mr x nr`` register tile (gcc's loops or the hand-written micro-kernel), blocks of
tiles for the caches, the tiles spread over the cores. The gemm, dense and
batch_matmul templates and the 1x1 convolution schedule their sums with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import te
from ..errors import InvalidConfigError
from ..schedule import Tail
from ..target import Target
from ..te.tensor import Tensor
from .epilogue import accumulator
from .microkernel import gemm_microkernel, simd_fp32, stream_tile_intrin

#: The most rows streaming B takes (as many as gemm's largest row tile): it unrolls
#: them inside its vector loop, as a row tile's are.
STREAM_B_ROWS = 16


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
                or stream or cfg["pack_prefetch"].val):
            raise InvalidConfigError("streaming B reads it in place, A too, with the loops "
                                     "kernel and the whole k, and stores C as usual")
        stream_b(s, cfg, C, CC, i, j)
        return s
    if kernel == "ukr+prefetch":
        kernel, prefetch = "ukr", next_panel_offset(cfg["nr"].val, Bp, per_panel)
    rows_outer = cfg["order"].val == "ij"
    # Only where B's copy is made a group of panels at a time, columns outermost.
    fetch = per_panel and not rows_outer and cfg["fetch_next"].val
    register_tile(s, cfg, target, C, CC, i, j, TilePlan(
        rows_outer=rows_outer, micro_kernel=kernel == "ukr",
        panel_stage=s[Bp] if per_panel else None, panels_per_pack=cfg["pack_panels"].val,
        prefetch=prefetch, kc=cfg["kc"].val, a_packed=Ap is not None, stream_out=stream,
        fetch_next=bool(fetch)))
    schedule_packs(s, Ap, Bp, per_panel, cfg["pack_prefetch"].val)
    return s


def stream_b(s, cfg, C, CC, i, j) -> None:
    """A few rows against a wide B read in place (a GEMV; a batch of one through a
    dense layer): chunks of ``16 * nr`` columns spread over the cores. In each, the rows'
    sums wait in a local buffer (in L1) while B streams past row by row, in runs of the
    whole chunk; ``unroll_k`` rows of B are summed in registers inside the vector loop,
    so the buffer is loaded and stored once per ``unroll_k`` of them. A register tile
    would read B one short panel at a time, a row of B apart, and miss on each."""
    rows = int(i.domain.extent)
    if rows > STREAM_B_ROWS:
        raise InvalidConfigError(f"streaming B is for at most {STREAM_B_ROWS} rows: "
                                 f"{C.name} has {rows}")
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


def schedule_packs(s, Ap, Bp, per_panel: bool, ahead: int = 0) -> None:
    """The copies of the gemm schedule, each along its source's rows, after any leading
    (batch) axes. ``Ap`` (..., row tile, k, mr): parallel over the row tiles. ``Bp``
    (..., panel, k, nr), vectorised: row by row of B, the copy reads runs of whole
    panels' width, which the hardware prefetcher follows, where panel by panel it would
    read K short rows far apart; parallel over the rows unless ``per_panel`` (packed
    inside the tiles' parallel loop). Either may be None. Packed per panel, each row's
    run is its own page where B's rows are 4 KiB or more apart, and the hardware does
    not look ahead across pages: ``ahead`` rows on (0: none), the copy asks for the
    row it will read (:meth:`~tilewise.schedule.Stage.prefetch`)."""
    if ahead and not (per_panel and Bp is not None):
        raise InvalidConfigError("fetching rows ahead is for the copy of B made panel by "
                                 "panel; a whole copy reads whole rows, which the "
                                 "hardware prefetcher follows")
    if Ap is not None:
        *lead, ao, ak, ai = s[Ap].op.axis
        s[Ap].reorder(*lead, ao, ai, ak)
        s[Ap].parallel(s[Ap].fuse(*lead, ao) if lead else ao)
    if Bp is None:
        return
    *lead, pj, pk, pji = s[Bp].op.axis
    s[Bp].reorder(*lead, pk, pj, pji)
    s[Bp].vectorize(pji)
    if ahead:
        (source,) = s[Bp].op.input_tensors
        s[Bp].prefetch(source, pk, ahead)
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


@dataclass(frozen=True)
class TilePlan:
    """How :func:`register_tile` lays out a sum's tiles, beyond the config's ``mr``,
    ``nr``, ``block_m`` and ``unroll_k``.

    - ``batch``: leading axes of ``C``, fused into the parallel loop ahead of the
      blocks.
    - ``rows_outer``: blocks of row tiles outermost, else column panels.
    - ``micro_kernel``: the tile is the hand-written micro-kernel of
      :mod:`.microkernel` (tensorized; ``unroll_k`` is then unused), else loops for
      gcc to vectorise.
    - ``panel_stage``: B's packing, computed inside the parallel loop, one column panel
      just before the tiles that read it (None: packed elsewhere, or read in place).
      With columns outermost the parallel loop is then the panel loop alone, so each
      panel is packed once, or each group of ``panels_per_pack`` panels (longer runs
      of each row to copy).
    - ``prefetch``: elements from a tile's B to the next panel's; each micro-kernel
      call fetches the next panel into L2 as it computes (0: none).
    - ``kc``: the reduction blocked as in GotoBLAS (micro-kernel only; 0: whole). A
      block of ``block_m`` row tiles is accumulated in ``CC`` over ``kc`` values of k
      at a time, so the ``kc x nr`` slice of B that all of them read stays in L1 while
      they pass it, and the tiles' sums wait in ``CC`` (also in L1) between slices.
    - ``a_packed``: A is read from its row-tile copy (the micro-kernel's A strides).
    - ``stream_out``: each finished tile is copied out of ``CC`` around the cache
      (:func:`.microkernel.stream_tile_intrin`), for a ``C`` that is written once and
      read by nothing here.
    - ``batch_inside``: the batch axes inside the panel loop, which is the parallel
      loop alone (columns outermost, a ``panel_stage``): the panel stage is computed
      once per panel for every batch, where it computes a panel of each batch at once.
    - ``fetch_next``: the rows of the tensor the ``panel_stage`` copies (B) that the
      next group of panels will copy are fetched into L2 while this group's tiles
      compute, a share before each row block's tiles (:meth:`Stage.prefetch`, spread).
      Copied alone, a group's rows come from L3 or memory while nothing computes:
      gemm-bert-ffn (128x3072x768, 4x48 tiles, four panels a group) on one Zen 4 core
      read 101-104 GFLOP/s as generated and 115-116 with the copy taken out (a wrong
      result, the bound); the next group's rows fetched during this one's tiles
      105-106 (hand-edited C, 7 rounds); as the knob, beside PyTorch (paired.py, 7
      rounds) 107.4 -> 108.3, the fallback 102.0 -> 104.1, and no change on gemm-512,
      -1024 and -2048, whose copies are a smaller share.
    - ``store_runs``: the tile's rows stored in runs of this many columns, each run
      one vector loop (0: the whole ``nr``). For a ``C`` whose columns lie in blocks
      of that many (NCHW[x]c output channels): a row of a tile wider than a block
      lands in several blocks, each run contiguous in its own.
    """

    batch: tuple = ()
    rows_outer: bool = True
    micro_kernel: bool = False
    panel_stage: Any = None
    panels_per_pack: int = 1
    prefetch: int = 0
    kc: int = 0
    a_packed: bool = False
    stream_out: bool = False
    batch_inside: bool = False
    fetch_next: bool = False
    store_runs: int = 0


def register_tile(s, cfg, target: Target, C, CC, i, j, plan: TilePlan = TilePlan()) -> None:
    """The gemm schedule of ``C`` over its rows ``i`` and columns ``j``: ``mr x nr``
    tiles accumulated in ``CC`` (rows unrolled, columns vectorised, k unrolled by
    ``unroll_k``), ``block_m`` row tiles per block, the blocks and column panels
    (after ``plan.batch``) fused into the parallel loop, as :class:`TilePlan` says.
    Without ``CC`` (None; the micro-kernel over the whole k) the micro-kernel sums
    each tile of ``C`` in place and streams it out around the cache."""
    mr, nr = cfg["mr"].val, cfg["nr"].val
    ukr, kc = plan.micro_kernel, plan.kc
    lanes = target.vector_lanes(np.dtype(str(C.dtype)).itemsize)
    vectors = -(-nr // lanes)
    if not tile_fits_registers(mr, vectors, target):
        # It spills, and gcc takes seconds on it. One spilled vector costs half the
        # speed: gemm-1024 on one Zen 3 core, micro-kernel, 3x32 (17 vectors) 41
        # GFLOP/s against 86 in 6x16 (15).
        raise InvalidConfigError(
            f"register tile {mr}x{nr} with its operands ({mr} x {vectors} "
            f"accumulators, a row of B, a broadcast of A) needs more than "
            f"{target.vector_registers} vector registers")
    grouped = plan.panel_stage is not None and not plan.rows_outer
    if plan.panels_per_pack > 1 and not grouped:
        raise InvalidConfigError("packing several panels at once needs per-panel packing "
                                 "with columns outermost")
    if plan.prefetch and not ukr:
        raise InvalidConfigError("prefetching the next panel is the micro-kernel's")
    if kc and not ukr:
        raise InvalidConfigError("blocking k (kc) is the micro-kernel's")
    tails = edge_tails(s[C] if CC is None else s[CC], (i, j), (mr, nr),
                       ukr and not kc)
    io, ii = s[C].split(i, mr, tail=tails[0])
    jo, ji = s[C].split(j, nr, tail=tails[1])
    s[C].reorder(io, jo, ii, ji)
    ioo, ioi = s[C].split(io, cfg["block_m"].val)
    group, lead = jo, ()
    if plan.panels_per_pack > 1:
        group, jo = s[C].split(jo, plan.panels_per_pack)
        lead = (group,)
    blocks = (ioo, jo) if plan.rows_outer else (jo, ioo)
    if plan.batch_inside:
        if not grouped:
            raise InvalidConfigError("the batch inside the panel loop needs columns "
                                     "outermost and a stage computed per panel")
        rest = tuple(a for a in (*lead, *blocks) if a is not group)
        s[C].reorder(group, *plan.batch, *rest, ioi, ii, ji, *s[C].op.reduce_axis)
        outer = group
    else:
        s[C].reorder(*plan.batch, *lead, *blocks, ioi, ii, ji, *s[C].op.reduce_axis)
        outer_axes = (*plan.batch, group) if grouped else (*plan.batch, *blocks)
        outer = s[C].fuse(*outer_axes) if len(outer_axes) > 1 else outer_axes[0]
    s[C].parallel(outer)
    if plan.panel_stage is not None:
        plan.panel_stage.compute_at(s[C], outer)
    if plan.fetch_next:
        if not grouped or plan.batch_inside:
            raise InvalidConfigError("fetching the next group's rows of B is for B copied "
                                     "a group of panels at a time, columns outermost")
        (source,) = plan.panel_stage.op.input_tensors
        s[C].prefetch(source, outer, 1, spread=ioi, level=2)
    if plan.stream_out and CC is not None:
        rows, cols = int(i.domain.extent), int(j.domain.extent)
        if cut_tiles((rows, cols), (mr, nr), tails) or not simd_fp32(target, str(C.dtype)):
            raise InvalidConfigError(
                f"storing tiles around the cache needs whole {mr}x{nr} tiles of fp32 in "
                f"whole AVX vectors; {C.name} is {rows}x{cols} {C.dtype}, {lanes} lanes")
        s[C].tensorize(ii, stream_tile_intrin(mr, nr))
    elif CC is not None:
        if plan.store_runs and plan.store_runs < nr:
            _, ji = s[C].split(ji, plan.store_runs)
        s[C].vectorize(ji)
    if not ukr:
        s[CC].compute_at(s[C], ioi)
        unrolled_tile(s, CC, cfg["unroll_k"].val)
        return
    # The k slices of a blocked reduction run outside the block's tiles, so CC holds
    # the whole block, computed where the block starts.
    block_at = (blocks[-1] if grouped else outer) if kc else ioi
    micro_kernel_tile(s, cfg, C, CC, (i, j, ii), tails, block_at, plan, lanes)


def tile_fits_registers(mr: int, vectors: int, target: Target) -> bool:
    """Whether an ``mr`` x ``vectors`` register tile fits the target's vector registers
    beside its operands: a row of B (``vectors``) and a broadcast of A."""
    return mr * vectors + vectors + 1 <= target.vector_registers


def fallback_rows(target: Target, vectors: int) -> int:
    """The rows of a fallback's register tile ``vectors`` wide: 8 where they fit the
    registers (:func:`tile_fits_registers`), else as many as do."""
    return max(r for r in range(1, 9) if tile_fits_registers(r, vectors, target))


def micro_kernel_tile(s, cfg, C, CC, axes, tails, block_at, plan: TilePlan,
                      lanes: int) -> None:
    """The register tile of :func:`register_tile` as the tensorized micro-kernel in
    vectors of ``lanes``: ``axes`` are ``C``'s rows, columns and the rows within a
    tile; ``CC`` (None: the tile is summed in ``C``) is computed at ``block_at``."""
    mr, nr, kc = cfg["mr"].val, cfg["nr"].val, plan.kc
    i, j, ii = axes
    acc = s[C] if CC is None else s[CC]
    *cbatch, ci, cj = acc.op.axis
    (ck,) = acc.op.reduce_axis
    rows, cols = int(ci.domain.extent), int(cj.domain.extent)
    if int(i.domain.extent) < mr or int(j.domain.extent) < nr:
        raise InvalidConfigError(f"the micro-kernel's {mr}x{nr} tile is larger than "
                                 f"{C.name}'s {i.domain.extent}x{j.domain.extent}")
    if cut_tiles((rows, cols), (mr, nr), tails):
        raise InvalidConfigError(
            f"the micro-kernel needs whole {mr}x{nr} tiles; {C.name} has {rows}x{cols}"
            " (A packed pads the rows to whole tiles, B packed the columns)")
    if (cols // nr) % plan.panels_per_pack:
        raise InvalidConfigError(f"the micro-kernel needs whole groups of "
                                 f"{plan.panels_per_pack} panels; {C.name} has {cols // nr}")
    depth, lead = int(ck.domain.extent), ()
    if kc:
        block = cfg["block_m"].val
        if kc >= depth or depth % kc or (rows // mr) % block:
            raise InvalidConfigError(
                f"blocking k by {kc} needs whole blocks: k has {depth} values and "
                f"{C.name} {rows // mr} row tiles, in blocks of {block}")
        cio, ci = s[CC].split(ci, mr)
        cko, ck = s[CC].split(ck, kc)
        lead = (cko, cio)
    if CC is not None:
        s[CC].compute_at(s[C], block_at)
    # Columns padded to whole tiles: the last tile computes only what it needs.
    edge = int(j.domain.extent) if cols != int(j.domain.extent) else 0
    ukr = gemm_microkernel(mr, nr, kc or depth, lanes, plan.prefetch, plan.a_packed, edge,
                           stream=CC is None and plan.stream_out)
    if CC is None:
        s[C].tensorize(ii, ukr)
        return
    s[CC].reorder(*cbatch, *lead, ci, cj, ck)
    s[CC].tensorize(ci, ukr)


def edge_tails(acc, axes, tiles, whole: bool) -> tuple[Tail, ...]:
    """How each of ``C``'s tile splits ends (:meth:`Stage.split`'s ``tail``): where the
    tile must be ``whole`` (a micro-kernel) and ``acc``, the stage that sums it, is
    not padded to whole tiles along that axis (its operand is read in place, not
    packed), the last tile shifts back inside the edge and recomputes a few rows or
    columns (gemm-512 in 6x64 tiles, the last from row 506: 0.95x PyTorch on one core,
    against 0.89x in the 4x64 tiles that divide it); else bound checks cut it."""
    *_, ci, cj = acc.op.axis
    return tuple(edge_tail(int(axis.domain.extent), int(own.domain.extent), tile, whole)
                 for axis, own, tile in zip(axes, (ci, cj), tiles, strict=True))


def edge_tail(n: int, summed: int, tile: int, whole: bool) -> Tail:
    """:func:`edge_tails` of one axis: ``n`` values of ``C``, ``summed`` of its sum."""
    padded = summed != n
    return Tail.SHIFT_INWARDS if whole and not padded and n % tile and n > tile else Tail.GUARD


def cut_tiles(extents, tiles, tails) -> bool:
    """Whether bound checks cut a tile: an extent that its tile does not divide, with
    a guarded tail (:func:`edge_tails`)."""
    return any(n % t and tail is Tail.GUARD for n, t, tail in zip(extents, tiles, tails,
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
