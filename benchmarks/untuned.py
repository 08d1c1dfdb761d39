"""Untuned, which implementation of a convolution to run: the fallback config of
``conv2d_nchw`` and of each template implementing it (the Winograd one), beside
PyTorch, over 3x3 stride-1 layers from the ResNet ones down to a network's RGB input.

    python benchmarks/untuned.py --threads 1 [--rounds 5]

Prints one line per layer: the median GFLOP/s of each (direct-sum FLOPs for all), the
ratio of each implementation to ``conv2d_nchw``, and which one dispatch runs untuned
(``untuned_first`` of the templates). Every kernel is checked against NumPy first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

#: (N, C, H, W, K, pad) of 3x3 stride-1 layers: ResNet-18's four, a VGG's first and
#: deepest, Inception-like odd sizes, a batch of four, few channels.
LAYERS = [
    (1, 64, 56, 56, 64, 1), (1, 128, 28, 28, 128, 1), (1, 256, 14, 14, 256, 1),
    (1, 512, 7, 7, 512, 1), (1, 3, 224, 224, 64, 1), (1, 64, 224, 224, 64, 1),
    (1, 16, 32, 32, 16, 1), (1, 32, 112, 112, 32, 1), (1, 512, 14, 14, 512, 1),
    (1, 64, 56, 56, 128, 0), (1, 96, 35, 35, 96, 1), (4, 64, 28, 28, 64, 1),
    (1, 1024, 7, 7, 1024, 1), (1, 8, 64, 64, 8, 1), (1, 256, 28, 28, 64, 1),
    (1, 64, 13, 13, 256, 1),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    opts = ap.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ[var] = str(opts.threads)

    import numpy as np
    import torch
    from compare import _numbers, _time_py

    import tilewise as tw
    import tilewise.ops  # noqa: F401  (registers the templates)
    from tilewise.autotune import Task
    from tilewise.autotune.dispatch import untuned_choice
    from tilewise.runtime import aligned

    torch.set_num_threads(opts.threads)
    target = f"c -cores={opts.threads}"
    print(f"{opts.threads} thread(s), {opts.rounds} rounds; median GFLOP/s, "
          "implementation / conv2d_nchw, the one run untuned")
    for n, c, h, w, k, pad in LAYERS:
        task = Task("conv2d_nchw", (n, c, h, w, k, 3, 3, 1, pad), target)
        options = task.implementations()
        timers = {}
        for t in options:
            arrays, (want,) = t.reference()(np.random.default_rng(0))
            arrays = [aligned(a) for a in arrays]
            s, tensors = t.instantiate(t.config_space.fallback)
            mod = tw.build(s, tensors, target=t.target)
            mod(*arrays)
            np.testing.assert_allclose(arrays[-1], want, rtol=1e-3, atol=1e-3,
                                       err_msg=f"{t}'s fallback is wrong")
            timer = mod.time_evaluator(number=_numbers(task.flop), repeat=5)
            timers[t.name] = (timer, arrays)
        x, wt = (torch.from_numpy(a) for a in arrays[:2])  # the same data for every side

        def pytorch(x=x, wt=wt, pad=pad):
            return torch.nn.functional.conv2d(x, wt, padding=pad)

        gflops: dict[str, list[float]] = {name: [] for name in [*timers, "pytorch"]}
        # Each side waits out the last one's thread pool, whose idle threads spin for a
        # while after a call and would take a core from the side timed next.
        pause = 0.3 if opts.threads > 1 else 0.0
        with torch.no_grad():
            for _ in range(opts.rounds):
                for name, (timer, arrays) in timers.items():
                    time.sleep(pause)
                    gflops[name].append(task.flop / timer(*arrays).median / 1e9)
                time.sleep(pause)
                seconds = _time_py(pytorch, _numbers(task.flop), 5)
                gflops["pytorch"].append(task.flop / seconds / 1e9)
        med = {name: statistics.median(v) for name, v in gflops.items()}
        ratios = " ".join(f"{name} {med[name] / med['conv2d_nchw']:.2f}x"
                          for name in timers if name != "conv2d_nchw")
        values = " ".join(f"{name} {v:.1f}" for name, v in med.items())
        print(f"N={n} C={c} H={h} W={w} K={k} pad={pad}: {values}; {ratios or '-'}; "
              f"untuned: {untuned_choice(options).name}", flush=True)


if __name__ == "__main__":
    main()
