"""Element-wise epilogues (bias, ReLU, ReLU6, GELU, residual add) chained after an operator's
output, to be inlined into the stage that writes the result.

An epilogue is a ``+``-joined string of steps, applied left to right::

    out, extra = apply_epilogue(conv, "bias+residual+relu", channel_axis=1)
    # extra == [bias (K,), residual (same shape as conv)]: the new kernel inputs

The template inlines every stage of the chain but the last (:func:`inline_chain`), so
the epilogue runs on values the output stage has just read or computed.

Templates that compute in a blocked layout (NCHW[x]c: conv2d_nchw, its Winograd form,
depthwise_conv2d_nchwc) apply the steps on the blocks instead, as the result leaves
the accumulator, and then transpose it back unchanged
(:func:`blocked_epilogue`, :func:`epilogue_on_blocks`)::

    result, extra = epilogue_on_blocks(conv, "bias+relu6", cb)   # (N, C/cb, H, W, cb)
"""

from __future__ import annotations

import math

import numpy as np

from .. import te
from ..errors import InvalidConfigError
from ..te.tensor import Tensor

STEPS = ("bias", "relu", "relu6", "gelu", "residual")


def parse_epilogue(epilogue: str) -> tuple[str, ...]:
    steps = tuple(s for s in epilogue.split("+") if s) if epilogue else ()
    bad = [s for s in steps if s not in STEPS]
    if bad:
        raise InvalidConfigError(f"unknown epilogue step(s) {bad}; have {list(STEPS)}")
    return steps


def apply_epilogue(
    out: Tensor, epilogue: str, channel_axis: int, name: str = "out"
) -> tuple[Tensor, list[Tensor]]:
    """``(result, extra_inputs)``; ``result is out`` when the epilogue is empty."""
    dtype = str(out.dtype)
    extra: list[Tensor] = []
    steps = parse_epilogue(epilogue)
    shape = tuple(out.shape)
    for n, step in enumerate(steps):
        prev = out
        last = n == len(steps) - 1
        stage = name if last else f"{name}_{step}"
        if step == "bias":
            b = te.placeholder((shape[channel_axis],), dtype, name="bias")
            extra.append(b)
            out = te.compute(shape, _nary(len(shape), lambda i, p=prev, b=b:
                                          p[i] + b[i[channel_axis]]), name=stage)
        elif step == "residual":
            r = te.placeholder(shape, dtype, name="residual")
            extra.append(r)
            out = te.compute(shape, _nary(len(shape), lambda i, p=prev, r=r: p[i] + r[i]),
                             name=stage)
        elif step == "relu":
            out = te.compute(shape, _nary(len(shape), lambda i, p=prev:
                                          te.max(p[i], te.const(0.0, dtype))), name=stage)
        elif step == "relu6":
            out = te.compute(shape, _nary(len(shape), lambda i, p=prev: te.min(
                te.max(p[i], te.const(0.0, dtype)), te.const(6.0, dtype))), name=stage)
        else:  # gelu, erf form
            out = te.compute(shape, _nary(len(shape), lambda i, p=prev: gelu(p[i], dtype)),
                             name=stage)
    return out, extra


def gelu(x, dtype: str = "float32"):
    """``x * Phi(x)``, the erf form."""
    half = te.const(0.5, dtype)
    return x * (half + half * te.erf(x * te.const(1 / math.sqrt(2), dtype)))


def _nary(ndim: int, f):
    """``f(indices_tuple)`` as a function of exactly ``ndim`` index arguments
    (``te.compute`` reads the arity)."""
    fns = {
        1: lambda a: f((a,)),
        2: lambda a, b: f((a, b)),
        3: lambda a, b, c: f((a, b, c)),
        4: lambda a, b, c, d: f((a, b, c, d)),
        5: lambda a, b, c, d, e: f((a, b, c, d, e)),
    }
    if ndim not in fns:
        raise InvalidConfigError(f"epilogues support 1-5 dimensions, not {ndim}")
    return fns[ndim]


def inline_chain(s, out: Tensor, producer: Tensor) -> None:
    """Inline every stage strictly between ``producer`` and ``out``."""
    t = out
    while t is not producer:
        t = next(x for x in t.op.input_tensors
                 if x is producer or (x.op.input_tensors and _reaches(x, producer)))
        if t is not producer:
            s[t].compute_inline()


def accumulator(s, out: Tensor, producer: Tensor) -> Tensor:
    """Inline the epilogue between ``producer`` (a reduction) and ``out``; return the
    stage that accumulates: a local ``cache_write`` copy of ``out`` when there is no
    epilogue, else ``producer`` itself moved to local scope (``out`` reads each of its
    elements once, applying the epilogue on the way to memory)."""
    inline_chain(s, out, producer)
    if out is producer:
        return s.cache_write(out, "local")
    s[producer].set_scope("local")
    return producer


def _reaches(t: Tensor, target: Tensor) -> bool:
    return t is target or any(_reaches(x, target) for x in t.op.input_tensors)


def epilogue_reference(y: np.ndarray, epilogue: str, extra: list[np.ndarray],
                       channel_axis: int) -> np.ndarray:
    """NumPy form of :func:`apply_epilogue`; ``extra`` in the same order as its inputs."""
    it = iter(extra)
    for step in parse_epilogue(epilogue):
        if step == "bias":
            b = next(it)
            shape = [1] * y.ndim
            shape[channel_axis] = -1
            y = y + b.reshape(shape)
        elif step == "residual":
            y = y + next(it)
        elif step == "relu":
            y = np.maximum(y, 0)
        elif step == "relu6":
            y = np.clip(y, 0, 6)
        else:
            y = y * (0.5 + 0.5 * _erf(y / math.sqrt(2)))
    return y.astype(np.float32) if y.dtype == np.float64 else y


def epilogue_inputs(epilogue: str, out_shape, channel_axis: int, rng, dtype="float32"):
    """Random arrays for the extra inputs of an epilogue, in input order."""
    arrs = []
    for step in parse_epilogue(epilogue):
        if step == "bias":
            arrs.append(rng.standard_normal(out_shape[channel_axis]).astype(dtype))
        elif step == "residual":
            arrs.append(rng.standard_normal(out_shape).astype(dtype))
    return arrs


# -- on NCHW[x]c blocks ---------------------------------------------------------------

def blocked_epilogue(C: int, cb: int, dtype: str, epilogue: str,
                     residual: bool = False) -> bool:
    """Whether the epilogue runs on the channel blocks of an NCHW[x]c result, before the
    transpose to NCHW: fp32 (the transpose micro-kernel), whole blocks of more than one
    channel, and no residual unless ``residual`` (an NCHW tensor, which the blocks read
    a channel plane apart: where the template measured that to pay)."""
    return (np.dtype(dtype) == np.float32 and cb > 1 and C % cb == 0
            and (residual or "residual" not in parse_epilogue(epilogue)))


def epilogue_on_blocks(blocks: Tensor, epilogue: str, cb: int,
                       shape: tuple[int, ...] | None = None) -> tuple[Tensor, list[Tensor]]:
    """``(result, extra)``: :func:`apply_epilogue`'s steps on ``blocks`` (N, C/cb, H, W,
    cb), in the same order and with the same new inputs: the bias (C,) read a block at
    a time, a residual of the NCHW output's ``shape`` (N, C, OH, OW) read across its
    channel planes. ``result`` is named ``result``, its inner steps ``result_<step>``
    (to be inlined into it)."""
    dtype = str(blocks.dtype)
    extra: list[Tensor] = []
    out = blocks
    steps = parse_epilogue(epilogue)
    for i, step in enumerate(steps):
        if step == "bias":
            extra.append(te.placeholder((int(blocks.shape[1]) * cb,), dtype, name="bias"))
        elif step == "residual":
            if shape is None:
                raise InvalidConfigError("a residual on the blocks needs the output's shape")
            extra.append(te.placeholder(tuple(shape), dtype, name="residual"))
        operand = extra[-1] if step in ("bias", "residual") else None
        out = te.compute(tuple(blocks.shape), block_step(step, out, operand, cb),
                         name="result" if i == len(steps) - 1 else f"result_{step}")
    return out, extra


def block_step(step: str, prev: Tensor, operand: Tensor | None, cb: int):
    """One epilogue step as a function of a block's (n, c, y, x, ci); ``operand``: the
    bias or the NCHW residual. Blocks padded past the residual's rows or columns (whole
    register tiles) read its last one there, a value the transform back drops."""
    dtype = str(prev.dtype)
    zero, six = te.const(0.0, dtype), te.const(6.0, dtype)
    if step == "bias":
        return lambda n, c, y, x, ci: prev[n, c, y, x, ci] + operand[c * cb + ci]
    if step == "residual":
        OH, OW = (int(d) for d in operand.shape[2:])

        def inside(i, size: int, blocks_size):
            return te.min(i, size - 1) if int(blocks_size) > size else i

        return lambda n, c, y, x, ci: prev[n, c, y, x, ci] + operand[
            n, c * cb + ci, inside(y, OH, prev.shape[2]), inside(x, OW, prev.shape[3])]
    if step == "relu":
        return lambda n, c, y, x, ci: te.max(prev[n, c, y, x, ci], zero)
    if step == "relu6":
        return lambda n, c, y, x, ci: te.min(te.max(prev[n, c, y, x, ci], zero), six)
    return lambda n, c, y, x, ci: gelu(prev[n, c, y, x, ci], dtype)


def _erf(x: np.ndarray) -> np.ndarray:
    try:
        from scipy.special import erf
    except ImportError:
        return np.vectorize(math.erf, otypes=[np.float64])(x)
    return erf(x)
