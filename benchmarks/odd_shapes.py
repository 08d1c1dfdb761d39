"""tilewise's untuned configs on shapes that no register tile divides, beside PyTorch.

    python benchmarks/odd_shapes.py                       # 1 thread, 5 rounds
    python benchmarks/odd_shapes.py --threads 2 --rounds 9

``shared/bench/workloads.json`` holds powers of two and ResNet layers, where the
templates' tiles divide every axis. Users bring 1000x1000 gemms, 197-token attention,
7x7 stems over 3 channels, Inception's 17x17 and 35x35 maps. For each shape here the
fallback config (what apply-best dispatch runs before any tuning) is built, checked
against NumPy, and timed round by round beside PyTorch in one process, as
``paired.py`` does; a line gives both medians and the median of the per-round ratio.
A ratio far below the others is a cliff: somewhere an edge cost a template its
register tile (gemm 1000x1000x1000 once read 0.12x).
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from compare import _numbers, _time_py, pytorch_call, tilewise_task


def _conv(name, C, H, W, K, R, S, stride, pad):
    return {"name": name, "kind": "conv2d", "C": C, "H": H, "W": W, "K": K, "R": R, "S": S,
            "stride": stride, "pad": pad}


SHAPES = [
    {"name": "gemm-1000", "kind": "gemm", "M": 1000, "N": 1000, "K": 1000},
    {"name": "gemm-999x777x555", "kind": "gemm", "M": 999, "N": 777, "K": 555},
    {"name": "gemm-100x3000x700", "kind": "gemm", "M": 100, "N": 3000, "K": 700},
    {"name": "gemm-3000x100x700", "kind": "gemm", "M": 3000, "N": 100, "K": 700},
    {"name": "dense-batch1", "kind": "gemm", "M": 1, "N": 4096, "K": 1024},
    {"name": "dense-batch3", "kind": "gemm", "M": 3, "N": 4096, "K": 1024},
    {"name": "vit-attn-qk", "kind": "batch_matmul", "B": 16, "M": 197, "N": 197, "K": 64},
    {"name": "clip-attn-av", "kind": "batch_matmul", "B": 12, "M": 77, "N": 64, "K": 77},
    _conv("resnet-stem-7x7", 3, 224, 224, 64, 7, 7, 2, 3),
    _conv("inception-35x35-3x3", 96, 35, 35, 96, 3, 3, 1, 1),
    _conv("inception-17x17-1x7", 48, 17, 17, 80, 1, 7, 1, (0, 3)),
    _conv("inception-17x17-1x1", 160, 17, 17, 192, 1, 1, 1, 0),
    _conv("inception-35x35-1x1", 192, 35, 35, 48, 1, 1, 1, 0),
    _conv("conv-55x55-3x3-s2", 64, 55, 55, 64, 3, 3, 2, 0),
    {"name": "mobilenet-dw-57x57-s2", "kind": "depthwise_conv2d", "C": 144, "H": 57,
     "W": 57, "R": 3, "S": 3, "stride": 2, "pad": 1},
    {"name": "dw-30x30-5x5", "kind": "depthwise_conv2d", "C": 96, "H": 30, "W": 30,
     "R": 5, "S": 5, "stride": 1, "pad": 2},
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", help="comma-separated names of the shapes above")
    opts = ap.parse_args()

    import torch

    import tilewise as tw
    import tilewise.ops  # noqa: F401  (registers the templates)
    from tilewise.autotune import Task
    from tilewise.runtime import aligned

    shapes = SHAPES
    if opts.only:
        names = opts.only.split(",")
        unknown = set(names) - {w["name"] for w in SHAPES}
        if unknown:
            ap.error(f"unknown shape(s) {sorted(unknown)}; have {[w['name'] for w in SHAPES]}")
        shapes = [w for w in SHAPES if w["name"] in names]
    torch.set_num_threads(opts.threads)
    # Every kernel is built and checked before the first timer starts.
    cases = []
    for w in shapes:
        name, args = tilewise_task(w)
        task = Task(name, args, f"c -cores={opts.threads}")
        arrays, (want,) = task.reference()(np.random.default_rng(0))
        arrays = [aligned(a) for a in arrays]
        mod = tw.build(*task.instantiate(task.config_space.fallback), target=task.target)
        mod(*arrays)
        np.testing.assert_allclose(arrays[-1], want, rtol=1e-3,
                                   atol=1e-3 * float(np.abs(want).max()), err_msg=w["name"])
        cases.append((w, task, mod, arrays))
    print(f"{opts.threads} thread(s), {opts.rounds} rounds; GFLOP/s medians, and the median "
          "over rounds of the fallback / PyTorch ratio")
    print(f"{'shape':24s} {'fallback':>9s} {'PyTorch':>8s} {'ratio':>6s}  fallback config")
    with torch.no_grad():
        for w, task, mod, arrays in cases:
            peer = pytorch_call(w, arrays)
            number = _numbers(task.flop)
            ours, theirs = [], []
            for _ in range(opts.rounds):
                theirs.append(task.flop / _time_py(peer, number, opts.repeat) / 1e9)
                ours.append(task.flop / _time_py(lambda m=mod, a=arrays: m(*a), number,
                                                 opts.repeat) / 1e9)
            ratio = statistics.median(o / t for o, t in zip(ours, theirs, strict=True))
            print(f"{w['name']:24s} {statistics.median(ours):9.1f} "
                  f"{statistics.median(theirs):8.1f} {ratio:6.2f}  "
                  f"{task.config_space.fallback}", flush=True)


if __name__ == "__main__":
    main()
