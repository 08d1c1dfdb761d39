"""How far Winograd's F(2x2, 3x3) and F(4x4, 3x3) round from the exact convolution,
beside the direct template, on the ResNet 3x3 layers.

    python benchmarks/winograd_accuracy.py

Each layer on standard-normal data and weights (fp32): the largest absolute error of
each template's fallback (``tile`` set for Winograd) against the direct sum in
float64, and that error as a share of the result's largest magnitude.
"""

from __future__ import annotations

import numpy as np

import tilewise as tw
import tilewise.ops  # noqa: F401  (registers the templates)
from tilewise.autotune import Task
from tilewise.ops.conv2d import conv2d_nchw_numpy

LAYERS = [("resnet-c2-3x3", 64, 56), ("resnet-c3-3x3", 128, 28), ("resnet-c4-3x3", 256, 14),
          ("resnet-c5-3x3", 512, 7)]
SIDES = [("direct", "conv2d_nchw", {}), ("F(2x2)", "conv2d_nchw_winograd", {"tile": 2}),
         ("F(4x4)", "conv2d_nchw_winograd", {"tile": 4, "nr": 16, "mr": 4})]


def main() -> None:
    rng = np.random.default_rng(0)
    print("| layer | " + " | ".join(name for name, _, _ in SIDES) + " |")
    print("| --- |" + " --- |" * len(SIDES))
    for layer, C, H in LAYERS:
        args = (1, C, H, H, C, 3, 3, 1, 1)
        d = rng.standard_normal((1, C, H, H)).astype("float32")
        k = rng.standard_normal((C, C, 3, 3)).astype("float32")
        exact = conv2d_nchw_numpy(d.astype(np.float64), k.astype(np.float64), 1, 1)
        scale = float(np.abs(exact).max())
        cells = []
        for _, template, choices in SIDES:
            task = Task(template, args, "c")
            space = task.config_space
            mod = tw.build(*task.instantiate(space.with_choices(space.fallback, **choices)),
                           target=task.target)
            out = np.zeros(exact.shape, "float32")
            mod(d, k, out)
            err = float(np.abs(out - exact).max())
            cells.append(f"{err:.1e} ({err / scale:.1e})")
        print(f"| {layer} (C={C}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
