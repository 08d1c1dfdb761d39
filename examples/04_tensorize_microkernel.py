"""Tutorial 4: drop a hand-written micro-kernel into framework-scheduled loops.

    python examples/04_tensorize_microkernel.py

`tilewise.ops.microkernel.gemm_microkernel(mr, nr, kc, lanes)` declares, in te, what
the kernel computes (C[mr, nr] += A[mr, kc] @ B[kc, nr]) and gives its C source
(AVX-512 or AVX2 intrinsics, as wide as the target's vectors, where available).
`tensorize` checks that the loops below an axis compute exactly that, and replaces
them with calls: `reset` where the accumulator starts, `update` inside the k loop that
the framework keeps.
"""

import numpy as np

import tilewise as tw
from tilewise import te
from tilewise.ops.microkernel import gemm_microkernel

M = N = K = 512
lanes = tw.Target.from_str("c").vector_lanes(4)  # fp32 lanes: 16 on AVX-512, 8 on AVX2
mr, nr, kc = 4, 2 * lanes, 64  # 8 accumulators: within AVX2's 16 registers too
A = te.placeholder((M, K), name="A")
B = te.placeholder((K, N), name="B")
Bp = te.compute((N // nr, K, nr), lambda jo, k, ji: B[k, jo * nr + ji], name="Bp")
k = te.reduce_axis((0, K), name="k")
C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * Bp[j // nr, k, j % nr], axis=k), name="C")

s = te.create_schedule(C.op)
i, j = s[C].op.axis
(kk,) = s[C].op.reduce_axis
io, jo, ii, ji = s[C].tile(i, j, mr, nr)
ko, ki = s[C].split(kk, kc)
s[C].reorder(io, jo, ko, ii, ji, ki)
s[C].tensorize(ii, gemm_microkernel(mr, nr, kc, lanes))
s[C].parallel(io)
s[Bp].parallel(s[Bp].op.axis[0])
print(tw.lower(s, [A, B, C]))

mod = tw.build(s, [A, B, C])
rng = np.random.default_rng(0)
a, b = rng.random((M, K), dtype=np.float32), rng.random((K, N), dtype=np.float32)
c = np.zeros((M, N), np.float32)
mod(a, b, c)
np.testing.assert_allclose(c, a @ b, rtol=1e-3)
sec = mod.time_evaluator(number=5, repeat=3)(a, b, c).median
print(f"\ncorrect; {2 * M * N * K / sec / 1e9:.1f} GFLOP/s")
