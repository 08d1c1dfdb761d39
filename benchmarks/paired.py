"""Time chosen configs of one workload beside PyTorch (and NumPy for matrix products),
in one process, round by round.

    python benchmarks/paired.py resnet-c2-1x1 --threads 1 --rounds 11 \\
        --config '{}' --config '{"pack_weights": false, "kc": 0}'

Each ``--config`` is a JSON object of knob choices over the template's fallback config
(``{}`` is the fallback itself). Every round times the peers and then each config,
seconds apart, so a slow spell of a shared machine falls on all of them (the configs by
their kernels' own C timing loop, as the tuner times them); each config's line
gives its median GFLOP/s and the median over rounds of its ratio to the best peer in the
same round, the figure to compare configs by where whole rounds swing by a third. For gemm
and batch_matmul NumPy's ``matmul`` is timed too (its BLAS pool sized to ``--threads``),
since OpenBLAS, not PyTorch's MKL, leads some of them on AMD cores. ``--metaschedule
DIR`` times TVM MetaSchedule's best kernel in the work dir DIR as a peer too (one that
compare.py tuned: ``<--tvm-work-dir>/gemm-1024-1t``), by TVM's own timer; nothing is
tuned here.

``--template conv2d_nhwc`` times the same convolution in another layout (its own
fallback and knobs), PyTorch still on NCHW arrays.

compare.py measures each side in its own child process, as the tuner does; this script
is for comparing configs by hand (a knob's effect, a new fallback), not for the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

#: Other templates of a convolution workload: their arguments.
_LAYOUTS = {
    "conv2d_nhwc": lambda w: (1, w["H"], w["W"], w["C"], w["K"], w["R"], w["S"],
                              w["stride"], w["pad"]),
    "conv2d_nchw_winograd": lambda w: (1, w["C"], w["H"], w["W"], w["K"], w["R"], w["S"],
                                       w["stride"], w["pad"]),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workload", help="a name from workloads.json")
    ap.add_argument("--config", action="append", default=[],
                    help="JSON knob choices over the fallback (repeatable; default: {})")
    ap.add_argument("--template", choices=sorted(_LAYOUTS),
                    help="time this template's kernels instead of the workload's own "
                         "(the same convolution in another layout; peers unchanged)")
    ap.add_argument("--metaschedule", type=Path, metavar="DIR",
                    help="time MetaSchedule's best kernel of this workload, tuned "
                         "before in the work dir DIR, beside the peers")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--repeat", type=int, default=5)
    opts = ap.parse_args()
    # BLAS sizes its thread pool once, as NumPy loads it.
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS",
                "TVM_NUM_THREADS"):
        os.environ[var] = str(opts.threads)

    import numpy as np
    import torch
    from compare import _numbers, _time_py, load_workloads, pytorch_call, tilewise_task

    import tilewise as tw
    import tilewise.ops  # noqa: F401  (registers the templates)
    from tilewise.autotune import Task
    from tilewise.runtime import aligned

    by_name = {w["name"]: w for w in load_workloads()}
    if opts.workload not in by_name:
        ap.error(f"unknown workload {opts.workload!r}; have {sorted(by_name)}")
    w = by_name[opts.workload]
    name, args = tilewise_task(w)
    if opts.template is not None and w["kind"] != "conv2d":
        ap.error(f"--template {opts.template} times convolutions; {opts.workload} "
                 f"is a {w['kind']}")
    if opts.template is not None:
        name, args = opts.template, _LAYOUTS[opts.template](w)
    task = Task(name, args, f"c -cores={opts.threads}")
    space = task.config_space
    arrays, (want,) = task.reference()(np.random.default_rng(0))
    arrays = [aligned(a) for a in arrays]
    peer_arrays, peer_want = arrays, want
    if opts.template is not None:  # the peers read the workload's own layout
        own, (peer_want,) = Task(*tilewise_task(w)).reference()(np.random.default_rng(0))
        peer_arrays = [aligned(a) for a in own]
    # Every config is built and checked before the first timer starts.
    number = _numbers(task.flop)
    kernels = {}
    for text in opts.config or ["{}"]:
        config = space.with_choices(space.fallback, **json.loads(text))
        s, tensors = task.instantiate(config)
        mod = tw.build(s, tensors, target=task.target)
        mod(*arrays)
        np.testing.assert_allclose(arrays[-1], want, rtol=1e-3, atol=1e-3,
                                   err_msg=f"{config} is wrong")
        # Timed by the kernel's own C loop, as the tuner and compare.py time it: a call
        # from Python adds ~15 us of argument checks (a tenth of mobilenet-dw1's run).
        kernels[str(config)] = mod.time_evaluator(number=number, repeat=opts.repeat)
    torch.set_num_threads(opts.threads)
    peers = {"pytorch": pytorch_call(w, peer_arrays)}
    if w["kind"] in ("gemm", "batch_matmul"):
        out = np.empty_like(peer_arrays[-1])
        peers["numpy"] = lambda: np.matmul(peer_arrays[0], peer_arrays[1], out=out)
    timers = {}  # peers timed by their own native loop, seconds a run
    if opts.metaschedule is not None:
        import _metaschedule  # beside this file; imports TVM lazily

        if note := _metaschedule.missing():
            ap.error(note)
        timers["metaschedule"] = _metaschedule.best_kernel(
            w, opts.threads, opts.metaschedule, peer_arrays, [peer_want], number, opts.repeat)
    gflops = {label: [] for label in [*peers, *timers, *kernels]}
    # Each side waits out the last one's thread pool: OpenBLAS's and OpenMP's idle
    # threads spin for a while after a call, and on two cores they took one from the
    # side timed next (gemm-512 on two threads read 80 GFLOP/s after NumPy, 160 alone).
    pause = 0.3 if opts.threads > 1 else 0.0
    with torch.no_grad():
        for _ in range(opts.rounds):
            for label, call in peers.items():
                time.sleep(pause)
                gflops[label].append(task.flop / _time_py(call, number, opts.repeat) / 1e9)
            for label, seconds in timers.items():
                time.sleep(pause)
                gflops[label].append(task.flop / seconds() / 1e9)
            for label, timer in kernels.items():
                time.sleep(pause)
                gflops[label].append(task.flop / timer(*arrays).median / 1e9)
    best = [max(round_) for round_ in zip(*(gflops[p] for p in [*peers, *timers]),
                                          strict=True)]
    print(f"{opts.workload}, {opts.threads} thread(s), {opts.rounds} rounds; "
          "GFLOP/s median, ratio to the best peer (median of rounds), rounds")
    for label, values in gflops.items():
        ratio = statistics.median(v / p for v, p in zip(values, best, strict=True))
        print(f"{statistics.median(values):7.1f}  {ratio:5.2f}  "
              f"{' '.join(f'{v:.0f}' for v in values)}  {label}")


if __name__ == "__main__":
    main()
