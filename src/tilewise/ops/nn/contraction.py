"""Contractions: the matrix product (NumPy's ``matmul``: batches broadcast, 1-D operands
promoted) and the 2-D convolution over NCHW (ONNX's ``Conv``: per-side pads, strides,
dilations, groups), each a sum of products that the generated schedule tiles.

>>> y = conv2d(x, w, strides=(2, 2), pads=(1, 1, 1, 1))   # x (1, 3, 32, 32), w (8, 3, 3, 3)
"""

from __future__ import annotations

from collections.abc import Sequence

from ... import te
from ...errors import TensorError
from ...te import Tensor
from .broadcast import broadcast_shape


def matmul(a: Tensor, b: Tensor, name: str = "matmul") -> Tensor:
    """``a @ b`` with NumPy's rules: the last two axes multiply, the leading ones
    broadcast; a 1-D ``a`` is a row, a 1-D ``b`` a column, dropped from the result.

    >>> c = matmul(a, b)      # a (2, 1, 4, 8), b (3, 8, 5) -> (2, 3, 4, 5)
    """
    if not a.ndim or not b.ndim:
        raise TensorError(f"matmul {name}: operands need rank 1 or more")
    sa = (1, *a.shape) if a.ndim == 1 else tuple(a.shape)
    sb = (*b.shape, 1) if b.ndim == 1 else tuple(b.shape)
    if sa[-1] != sb[-2]:
        raise TensorError(f"matmul {name}: {tuple(a.shape)} by {tuple(b.shape)}: inner "
                          "sizes differ")
    batch = broadcast_shape(sa[:-2], sb[:-2])
    M, K, N = sa[-2], sa[-1], sb[-1]
    full = (*batch, M, N)
    shape = full[:-2] + full[-1:] if a.ndim == 1 else full
    shape = shape[:-1] if b.ndim == 1 else shape
    k = te.reduce_axis((0, K), name="k")

    def read(t: Tensor, lead: Sequence, row, col):
        """``t`` (2-D or more) at a result's batch index ``lead``, broadcast."""
        tail = lead[len(lead) - (t.ndim - 2):] if t.ndim > 2 else ()
        idx = tuple(0 if n == 1 else ix for n, ix in zip(t.shape[:-2], tail, strict=True))
        return t[(*idx, row, col)]

    def body(*idx):
        index = list(idx)
        if b.ndim == 1:
            index.append(0)
        if a.ndim == 1:
            index.insert(len(index) - 1, 0)
        *lead, i, j = index
        left = a[k] if a.ndim == 1 else read(a, lead, i, k)
        right = b[k] if b.ndim == 1 else read(b, lead, k, j)
        return te.sum(left * right, axis=k)

    return te.compute(shape, body, name=name)


def conv2d(x: Tensor, w: Tensor, bias: Tensor | None = None,
           strides: Sequence[int] = (1, 1), pads: Sequence[int] = (0, 0, 0, 0),
           dilations: Sequence[int] = (1, 1), groups: int = 1,
           name: str = "conv2d") -> Tensor:
    """The convolution of ``x`` (N, C, H, W) by ``w`` (O, C / groups, R, S), plus
    ``bias`` (O,) if given; ``pads`` are (top, left, bottom, right). The padding is a
    stage of its own, ``<name>_pad`` (inlined by a schedule), and with a bias the sum is
    ``<name>_sum``. An axis of the window of one element is no reduction loop."""
    if x.ndim != 4 or w.ndim != 4:
        raise TensorError(f"conv2d {name}: takes a 4-D input and weight")
    N, C, H, W = (int(d) for d in x.shape)
    F, Cg, R, S = (int(d) for d in w.shape)  # filters
    (sh, sw), (dh, dw) = tuple(strides), tuple(dilations)
    pt, pl, pb, pr = tuple(pads)
    if groups < 1 or C != Cg * groups or F % groups:
        raise TensorError(f"conv2d {name}: {C} channels, weight {tuple(w.shape)} and "
                          f"groups {groups} do not agree")
    OH = (H + pt + pb - dh * (R - 1) - 1) // sh + 1
    OW = (W + pl + pr - dw * (S - 1) - 1) // sw + 1
    if OH < 1 or OW < 1:
        raise TensorError(f"conv2d {name}: the window is larger than the padded input")
    src = x
    if pt or pl or pb or pr:
        zero = te.const(0.0, str(x.dtype))
        src = te.compute(
            (N, C, H + pt + pb, W + pl + pr),
            lambda n, c, h, v: te.if_then_else(
                te.all(h >= pt, h < H + pt, v >= pl, v < W + pl), x[n, c, h - pt, v - pl],
                zero),
            name=f"{name}_pad")
    per = F // groups
    rc = te.reduce_axis((0, Cg), name="rc") if Cg > 1 else None
    ry = te.reduce_axis((0, R), name="ry") if R > 1 else None
    rx = te.reduce_axis((0, S), name="rx") if S > 1 else None
    axes = [r for r in (rc, ry, rx) if r is not None]
    kc, ky, kx = (0 if r is None else r for r in (rc, ry, rx))

    def channel(o):
        if groups == 1:
            return kc
        group = o // per if per > 1 else o
        return group * Cg + kc if Cg > 1 else group

    def body(n, o, y, v):
        prod = src[n, channel(o), y * sh + ky * dh, v * sw + kx * dw] * w[o, kc, ky, kx]
        return te.sum(prod, axis=axes) if axes else prod  # 1x1 over one channel: no sum

    out = te.compute((N, F, OH, OW), body, name=name if bias is None else f"{name}_sum")
    if bias is None:
        return out
    return te.compute((N, F, OH, OW), lambda n, o, y, v: out[n, o, y, v] + bias[o], name=name)


__all__ = ["conv2d", "matmul"]
