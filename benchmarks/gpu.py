"""tilewise's GPU templates beside cuBLAS and cuDNN (through PyTorch) on this machine's
NVIDIA GPU, same run.

    python benchmarks/gpu.py                                  # every workload, 64 trials
    python benchmarks/gpu.py --only gemm-4096,resnet-c3-3x3 --trials 200 --json out.json

Without an NVIDIA GPU, or without what reaches one (CuPy, a CUDA build of PyTorch,
nvcc), it prints one line saying what is missing and exits 0.

Workloads: gemm 4096 in fp32 (``gpu_gemm``) and in fp16 on the tensor cores
(``gpu_gemm_tensorcore``: fp16 inputs, fp32 sums and output, beside PyTorch's fp16
matmul); every convolution of ``shared/bench/workloads.json``
(the ResNet layers, ``gpu_conv2d_nchw``), its depthwise layer
(``gpu_depthwise_conv2d_nchw``) and batched matmul (``gpu_batch_matmul``); batch 1.

For each: tilewise tuned on this GPU's target (``cuda -arch=sm_XY``) until ``--db``
(default a fresh file) holds ``--trials`` of the task's configs (ModelTuner, every
candidate checked against NumPy; a database that holds them already costs no
tuning), then its fallback, its tuned config and PyTorch's call timed ``--rounds``
times, alternating, on the same device arrays, each reading the median of
``--repeat`` CUDA-event timings of ``--number`` launches. PyTorch runs with TF32 off
(``torch.backends.cuda.matmul.allow_tf32``, ``torch.backends.cudnn.allow_tf32``) and
cuDNN's algorithm search on (``cudnn.benchmark``): cuBLAS and cuDNN at their best in
true fp32. Prints one table of GFLOP/s medians with tuned / PyTorch and the tuned
output's largest difference from PyTorch's (relative to its scale), and writes JSON
with the GPU's description. Nothing here is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

WORKLOADS = Path(__file__).resolve().parents[2] / "shared/bench/workloads.json"
GEMM_4096 = {"name": "gemm-4096", "kind": "gemm", "M": 4096, "N": 4096, "K": 4096}
#: While tuning, each repeat runs a config as many times as last this long.
TUNE_REPEAT_MS = 20.0


def missing() -> str:
    """What this machine lacks to run the benchmark, "" where nothing."""
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed (pip install torch, a CUDA build)"
    if not torch.cuda.is_available():
        return f"PyTorch {torch.__version__} sees no CUDA GPU"
    from tilewise.runtime.cuda import cuda_unavailable

    return cuda_unavailable()


def load_workloads() -> list[dict]:
    data = json.loads(WORKLOADS.read_text())
    out = [{**GEMM_4096, "dtype": "float32"},
           {**GEMM_4096, "name": "gemm-4096-fp16", "dtype": "float16"}]
    for kind in ("conv2d", "depthwise_conv2d", "batch_matmul"):
        out += [{**w, "kind": kind, "dtype": "float32"} for w in data.get(kind, [])]
    return out


def tilewise_task(w: dict) -> tuple[str, tuple]:
    """(GPU template, args) of a workload."""
    k, dtype = w["kind"], w["dtype"]
    if k == "gemm" and dtype == "float16":  # on the tensor cores, fp32 sums and out
        return "gpu_gemm_tensorcore", (w["M"], w["N"], w["K"])
    if k == "gemm":
        return "gpu_gemm", (w["M"], w["N"], w["K"], dtype)
    if k == "conv2d":
        return "gpu_conv2d_nchw", (1, w["C"], w["H"], w["W"], w["K"], w["R"], w["S"],
                                   w["stride"], w["pad"], 1, dtype)
    if k == "depthwise_conv2d":
        return "gpu_depthwise_conv2d_nchw", (1, w["C"], w["H"], w["W"], w["R"], w["S"],
                                             w["stride"], w["pad"], 1, dtype)
    if k == "batch_matmul":
        return "gpu_batch_matmul", (w["B"], w["M"], w["N"], w["K"], dtype)
    raise ValueError(f"unknown workload kind {k}")


def torch_call(w: dict, inputs: list):
    """PyTorch's call for workload ``w`` on its device tensors ``inputs``."""
    import torch
    import torch.nn.functional as F

    a, b = inputs
    if w["kind"] == "conv2d":
        return lambda: F.conv2d(a, b, stride=w["stride"], padding=w["pad"])
    if w["kind"] == "depthwise_conv2d":
        return lambda: F.conv2d(a, b, stride=w["stride"], padding=w["pad"], groups=w["C"])
    return lambda: torch.matmul(a, b)


def time_torch(call, number: int, repeat: int) -> float:
    """Seconds per call: the median of ``repeat`` CUDA-event timings of ``number``."""
    import torch

    call()
    readings = []
    for _ in range(repeat):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(number):
            call()
        stop.record()
        stop.synchronize()
        readings.append(start.elapsed_time(stop) / 1e3 / number)
    return statistics.median(readings)


def tune(task, trials: int, db) -> dict:
    """Tune ``task`` until ``db`` holds ``trials`` of its configs; the best as measured."""
    from tilewise import autotune as at

    out: dict = {}
    done = len({r.config.index for r in db.records(task) if not r.result.rejected})
    if done < trials:
        option = at.measure_option(builder=at.LocalBuilder(),
                                   runner=at.LocalRunner(number=1, repeat=3,
                                                         min_repeat_ms=TUNE_REPEAT_MS))
        t0 = time.perf_counter()
        at.ModelTuner(task, seed=0).tune(trials - done, option, database=db, confirm=5)
        out["tune_s"] = time.perf_counter() - t0
        option.builder.close()
    best = db.best(task)
    if best is not None:
        out["tuned_config"] = best.config
    return out


def measure(w: dict, target: str, opts: argparse.Namespace, db) -> dict:
    """One row: tilewise's fallback and tuned configs and PyTorch's call, in rounds."""
    import cupy
    import numpy as np
    import torch

    import tilewise as tw
    from tilewise.autotune import Task

    name, args = tilewise_task(w)
    task = Task(name, args, target)
    row = {"workload": w["name"], "dtype": w["dtype"], "template": name, "args": list(args)}
    got = tune(task, opts.trials, db)
    row["tune_s"] = got.get("tune_s")
    configs = {"fallback": task.config_space.fallback}
    if "tuned_config" in got:
        configs["tuned"] = got["tuned_config"]
    arrays, _ = task.reference()(np.random.default_rng(0))
    device = [cupy.asarray(a) for a in arrays]
    peer = torch_call(w, [torch.from_numpy(a).cuda() for a in arrays[:2]])
    timers = {"pytorch": lambda: time_torch(peer, opts.number, opts.repeat)}
    for label, config in configs.items():
        row[f"{label}_config"] = str(config)
        s, tensors = task.instantiate(config)
        evaluate = tw.build(s, tensors, target, name).time_evaluator(
            number=opts.number, repeat=opts.repeat)
        timers[label] = (lambda ev=evaluate: statistics.median(ev(*device).results))
    for r in range(opts.rounds):
        order = list(timers)
        for label in order[r % len(order):] + order[:r % len(order)]:
            row.setdefault(f"{label}_rounds", []).append(task.flop / timers[label]() / 1e9)
    for label in timers:
        row[label] = statistics.median(row[f"{label}_rounds"])
    if "tuned" in configs:  # the tuned kernel's output beside PyTorch's
        s, tensors = task.instantiate(configs["tuned"])
        tw.build(s, tensors, target, name)(*device)
        want = peer().float().cpu().numpy()
        got_out = cupy.asnumpy(device[-1]).astype(np.float32).reshape(want.shape)
        row["max_rel_diff"] = float(np.max(np.abs(got_out - want)) / np.max(np.abs(want)))
    return row


def describe_gpu(target: str) -> dict:
    import cupy
    import torch

    props = torch.cuda.get_device_properties(0)
    return {"gpu": props.name, "target": target, "memory_gb": props.total_memory / 2**30,
            "sms": props.multi_processor_count, "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "cupy": cupy.__version__, "python": platform.python_version()}


def print_table(rows: list[dict], trials: int, notes: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"GFLOP/s (median), batch 1; tuned = {trials} trials; PyTorch: "
                        "cuBLAS / cuDNN, TF32 off")
    for col in ("workload", "dtype", "fallback", "tuned", "pytorch", "tuned/pytorch",
                "fallback/tuned", "tune s", "max rel diff"):
        table.add_column(col, justify="left" if col in ("workload", "dtype") else "right")

    def fmt(v, spec=".1f"):
        return "-" if v is None else format(v, spec)

    for r in rows:
        tuned, peer, fallback = r.get("tuned"), r.get("pytorch"), r.get("fallback")
        table.add_row(r["workload"], r["dtype"], fmt(fallback), fmt(tuned), fmt(peer),
                      fmt(tuned / peer if tuned and peer else None, ".2f"),
                      fmt(fallback / tuned if tuned and fallback else None, ".2f"),
                      fmt(r.get("tune_s"), ".0f"), fmt(r.get("max_rel_diff"), ".1e"))
    console = Console(width=160)
    console.print(table)
    for note in notes:
        console.print(f"note: {note}", markup=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", help="comma-separated workload names (default: all)")
    ap.add_argument("--trials", type=int, default=64)
    ap.add_argument("--number", type=int, default=10, help="launches per timing")
    ap.add_argument("--repeat", type=int, default=7, help="timings per round (median)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="times each side is measured, alternating (median)")
    ap.add_argument("--db", help="tuning database (default: a fresh file per run)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    opts = ap.parse_args()
    if why := missing():
        print(f"benchmarks/gpu.py: no NVIDIA GPU to measure on here ({why}); nothing run")
        return
    import torch

    import tilewise.ops  # noqa: F401  (registers the templates)
    from tilewise import autotune as at

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    major, minor = torch.cuda.get_device_capability(0)
    target = f"cuda -arch=sm_{major}{minor}"
    workloads = load_workloads()
    known = [w["name"] for w in workloads]
    names = opts.only.split(",") if opts.only else known
    if unknown := sorted(set(names) - set(known)):
        raise SystemExit(f"unknown workload(s) {unknown}; have {known}")
    notes = ["gemm-4096-fp16: tilewise's gpu_gemm_tensorcore writes fp32 sums, PyTorch's "
             "matmul fp16"] if "gemm-4096-fp16" in names else []
    db = at.Database(opts.db or Path(tempfile.mkdtemp(prefix="tw-gpu-")) / "tuning.db")
    rows = []
    for w in (w for w in workloads if w["name"] in names):
        rows.append(measure(w, target, opts, db))
        print(json.dumps(rows[-1], default=str), flush=True)
    print_table(rows, opts.trials, notes)
    if opts.json:
        opts.json.write_text(json.dumps({"machine": describe_gpu(target), "trials": opts.trials,
                                         "rows": rows, "notes": notes}, indent=2, default=str))


if __name__ == "__main__":
    main()
