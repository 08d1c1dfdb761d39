"""Tutorial 2: schedule a matrix multiply by hand, one primitive at a time.

    python examples/02_schedule_matmul.py

Each step prints GFLOP/s so you can see what it buys. The last schedule is the
structure of a BLAS kernel: B packed into panels, an 8x32 register tile accumulated
in a local buffer (cache_write), rows unrolled, columns vectorised, tiles in parallel.
"""

import numpy as np

import tilewise as tw
from tilewise import te

N = 512
rng = np.random.default_rng(0)
a = rng.random((N, N), dtype=np.float32)
b = rng.random((N, N), dtype=np.float32)


def algorithm(packed_width=None):
    A = te.placeholder((N, N), name="A")
    B = te.placeholder((N, N), name="B")
    k = te.reduce_axis((0, N), name="k")
    if packed_width is None:
        C = te.compute((N, N), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
        return A, B, C, None
    nr = packed_width
    Bp = te.compute((N // nr, N, nr), lambda jo, kk, ji: B[kk, jo * nr + ji], name="Bp")
    C = te.compute((N, N), lambda i, j: te.sum(A[i, k] * Bp[j // nr, k, j % nr], axis=k),
                   name="C")
    return A, B, C, Bp


def measure(label, s, args):
    mod = tw.build(s, args)
    c = np.zeros((N, N), np.float32)
    mod(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-3)
    sec = mod.time_evaluator(number=3, repeat=3)(a, b, c).median
    print(f"{label:45s} {2 * N**3 / sec / 1e9:7.1f} GFLOP/s")


A, B, C, _ = algorithm()
s = te.create_schedule(C.op)
measure("naive (i, j, k)", s, [A, B, C])

s = te.create_schedule(C.op)
i, j = s[C].op.axis
(k,) = s[C].op.reduce_axis
io, jo, ii, ji = s[C].tile(i, j, 32, 32)
s[C].reorder(io, jo, k, ii, ji)
s[C].vectorize(ji)
measure("tiled 32x32, k outside the tile, vector j", s, [A, B, C])
s[C].parallel(io)
measure("... and tiles in parallel", s, [A, B, C])

A, B, C, Bp = algorithm(packed_width=32)
s = te.create_schedule(C.op)
CC = s.cache_write(C, "local")
i, j = s[C].op.axis
io, jo, ii, ji = s[C].tile(i, j, 8, 32)
s[C].vectorize(ji)
tile = s[C].fuse(io, jo)
s[C].parallel(tile)
s[CC].compute_at(s[C], tile)
ci, cj = s[CC].op.axis
(ck,) = s[CC].op.reduce_axis
ko, ki = s[CC].split(ck, 4)
s[CC].reorder(ko, ki, ci, cj)
s[CC].unroll(ki)
s[CC].unroll(ci)
s[CC].vectorize(cj)
pj, _, pji = s[Bp].op.axis
s[Bp].vectorize(pji)
s[Bp].parallel(pj)
measure("packed B, 8x32 register tile (cache_write)", s, [A, B, C])
print("\nthe register-tile loop nest:")
print("\n".join(str(tw.lower(s, [A, B, C])).splitlines()[8:22]))
