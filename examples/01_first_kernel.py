"""Tutorial 1: declare a computation, print its loop nest, build it, call it.

    python examples/01_first_kernel.py

The algorithm (what to compute) is a tensor expression; the default schedule runs
it as a plain loop nest in axis order.
"""

import numpy as np

import tilewise as tw
from tilewise import te

# The algorithm: y = relu(a * x + b), elementwise over a 2-D array.
N, M = 256, 384
X = te.placeholder((N, M), "float32", name="X")
Y = te.compute((N, M), lambda i, j: te.max(X[i, j] * 2.0 + 1.0, 0.0), name="Y")

# How to compute it: the default schedule, then one primitive per line.
s = te.create_schedule(Y.op)
print("default loop nest:\n", tw.lower(s, [X, Y]), sep="")
i, j = s[Y].op.axis
s[Y].parallel(i)
s[Y].vectorize(j)
print("\nparallel rows, vector columns:\n", tw.lower(s, [X, Y]), sep="")

mod = tw.build(s, [X, Y], target="c")
x = np.random.default_rng(0).standard_normal((N, M)).astype("float32")
y = np.empty_like(x)
mod(x, y)
np.testing.assert_allclose(y, np.maximum(2 * x + 1, 0), rtol=1e-6)
t = mod.time_evaluator(number=100, repeat=5)(x, y)
print(f"\ncorrect; {t.median * 1e6:.1f} us per call (median of {len(t.results)})")
print("\ngenerated C (first lines):\n" + "\n".join(mod.source.splitlines()[:12]))
