"""Hand-written transpose micro-kernels for ``tensorize``: the layout transforms of the
NCHW[x]c convolution.

- :func:`weight_pack_intrin`: OIHW weights into ``[R, S, ib, ob]`` blocks (output
  channels innermost, one vector per tap and input channel);
- :func:`data_pack_intrin`: one row of NCHW data into NCHW[x]c, ``[w][cb]``, its
  zero padding written on the way;
- :func:`data_unpack_intrin`: one row of the NCHW[x]c result back into NCHW.

Each is a transpose whose one side lies a whole channel (or weight row) apart in
memory. A plain loop nest does one strided load or store per element, and gcc's
gathers and scatters hit the same few L1 sets over and over (channels of a 56x56
plane are 12.25 KiB apart, rows of a 3x3x512 weight tensor 18 KiB). The kernels read
and write whole vectors along the contiguous side and transpose 16x16 tiles (8x8 on
AVX2) in registers: resnet-c2-3x3 on one core spent 17% of its time in the data
transforms, weights packed this way took ~5x less time on ResNet's largest layers.
"""

from __future__ import annotations

from .. import te
from ..ir import Address, ExternCall, simplify
from ..schedule import BufferView, IntrinImpl, TensorIntrin, decl_tensor_intrin
from .microkernel import row_stride
from .simd_c import LANES_INSIDE, LANES_INSIDE8, TRANSPOSE8, TRANSPOSE16

_WEIGHT_PACK = r"""
/* dst[r][s][ib][ob] = src[ob * ld + ib * R * S + r * S + s] for one block. */
static inline void NAME(const float* restrict src, float* restrict dst, int32_t ld) {
  enum { RS = KR * KS, L = IB * RS };
#if defined(__AVX512F__) && (OB % 16 == 0)
  for (int ob0 = 0; ob0 < OB; ob0 += 16) {
    for (int j0 = 0; j0 < L; j0 += 16) {
      const int n = L - j0 < 16 ? L - j0 : 16;
      const __mmask16 m = (__mmask16)((1u << n) - 1u);
      __m512 r[16], t[16];
      #pragma GCC unroll 16
      for (int i = 0; i < 16; ++i)
        r[i] = _mm512_maskz_loadu_ps(m, src + (ob0 + i) * ld + j0);
      tw_transpose16(r, t);
      for (int j = 0; j < n; ++j) {
        const int ib = (j0 + j) / RS, rs = (j0 + j) % RS;
        _mm512_storeu_ps(dst + (rs * IB + ib) * OB + ob0, t[j]);
      }
    }
  }
#elif defined(__AVX2__) && (OB % 8 == 0)
  for (int ob0 = 0; ob0 < OB; ob0 += 8) {
    for (int j0 = 0; j0 < L; j0 += 8) {
      const int n = L - j0 < 8 ? L - j0 : 8;
      __m256 r[8], t[8];
      #pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) r[i] = tw_load_first8(src + (ob0 + i) * ld + j0, n);
      tw_transpose8(r, t);
      for (int j = 0; j < n; ++j) {
        const int ib = (j0 + j) / RS, rs = (j0 + j) % RS;
        _mm256_storeu_ps(dst + (rs * IB + ib) * OB + ob0, t[j]);
      }
    }
  }
#else
  for (int ob = 0; ob < OB; ++ob)
    for (int ib = 0; ib < IB; ++ib)
      for (int rs = 0; rs < RS; ++rs)
        dst[(rs * IB + ib) * OB + ob] = src[ob * ld + ib * RS + rs];
#endif
}
"""

_DATA_PACK = r"""
/* dst[w][cb] = x(cb, row, col0 + w) for w < WP, cb < IB, where x(c, y, x) is
   plane[c * ldc + y * PW + x] inside [0, PH) x [0, PW) and 0 outside. */
static inline void NAME(const float* restrict plane, float* restrict dst, int32_t ldc,
                        int32_t row, int32_t col0) {
  if (row < 0 || row >= PH) {
    for (int i = 0; i < WP * IB; ++i) dst[i] = 0.0f;
    return;
  }
  const float* src = plane + (int64_t)row * PW + col0;
#if defined(__AVX512F__)
  for (int w0 = 0; w0 < WP; w0 += 16) {
    const int nw = WP - w0 < 16 ? WP - w0 : 16;
    const __mmask16 in = (__mmask16)tw_lanes_inside(col0 + w0, PW);
    for (int c0 = 0; c0 < IB; c0 += 16) {
      const int nc = IB - c0 < 16 ? IB - c0 : 16;
      __m512 r[16], t[16];
      #pragma GCC unroll 16
      for (int i = 0; i < 16; ++i) {
        if (i >= nc) {
          r[i] = _mm512_setzero_ps();
          continue;
        }
        const float* at = src + (int64_t)(c0 + i) * ldc + w0;
        r[i] = _mm512_maskz_loadu_ps(in, at);
        /* The next row: each channel's rows are one stream, more streams than the
           hardware prefetcher follows, and each row too short for it to start. */
        _mm_prefetch((const char*)(at + PW), _MM_HINT_T0);
      }
      tw_transpose16(r, t);
      const __mmask16 out = (__mmask16)((1u << nc) - 1u);
      for (int j = 0; j < nw; ++j) _mm512_mask_storeu_ps(dst + (w0 + j) * IB + c0, out, t[j]);
    }
  }
#elif defined(__AVX2__)
  for (int w0 = 0; w0 < WP; w0 += 8) {
    const int nw = WP - w0 < 8 ? WP - w0 : 8;
    const __m256i in = tw_lanes_inside8(col0 + w0, PW);
    const int inside = col0 + w0 >= 0 && col0 + w0 + 8 <= PW;
    for (int c0 = 0; c0 < IB; c0 += 8) {
      const int nc = IB - c0 < 8 ? IB - c0 : 8;
      __m256 r[8], t[8];
      #pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) {
        if (i >= nc) {
          r[i] = _mm256_setzero_ps();
          continue;
        }
        const float* at = src + (int64_t)(c0 + i) * ldc + w0;
        r[i] = inside ? _mm256_loadu_ps(at) : _mm256_maskload_ps(at, in);
        _mm_prefetch((const char*)(at + PW), _MM_HINT_T0);
      }
      tw_transpose8(r, t);
      for (int j = 0; j < nw; ++j) tw_store_first8(dst + (w0 + j) * IB + c0, nc, t[j]);
    }
  }
#else
  for (int w = 0; w < WP; ++w) {
    const int inside = col0 + w >= 0 && col0 + w < PW;
    for (int cb = 0; cb < IB; ++cb)
      dst[w * IB + cb] = inside ? src[(int64_t)cb * ldc + w] : 0.0f;
  }
#endif
}
"""

_DATA_UNPACK = r"""
/* dst[j * ldd + i] = src[i * lds + j] for j < OB, i < NI. */
static inline void NAME(const float* restrict src, float* restrict dst, int32_t lds,
                        int32_t ldd) {
#if defined(__AVX512F__)
  for (int j0 = 0; j0 < OB; j0 += 16) {
    const int nj = OB - j0 < 16 ? OB - j0 : 16;
    const __mmask16 cols = (__mmask16)((1u << nj) - 1u);
    for (int i0 = 0; i0 < NI; i0 += 16) {
      const int ni = NI - i0 < 16 ? NI - i0 : 16;
      __m512 r[16], t[16];
      #pragma GCC unroll 16
      for (int i = 0; i < 16; ++i)
        r[i] = i < ni ? _mm512_maskz_loadu_ps(cols, src + (int64_t)(i0 + i) * lds + j0)
                      : _mm512_setzero_ps();
      tw_transpose16(r, t);
      const __mmask16 rows = (__mmask16)((1u << ni) - 1u);
      for (int j = 0; j < nj; ++j)
        _mm512_mask_storeu_ps(dst + (int64_t)(j0 + j) * ldd + i0, rows, t[j]);
    }
  }
#elif defined(__AVX2__)
  for (int j0 = 0; j0 < OB; j0 += 8) {
    const int nj = OB - j0 < 8 ? OB - j0 : 8;
    for (int i0 = 0; i0 < NI; i0 += 8) {
      const int ni = NI - i0 < 8 ? NI - i0 : 8;
      __m256 r[8], t[8];
      #pragma GCC unroll 8
      for (int i = 0; i < 8; ++i)
        r[i] = i < ni ? tw_load_first8(src + (int64_t)(i0 + i) * lds + j0, nj)
                      : _mm256_setzero_ps();
      tw_transpose8(r, t);
      for (int j = 0; j < nj; ++j)
        tw_store_first8(dst + (int64_t)(j0 + j) * ldd + i0, ni, t[j]);
    }
  }
#else
  for (int j = 0; j < OB; ++j)
    for (int i = 0; i < NI; ++i) dst[(int64_t)j * ldd + i] = src[(int64_t)i * lds + j];
#endif
}
"""


def _source(body: str, **names: int | str) -> str:
    for key, value in names.items():
        body = body.replace(key, str(value))
    return LANES_INSIDE + LANES_INSIDE8 + TRANSPOSE16 + TRANSPOSE8 + body


def weight_pack_intrin(R: int, S: int, ib: int, ob: int, dtype: str = "float32") -> TensorIntrin:
    """``out[r, s, i, o] = w[o, i, r, s]`` over one ``(ob, ib, R, S)`` block of OIHW
    weights, whose rows (``o``) are the view's outermost stride apart and whose
    ``(i, r, s)`` values are contiguous."""
    _float32("weight_pack_intrin", dtype)
    w = te.placeholder((ob, ib, R, S), dtype, name="w")
    out = te.compute((R, S, ib, ob), lambda r, s, i, o: w[o, i, r, s], name="packed")
    name = f"tw_pack_oihw_{R}x{S}x{ib}x{ob}"
    source = _source(_WEIGHT_PACK, NAME=name, KR=R, KS=S, IB=ib, OB=ob)

    def impl(ins: list[BufferView], outs: list[BufferView]) -> IntrinImpl:
        (src,), (dst,) = ins, outs
        return IntrinImpl(body=ExternCall(name, (src.ptr, dst.ptr, src.strides[0])))

    return decl_tensor_intrin(out.op, impl, source=source, name=name)


def data_pack_intrin(ib: int, width: int, plane: tuple[int, int],
                     dtype: str = "float32") -> TensorIntrin:
    """``out[w, c] = a[c, w]`` over ``width`` columns and ``ib`` channels of one row of
    NCHW data, read through an inlined zero padding: ``plane`` (H, W) bounds what
    exists, the rest (rows above or below, columns left or right) reads as zero. The
    view's third-last stride is the channel stride."""
    _float32("data_pack_intrin", dtype)
    a = te.placeholder((ib, width), dtype, name="a")
    out = te.compute((width, ib), lambda w, c: a[c, w], name="packed")
    ph, pw = plane
    name = f"tw_pack_nchwc_{ib}x{width}_{ph}x{pw}"
    source = _source(_DATA_PACK, NAME=name, IB=ib, WP=width, PH=ph, PW=pw)

    def impl(ins: list[BufferView], outs: list[BufferView]) -> IntrinImpl:
        (av,), (dst,) = ins, outs
        row0, col0 = av.origin[-2], av.origin[-1]
        # The channel block's plane: the row's address less its (row, column) offset.
        base = Address(av.ptr.buffer, simplify(av.ptr.index - row0 * av.strides[-2] - col0),
                       av.ptr.dtype)
        return IntrinImpl(body=ExternCall(name, (base, dst.ptr, av.strides[-3], row0, col0)))

    return decl_tensor_intrin(out.op, impl, source=source, name=name)


def data_unpack_intrin(ob: int, width: int, dtype: str = "float32") -> TensorIntrin:
    """``out[c, w] = a[w, c]`` over ``ob`` channels and ``width`` columns: one row of
    an NCHW[x]c block back into NCHW. Both views' rows must be contiguous."""
    _float32("data_unpack_intrin", dtype)
    a = te.placeholder((width, ob), dtype, name="a")
    out = te.compute((ob, width), lambda c, w: a[w, c], name="unpacked")
    name = f"tw_unpack_nchwc_{ob}x{width}"
    source = _source(_DATA_UNPACK, NAME=name, OB=ob, NI=width)

    def impl(ins: list[BufferView], outs: list[BufferView]) -> IntrinImpl:
        (src,), (dst,) = ins, outs
        args = (src.ptr, dst.ptr, row_stride(src, name), row_stride(dst, name))
        return IntrinImpl(body=ExternCall(name, args))

    return decl_tensor_intrin(out.op, impl, source=source, name=name)


def _float32(what: str, dtype: str) -> None:
    if dtype != "float32":
        raise ValueError(f"{what}: float32 only, not {dtype}")
