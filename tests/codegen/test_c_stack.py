"""Stack buffers are reached through a pointer, so gcc keeps their points-to facts
and a register tile that reads one stays in registers."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess

import numpy as np
import pytest

import tilewise as tw
from tilewise import te


def _row_tile(rows: int = 64, width: int = 16, reg_h: int = 4):
    """``out[y, x] = sum_r pad[y + r, x]`` with ``pad`` a stack copy of the input,
    ``reg_h`` rows of ``out`` accumulated in a local tile: the tile's loads from the
    stack index ``pad`` by an outer loop's variable."""
    A = te.placeholder((rows + 2, width), name="A")
    P = te.compute((rows + 2, width), lambda i, j: A[i, j] * 2.0, name="pad")
    r = te.reduce_axis((0, 3), name="r")
    out = te.compute((rows, width), lambda y, x: te.sum(P[y + r, x], axis=r), name="out")
    s = te.create_schedule(out.op)
    CC = s.cache_write(out, "local")
    y, x = s[out].op.axis
    yo, yi = s[out].split(y, reg_h)
    s[out].vectorize(x)
    s[CC].compute_at(s[out], yo)
    cy, cx = s[CC].op.axis
    (cr,) = s[CC].op.reduce_axis
    s[CC].reorder(cr, cy, cx)
    s[CC].unroll(cr)
    s[CC].unroll(cy)
    s[CC].vectorize(cx)
    return s, [A, out]


def test_stack_buffer_is_declared_with_a_pointer():
    s, args = _row_tile()
    src = tw.generate_source(tw.lower(s, args, "k"), "c -mcpu=x86-64 -cores=1")
    assert re.search(r"float pad_stack\[\d+\] __attribute__\(\(aligned\(64\)\)\);", src)
    assert "float* restrict pad = pad_stack;" in src
    assert "float* restrict out_local = out_local_stack;" in src


@pytest.mark.compiles
def test_row_tile_matches_numpy():
    s, args = _row_tile()
    mod = tw.build(s, args, target="c -cores=1")
    a = np.random.default_rng(0).standard_normal((66, 16)).astype(np.float32)
    got = np.zeros((64, 16), np.float32)
    mod(a, got)
    want = 2 * (a[:-2] + a[1:-1] + a[2:])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.compiles
@pytest.mark.skipif(platform.machine() != "x86_64" or shutil.which("gcc") is None,
                    reason="reads x86-64 assembly from gcc")
def test_register_tile_keeps_no_store_per_accumulation():
    """Regression: with the array itself in the code, gcc's vectorizer lost track of
    what its loads could alias and stored the tile to the stack after every add
    (depthwise conv 32 -> 45 GFLOP/s once fixed)."""
    s, args = _row_tile()
    src = tw.generate_source(tw.lower(s, args, "k"), "c -mcpu=x86-64-v3 -cores=1")
    flags = ["-O3", "-march=x86-64-v3", "-fopenmp", "-std=gnu11", "-S", "-x", "c", "-",
             "-o", "-"]
    asm = subprocess.run(["gcc", *flags], input=src, capture_output=True, text=True,
                         check=True).stdout
    adds = len(re.findall(r"\tvaddps\t", asm))
    stack_stores = len(re.findall(r"\tvmov[au]ps\t%ymm\d+, -?\d*\(%r[sb]p\)", asm))
    assert adds >= 24  # 3 taps x 4 rows x 2 vectors of 8 lanes
    # the copy into pad and the tile's final values: 8 on gcc 12, 24 before the fix
    assert stack_stores < adds // 2, asm


@pytest.mark.compiles
@pytest.mark.skipif(platform.machine() != "x86_64" or shutil.which("gcc") is None,
                    reason="reads x86-64 assembly from gcc")
def test_512_bit_target_vectorises_with_zmm():
    """gcc tunes Intel AVX-512 cores for 256-bit vectors by default; a 512-bit target's
    flags must override that (gemm-1024 went 111 -> 167 GFLOP/s on one core of a
    Sapphire Rapids VM once they did)."""
    import dataclasses

    s, args = _row_tile()
    target = dataclasses.replace(tw.Target.from_str("c -mcpu=skylake-avx512 -cores=1"),
                                 vector_bits=512)
    src = tw.generate_source(tw.lower(s, args, "k"), target)
    flags = [f for f in target.cflags if f not in ("-shared", "-fPIC")]
    asm = subprocess.run(["gcc", *flags, "-S", "-x", "c", "-", "-o", "-"], input=src,
                         capture_output=True, text=True, check=True).stdout
    assert re.search(r"\tvaddps\t[^\n]*%zmm", asm), asm
