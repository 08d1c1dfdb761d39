"""How much of each template's space its declared constraints leave, and whether the
template builds every config its space offers.

    python benchmarks/space_constraints.py                 # the zoo's operator shapes
    python benchmarks/space_constraints.py --draws 300

For each task: the configs of the space, the share that breaks no declared constraint
and the share the space offers (valid, and one config per kernel where a declared
condition says a knob does not matter; from 200,000 uniform draws), how many of
``--draws`` sampled configs the template instantiates (refusals by reason), and the
cost of sampling a config and of one annealing step per chain (the constraint tables
built before). Nothing is compiled;
only the Python work is timed.
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np

TASKS = [
    ("gemm", (512, 512, 512)),
    ("gemm", (1, 1000, 1280)),
    ("dense", (128, 768, 768, "bias+gelu")),
    ("batch_matmul", (12, 128, 128, 64)),
    ("conv2d_nchw", (1, 64, 56, 56, 64, 3, 3, 1, 1, 1, "float32", "bias+relu")),
    ("conv2d_nchw", (1, 144, 56, 56, 24, 1, 1, 1, 0, 1, "float32", "bias+residual")),
    ("conv2d_nchw_winograd", (1, 64, 56, 56, 64, 3, 3, 1, 1, 1, "float32", "bias+relu")),
    ("depthwise_conv2d_nchw", (1, 144, 56, 56, 3, 3, 1, 1, 1, "float32", "bias+relu6")),
    ("depthwise_conv2d_nchwc", (1, 144, 56, 56, 3, 3, 1, 1, 1, "float32", "bias+relu6")),
    ("max_pool2d", (1, 64, 112, 112, 3, 3, 2, 1)),
    ("softmax", (1536, 128)),
    ("layer_norm", (128, 768)),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--target", default="c")
    opts = ap.parse_args()
    import tilewise.ops  # noqa: F401  (registers the templates)
    from tilewise.autotune import Task
    from tilewise.errors import InvalidConfigError

    for name, args in TASKS:
        task = Task(name, args, opts.target)
        space = task.config_space
        rng = np.random.default_rng(0)
        draws = rng.integers(len(space), size=200_000)
        share = float(np.mean(space.valid(draws)))
        offered = float(np.mean(space.offered(draws)))
        start = time.perf_counter()
        picks = space.sample(opts.draws, rng)
        sample_us = (time.perf_counter() - start) / max(len(picks), 1) * 1e6
        points = picks[:128]
        start = time.perf_counter()
        for _ in range(50):
            points = space.random_neighbours(points, rng)
        step_us = (time.perf_counter() - start) / (50 * max(len(picks[:128]), 1)) * 1e6
        refused: collections.Counter[str] = collections.Counter()
        for index in picks:
            try:
                task.instantiate(space.get(index))
            except InvalidConfigError as err:
                refused[str(err)[:70]] += 1
        built = len(picks) - sum(refused.values())
        print(f"{task}\n  {len(space):,} configs, {len(space.constraints)} constraints, "
              f"{len(space.conditions)} conditions, {share:.2%} valid, {offered:.2%} offered "
              f"(one per kernel); built {built} of {len(picks)} drawn; sample "
              f"{sample_us:.1f} us/config, annealing step {step_us:.2f} us/chain")
        for why, n in refused.most_common(3):
            print(f"    {n:4d} refused: {why}")


if __name__ == "__main__":
    main()
