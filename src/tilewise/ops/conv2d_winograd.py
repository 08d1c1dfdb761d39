"""3x3 convolution by Winograd's minimal filtering F(m x m, 3 x 3) (Lavin and Gray,
"Fast Algorithms for Convolutional Neural Networks", 2016), NCHW in and out like
``conv2d_nchw`` (template ``conv2d_nchw_winograd``).

Each ``m x m`` tile of the output comes from an ``a x a`` tile of the input (``a = m +
2``): transformed, multiplied element by element with the transformed weights and
summed over the input channels, transformed back. The products are ``a^2`` per tile
and channel pair where the direct sum takes ``9 m^2``: 2.25x fewer for m = 2, 4x
for m = 4, and the sum over the channels is a GEMM per element of the tile, which the
gemm schedule already runs near the FMA peak. The price is rounding, which grows with
m: on the ResNet layers F(2x2) strays from the exact result less than the direct sum
does, F(4x4) by about 1e-5 of the result's scale, 5-6x the direct sum
(benchmarks/winograd_accuracy.py); the tuner's correctness check (relative and
absolute 1e-3) refuses a config whose result strays further.

Stages:

- ``data_pack`` (N, C/cb, Hp, Wp, cb): the input in NCHW[x]c, zero padded to whole tiles;
- ``kernel_pack`` (Kp/nr, C/cb, 3, 3, cb, nr): the weights, output channels innermost;
- ``U`` (a, a, Kp/nr, C, nr): the weights transformed, ``G g G^T``, laid out as the
  GEMM's packed panels of B;
- ``V`` (a, a, P, C): each of the P input tiles transformed, ``B^T d B``;
- ``M`` (a, a, P, Kp): for each of the ``a^2`` elements a GEMM over the input channels,
  ``V @ U`` (:func:`.gemm_schedule.register_tile`, the elements the batch axes);
- ``Y`` (N, K/ob, nH m, nW m, ob): the output tiles, ``A^T M A``, in NCHW[x]c;
- ``result`` (the shape of Y), where there is an epilogue on fp32 blocks
  (:func:`.conv2d.unpacked_output`): its steps on Y a row of tiles at a time, Y then
  a local buffer of that row;
- ``out`` (N, K, OH, OW): the layout transform back, each row of a block one transpose
  (or, where a residual's channel planes alias in L1, with the epilogue inlined).

The three transforms are micro-kernels generated from the constant matrices (only
their non-zero entries), vectorised across a block of channels.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from .. import te
from ..autotune import template
from ..errors import LowerError, TensorError
from ..ir import Const, ExternCall, convert
from ..ir.dtype import as_dtype
from ..schedule import BufferView, IntrinImpl, TensorIntrin, decl_tensor_intrin
from ..target import Target
from .conv2d import conv2d_flop, conv2d_reference
from .epilogue import accumulator, inline_chain
from .gemm_schedule import TilePlan, fallback_rows, register_tile, tile_fits_registers
from .microkernel import micro_tile_width, simd_fp32
from .nchwc_layout import (
    layout_stage,
    packed_data,
    packed_weights,
    schedule_data_pack,
    schedule_unpack,
    schedule_weight_blocks,
    unpacked_blocks,
    unpacked_output,
)
from .window import Pair, out_size, pair

# (B^T, G, A^T) of F(m x m, 3 x 3): the interpolation points 0, 1, -1 (and 2, -2 for
# m = 4) and infinity, Lavin and Gray's matrices.
_MATRICES = {
    2: ([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]]),
    4: ([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
         [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
         [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]),
}

TILES = tuple(_MATRICES)


def winograd_matrices(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(B^T, G, A^T)`` of F(m x m, 3 x 3), float64: ``A^T [(G g G^T) * (B^T d B)] A``
    is the m x m correlation of the (m + 2) x (m + 2) tile d with the 3 x 3 filter g."""
    if m not in _MATRICES:
        raise TensorError(f"Winograd output tiles are {' or '.join(map(str, TILES))} wide, "
                          f"not {m}")
    bt, g, at = _MATRICES[m]
    return np.array(bt, float), np.array(g, float), np.array(at, float)


def _entry(values: np.ndarray, i, j, dtype: str):
    """``values[i, j]`` for index expressions ``i``, ``j``: a chain of selects over the
    non-zero entries (the compute's meaning; the stages run the micro-kernels)."""
    i, j, expr = convert(i), convert(j), te.const(0.0, dtype)
    for (r, c), v in np.ndenumerate(values):
        if v:
            expr = te.if_then_else(te.all(i == r, j == c), te.const(float(v), dtype), expr)
    return expr


def _separable(values: np.ndarray, at, dtype: str):
    """The body of ``out[e1, e2, ...] = sum_{i, j} T[e1, i] T[e2, j] x(i, j, ...)`` over
    T = ``values`` (outputs, inputs); ``at(i, j, *rest)`` reads x."""
    _, ni = values.shape
    i = te.reduce_axis((0, ni), name="ti")
    j = te.reduce_axis((0, ni), name="tj")

    def body(e1, e2, *rest):
        return te.sum(_entry(values, e1, i, dtype) * _entry(values, e2, j, dtype)
                      * at(i, j, *rest), axis=[i, j])
    return body


def conv2d_winograd_compute(N, C, H, W, K, pad, m: int, cb: int, nr: int, ob: int,
                            dtype: str = "float32", epilogue: str = ""):
    """``(inputs, out, stages)`` of F(m x m, 3 x 3) at stride 1; ``stages`` names
    data_pack, kernel_pack, U, V, M and Y (see the module)."""
    ph, pw = pair(pad)
    OH, OW = out_size(H, 3, 1, ph, 1), out_size(W, 3, 1, pw, 1)
    if OH < 1 or OW < 1:
        raise TensorError(f"conv2d_nchw_winograd: a {H}x{W} input padded by {pad} has no "
                          "3x3 window")
    bt, g, at = winograd_matrices(m)
    a = m + 2
    nH = -(-OH // m)
    KC = -(-K // nr)
    P = winograd_tiles(N, OH, OW, C, K, m, nr, np.dtype(dtype).itemsize)
    nW = P // (N * nH)
    data = te.placeholder((N, C, H, W), dtype, name="data")
    kernel = te.placeholder((K, C, 3, 3), dtype, name="kernel")
    data_pack = packed_data(data, cb, nH * m + 2, nW * m + 2, ph, pw)
    kernel_pack = packed_weights(kernel, cb, nr)
    u = _separable(g, lambda i, j, o, c, ki: kernel_pack[o, c // cb, i, j, c % cb, ki],
                   dtype)
    U = te.compute((a, a, KC, C, nr), lambda e1, e2, o, c, ki: u(e1, e2, o, c, ki), name="U")

    def tile_at(i, j, p, c):
        n, t = p // (nH * nW), p % (nH * nW)
        return data_pack[n, c // cb, t // nW * m + i, t % nW * m + j, c % cb]

    v = _separable(bt, tile_at, dtype)
    V = te.compute((a, a, P, C), lambda e1, e2, p, c: v(e1, e2, p, c), name="V")
    c = te.reduce_axis((0, C), name="c")
    Mt = te.compute(
        (a, a, P, KC * nr),
        lambda e1, e2, p, k: te.sum(V[e1, e2, p, c] * U[e1, e2, k // nr, c, k % nr], axis=c),
        name="M")

    def from_m(r1, r2, n, ko, y, x, ki):
        return Mt[r1, r2, (n * nH + y // m) * nW + x // m, ko * ob + ki]

    i = te.reduce_axis((0, a), name="ti")
    j = te.reduce_axis((0, a), name="tj")
    Y = te.compute(
        (N, K // ob, nH * m, -(-OW // m) * m, ob),
        lambda n, ko, y, x, ki: te.sum(
            _entry(at, y % m, i, dtype) * _entry(at, x % m, j, dtype)
            * from_m(i, j, n, ko, y, x, ki), axis=[i, j]),
        name="Y")
    out, extra = unpacked_output(Y, (N, K, OH, OW), epilogue)
    stages = {"data_pack": data_pack, "kernel_pack": kernel_pack, "U": U, "V": V, "M": Mt,
              "Y": Y}
    return [data, kernel, *extra], out, stages


def winograd_tiles(N: int, OH: int, OW: int, C: int, K: int, m: int, nr: int,
                   itemsize: int) -> int:
    """The GEMM's rows (``P``): every image's rows of m x m tiles, each row
    :func:`tiles_per_row` long."""
    nH = -(-OH // m)
    return N * nH * tiles_per_row(N, nH, -(-OW // m), (C, -(-K // nr) * nr), itemsize)


def tiles_per_row(N: int, nH: int, nW: int, channels: tuple[int, ...], itemsize: int) -> int:
    """The tiles of V's and M's rows: ``nW``, or a few more (tiles of zeros past the
    image) where each element's plane of V or M would otherwise be a whole number of
    4 KiB pages. The transforms touch every plane at the same offset, a^2 streams that
    would then all fall in the same L1 sets (resnet-c2-3x3 in F(2x2): 16 planes of
    784 tiles x 64 channels, 196 KiB apart; one core, benchmarks/paired.py, 5 rounds:
    171 -> 207 GFLOP/s with a 29th tile per row)."""
    def aliased(n: int) -> bool:
        return any(N * nH * n * c * itemsize % 4096 == 0 for c in channels)
    # (Where the channels alone make a plane whole pages, no count of tiles helps.)
    return next((n for n in range(nW, 2 * nW + 2) if not aliased(n)), nW)


# -- the transforms' micro-kernels ---------------------------------------------------

def _c_const(v: float, ctype: str) -> str:
    return repr(float(np.float32(v))) + "f" if ctype == "float" else repr(float(v))


def _combination(row: np.ndarray, terms: list[str], ctype: str) -> str:
    """``sum_i row[i] * terms[i]`` over the non-zero entries, as C."""
    out = []
    for v, t in zip(row, terms, strict=True):
        if v == 1:
            out.append(f"+ {t}")
        elif v == -1:
            out.append(f"- {t}")
        elif v:
            out.append(f"{'-' if v < 0 else '+'} {_c_const(abs(v), ctype)} * {t}")
    expr = " ".join(out) or "0"
    return expr[2:] if expr.startswith("+ ") else expr


@cache
def _transform_source(name: str, values: tuple, lanes: int, ctype: str) -> str:
    t = np.array(values, float)
    no, ni = t.shape
    lines = [f"static inline void {name}(const {ctype}* restrict src, {ctype}* restrict dst,",
             "    int64_t s0, int64_t s1, int64_t d0, int64_t d1) {",
             "  #pragma omp simd",
             f"  for (int l = 0; l < {lanes}; ++l) {{"]
    for r in range(ni):
        for c in range(ni):
            lines.append(f"    const {ctype} x{r}_{c} = src[{r} * s0 + {c} * s1 + l];")
    for e in range(no):  # down the columns first: t = T x
        for c in range(ni):
            col = [f"x{r}_{c}" for r in range(ni)]
            lines.append(f"    const {ctype} t{e}_{c} = {_combination(t[e], col, ctype)};")
    for e1 in range(no):  # then along the rows: T x T^T
        for e2 in range(no):
            row = [f"t{e1}_{c}" for c in range(ni)]
            lines.append(f"    dst[{e1} * d0 + {e2} * d1 + l] = "
                         f"{_combination(t[e2], row, ctype)};")
    lines += ["  }", "}", ""]
    return "#include <stdint.h>\n" + "\n".join(lines)


def transform_intrin(kind: str, values: np.ndarray, lanes: int, dtype: str) -> TensorIntrin:
    """``out[e1, e2, l] = sum_{i, j} T[e1, i] T[e2, j] x[i, j, l]`` for T = ``values``
    over ``lanes`` channels side by side: each view's channels contiguous, its two
    tile axes at any fixed strides."""
    no, ni = values.shape
    x = te.placeholder((ni, ni, lanes), dtype, name="x")
    body = _separable(values, lambda i, j, lane: x[i, j, lane], dtype)
    out = te.compute((no, no, lanes), lambda e1, e2, lane: body(e1, e2, lane), name=kind)
    ctype = {"float32": "float", "float64": "double"}[dtype]
    name = f"tw_winograd_{kind}_{no}x{ni}_{lanes}_{ctype}"
    source = _transform_source(name, tuple(map(tuple, values)), lanes, ctype)

    def impl(ins: list[BufferView], outs: list[BufferView]) -> IntrinImpl:
        (src,), (dst,) = ins, outs
        strides = (*_tile_strides(src, name, lanes), *_tile_strides(dst, name, lanes))
        return IntrinImpl(body=ExternCall(name, (src.ptr, dst.ptr, *strides)))

    return decl_tensor_intrin(out.op, impl, source=source, name=name)


def _tile_strides(view: BufferView, name: str, lanes: int):
    first, second, lane = view.axis_strides
    contiguous = lanes == 1 or isinstance(lane, Const) and lane.value == 1
    if first is None or second is None or not contiguous:
        raise LowerError(f"tensorize {name}: {view.ptr.buffer.name} is not read as a tile of "
                         f"contiguous channel blocks (axis strides {view.axis_strides})")
    return first, second


# -- the template --------------------------------------------------------------------

def _block(n: int, lanes: int) -> int:
    """The channel block of the transforms: the target's vector, or the largest power
    of two below it that divides ``n``."""
    return next(b for b in (lanes, 8, 4, 2, 1) if b <= lanes and n % b == 0)


def define_winograd_space(cfg, target: Target, N, OH, OW, C, K, dtype: str) -> None:
    lanes = target.vector_lanes(np.dtype(dtype).itemsize)
    cfg.define_knob("tile", list(TILES))
    cfg.define_knob("nr", [lanes, 2 * lanes, 4 * lanes])
    cfg.define_knob("mr", [2, 3, 4, 6, 8, 12])
    cfg.define_knob("block_m", [1, 2, 4, 8])
    cfg.define_knob("order", ["ji", "ij"])
    fp32_simd = simd_fp32(target, dtype)
    cfg.define_knob("kernel", ["ukr", "loops"] if fp32_simd else ["loops"])
    cfg.define_knob("unroll_k", [1, 4])
    # F(2x2), the accurate one: at most 2.3e-4 from the exact result on the ResNet
    # layers (the direct template 6.0e-4, F(4x4) 2.8e-3; winograd_accuracy.py). The
    # GEMM as gemm's fallback: the micro-kernel, four vectors of output channels where
    # they divide K, six rows (tiles) a call.
    wide = micro_tile_width(target, lanes)
    nr = max((n for n in (wide, 2 * lanes, lanes) if n <= wide and K % n == 0),
             default=lanes)
    rows = 6 if tile_fits_registers(6, nr // lanes, target) else fallback_rows(target, nr // lanes)
    itemsize = np.dtype(dtype).itemsize
    tiles = winograd_tiles(N, OH, OW, C, K, 2, nr, itemsize)
    # Fewer tiles than the micro-kernel's rows: as many rows as there are tiles.
    fits = [r for r in (2, 3, 4, 6) if r <= min(rows, tiles)]
    cfg.fallback_with(tile=2, nr=nr, mr=fits[-1] if fits else 2, block_m=4, order="ji",
                      kernel="ukr" if fp32_simd and fits else "loops", unroll_k=4)
    # "panel": each panel of the transformed weights (nr output channels, every input
    # channel and element of the tile) computed inside the GEMM's parallel loop just
    # before the tiles that read it, so it stays in L2, where "root" writes all of U
    # (a^2 K C floats) to memory first. Defined last, so that databases written before
    # it keep their indices. The fallback where U in F(2x2) is more than twice L2, in
    # one-vector panels (4x16 tiles): one Zen 4 core beside PyTorch
    # (benchmarks/paired.py, 3 rounds), resnet-c4-3x3 (U 4 MB) 1.44 -> 1.67x,
    # resnet-c5-3x3 (16 MB) 0.81 -> 1.15x (the direct template: 1.14x); two cores
    # 0.79 -> 1.61x, 0.89 -> 1.24x. Where U is smaller the panels lose at two cores
    # (c3-3x3, 1 MB: 1.98 -> 1.81x; c2-3x3: 1.93 -> 1.67x) and tie at one.
    cfg.define_knob("weights", ["root", "panel"])
    if 16 * K * C * np.dtype(dtype).itemsize > 2 * target.l2_bytes:
        cfg.fallback_with(weights="panel", nr=lanes, mr=min(4, fits[-1]) if fits else 2,
                          block_m=1)

    def tiles(m: int, nr: int) -> int:
        return winograd_tiles(N, OH, OW, C, K, m, nr, itemsize)

    # What schedule_winograd and its register tile build, declared on the knobs.
    cfg.require(("kernel", "mr", "tile", "nr"),
                lambda kernel, mr, m, nr: kernel != "ukr" or tiles(m, nr) >= mr,
                lambda kernel, mr, m, nr: f"the micro-kernel's {mr} rows are more than the "
                                          f"{tiles(m, nr)} tiles")
    cfg.conditional("unroll_k", ("kernel",), lambda kernel: kernel == "loops")
    cfg.require(("weights", "order"), lambda weights, order: weights != "panel" or order == "ji",
                "the weights transformed per panel need the panels outermost (order ji)")
    cfg.require(("mr", "nr"), lambda mr, nr: tile_fits_registers(mr, -(-nr // lanes), target),
                lambda mr, nr: f"register tile {mr}x{nr} with its operands needs more than "
                               f"{target.vector_registers} vector registers")


def schedule_winograd(cfg, target: Target, out, stages) -> te.Schedule:
    dtype = str(out.dtype)
    m = cfg["tile"].val
    bt, g, at = winograd_matrices(m)
    data_pack, kernel_pack, U, V, Mt, Y = (stages[k] for k in
                                           ("data_pack", "kernel_pack", "U", "V", "M", "Y"))
    cb, nr, ob = int(data_pack.shape[-1]), int(U.shape[-1]), int(Y.shape[-1])
    s = te.create_schedule(out.op)
    blocks = unpacked_blocks(out)  # Y, or the epilogue's result on its blocks
    if blocks is None:  # the layout transform and the epilogue both inside out's loops
        unpacked = layout_stage(out, Y)
        inline_chain(s, out, unpacked)
        s[unpacked].compute_inline()
    schedule_data_pack(s, data_pack)
    # The weights: a block of cb input channels at a time packed (a 16 x 16 transpose
    # per tap in fp32), then each input channel's 3 x 3 x nr transformed.
    per_panel = cfg["weights"].val == "panel"
    e1, e2, ko, c, ki = s[U].op.axis
    co, ci = s[U].split(c, cb)
    s[U].reorder(ko, co, ci, e1, e2, ki, *s[U].op.reduce_axis)
    s[U].tensorize(e1, transform_intrin("wt", g, nr, dtype))
    if per_panel:  # at the GEMM's panel loop (register_tile's panel stage)
        s[kernel_pack].compute_at(s[U], co)
    else:
        block = s[U].fuse(ko, co)
        s[U].parallel(block)
        s[kernel_pack].compute_at(s[U], block)
    schedule_weight_blocks(s, kernel_pack, target)
    # The input tiles: a row of tiles at a time, each block of cb channels one call.
    ve1, ve2, vp, vc = s[V].op.axis
    nW = int(data_pack.shape[3] - 2) // m
    row, col = s[V].split(vp, nW)
    vco, vci = s[V].split(vc, cb)
    s[V].reorder(row, col, vco, ve1, ve2, vci, *s[V].op.reduce_axis)
    s[V].parallel(row)
    s[V].tensorize(ve1, transform_intrin("in", bt, cb, dtype))
    # The GEMM per element of the tile.
    kernel = cfg["kernel"].val
    CC = None if kernel == "ukr" else accumulator(s, Mt, Mt)
    me1, me2, mp, mk = s[Mt].op.axis
    register_tile(s, cfg, target, Mt, CC, mp, mk, TilePlan(
        batch=(me1, me2), rows_outer=cfg["order"].val == "ij", micro_kernel=kernel == "ukr",
        panel_stage=s[U] if per_panel else None, batch_inside=per_panel))
    # The output tiles, each block of ob channels one call, then back to NCHW. With an
    # epilogue on the blocks, a row of tiles at a time into a local buffer, from which
    # the epilogue's result is written.
    yn, yko, yy, yx, yki = s[Y].op.axis
    ty, ya = s[Y].split(yy, m)
    tx, xb = s[Y].split(yx, m)
    s[Y].reorder(yn, yko, ty, tx, ya, xb, yki, *s[Y].op.reduce_axis)
    if blocks is None or blocks is Y:
        s[Y].parallel(s[Y].fuse(yn, yko, ty))
    else:
        inline_chain(s, blocks, Y)
        rn, rko, ry, rx, rki = s[blocks].op.axis
        rty, rya = s[blocks].split(ry, m)
        row = s[blocks].fuse(rn, rko, rty)
        s[blocks].parallel(row)
        s[blocks].vectorize(rki)
        s[Y].set_scope("local")
        s[Y].compute_at(s[blocks], row)
    s[Y].tensorize(ya, transform_intrin("out", at, ob, dtype))
    schedule_unpack(s, out, ob, blocks is not None)
    return s


def _refusal(R: int, S: int, stride: Pair, dilation: Pair, dtype: str) -> str | None:
    """Why the template does not compute a convolution of these arguments, or None."""
    if (R, S) != (3, 3) or pair(stride) != (1, 1) or pair(dilation) != (1, 1):
        return (f"conv2d_nchw_winograd: a 3x3 window at stride 1 and dilation 1, not "
                f"{R}x{S} at stride {stride} and dilation {dilation} (conv2d_nchw "
                "computes any)")
    if np.dtype(dtype) not in (np.float32, np.float64):
        return f"conv2d_nchw_winograd: float32 or float64, not {dtype}"
    return None


def winograd_applies(N: int, C: int, H: int, W: int, K: int, R: int, S: int,
                     stride: Pair = 1, pad: Pair = 0, dilation: Pair = 1,
                     dtype: str = "float32", epilogue: str = "", in_block: int = 0,
                     out_block: int = 0) -> bool:
    """Whether the template computes ``conv2d_nchw`` of these arguments: NCHW at both
    edges."""
    return _refusal(R, S, stride, dilation, dtype) is None and not (in_block or out_block)


def winograd_untuned_first(N: int, C: int, H: int, W: int, K: int, *rest) -> bool:
    """Whether, untuned, this template's fallback is the one to run rather than
    ``conv2d_nchw``'s: 32 or more channels in and out, where the GEMMs over the
    channels pay for the transforms. Both fallbacks on sixteen 3x3 layers
    (benchmarks/untuned.py; results/2026-12-05-zen4/untuned_*.txt, one / two Zen 4
    cores), Winograd / direct: 1.23-1.93x from 32 to 512 channels at 13x13 to 224x224
    (ResNet's c2-c4 1.58-1.90x), 0.95-1.08x at 7x7 with 512 or 1024 channels; 0.32 /
    0.27x at C=3 (an RGB input), 1.38 / 0.77x at C=K=16 on 32x32, 1.59 / 1.01x at
    C=K=8 on 64x64."""
    return C >= 32 and K >= 32


@template("conv2d_nchw_winograd", reference=conv2d_reference, flop=conv2d_flop,
          implements="conv2d_nchw", applies=winograd_applies,
          untuned_first=winograd_untuned_first, weights=("kernel", "bias"))
def conv2d_nchw_winograd(cfg, N: int, C: int, H: int, W: int, K: int, R: int, S: int,
                         stride: Pair = 1, pad: Pair = 0, dilation: Pair = 1,
                         dtype: str = "float32", epilogue: str = "", in_block: int = 0,
                         out_block: int = 0):
    """NCHW conv2d (OIHW weights) of a 3x3 window at stride 1 and dilation 1, any
    padding, by Winograd's F(m x m, 3 x 3); the same arguments as ``conv2d_nchw``, whose
    FLOP count (the direct sum's) its GFLOP/s are quoted in. It implements
    ``conv2d_nchw``: dispatch of that picks it where its record is the faster
    (:func:`~tilewise.autotune.dispatch.dispatch`)."""
    as_dtype(dtype)  # an unknown dtype is named in one line, not NumPy's TypeError
    refusal = _refusal(R, S, stride, dilation, dtype)
    if in_block or out_block:
        refusal = "conv2d_nchw_winograd: NCHW in and out, not channel blocks"
    if refusal is not None:
        raise TensorError(refusal)
    target = cfg.target
    (ph, pw) = pair(pad)
    OH, OW = out_size(H, 3, 1, ph, 1), out_size(W, 3, 1, pw, 1)
    define_winograd_space(cfg, target, N, OH, OW, C, K, dtype)
    lanes = target.vector_lanes(np.dtype(dtype).itemsize)
    inputs, out, stages = conv2d_winograd_compute(
        N, C, H, W, K, pad, cfg["tile"].val, _block(C, lanes), cfg["nr"].val,
        _block(K, lanes), dtype, epilogue)
    return schedule_winograd(cfg, target, out, stages), [*inputs, out]
