"""Tutorial 5: tune a ResNet 3x3 convolution, both ways of computing it, and let
dispatch pick the faster.

    python examples/05_tune_conv2d.py [--trials 64]

The conv2d_nchw template packs data and weights to the NCHW[x]c layout (its own
stages), accumulates a (width block x channel block) register tile, and returns to
NCHW; its knobs are the channel blocks, the register tile and loop orders. The
conv2d_nchw_winograd template implements the same convolution (same arguments, same
tensors) by Winograd's F(2x2, 3x3) or F(4x4, 3x3): ``task.implementations()`` lists
both, and dispatch of ``conv2d_nchw`` runs whichever has the faster record.
"""

import argparse

import numpy as np

import tilewise as tw
import tilewise.ops  # noqa: F401
from tilewise import autotune as at


def gflops(task, config) -> float:
    s, args = task.instantiate(config)
    mod = tw.build(s, args, target=task.target)
    arrays, expected = task.reference()(np.random.default_rng(0))
    mod(*arrays)
    np.testing.assert_allclose(arrays[-1], expected[-1], rtol=1e-3, atol=1e-3)
    return task.flop / mod.time_evaluator(number=10, repeat=5)(*arrays).median / 1e9


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=64)
    opts = ap.parse_args()
    # resnet-c3-3x3: batch 1, 128 -> 128 channels, 28x28, 3x3, stride 1, pad 1
    task = at.Task("conv2d_nchw", (1, 128, 28, 28, 128, 3, 3, 1, 1), target="c")
    db = at.Database("tutorial_conv.db")
    option = at.measure_option(builder=at.LocalBuilder(), runner=at.LocalRunner(number=10))
    for t in task.implementations():
        print(t, "-", t.config_space.size, "configs")
        print(f"  untuned default: {gflops(t, t.config_space.fallback):.1f} GFLOP/s")
        summary = at.ModelTuner(t, seed=0, feature="ir").tune(opts.trials, option, database=db)
        print(f"  tuned ({summary.measured} new trials): "
              f"{gflops(t, summary.best_config):.1f} GFLOP/s")
    option.builder.close()
    with at.apply_history_best(db) as ctx:
        chosen, config = at.best_implementation(task, ctx)
        s, tensors = at.dispatch("conv2d_nchw", *task.args, target=task.target)
    print(f"dispatch of conv2d_nchw runs {chosen.name}: {gflops(chosen, config):.1f} GFLOP/s")


if __name__ == "__main__":
    main()
