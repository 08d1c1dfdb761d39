"""GEMM: a naive schedule, a hand-written schedule and NumPy, side by side.

    python benchmarks/gemm.py                 # gemm-1024, 1 and 2 threads
    python benchmarks/gemm.py --workload gemm-512 --json out.json

Each thread count runs in its own child process so that NumPy's BLAS thread pool
is sized before NumPy is imported. Prints GFLOP/s (median of repeats), the ratio
to NumPy measured in the same process, and the median compile time per kernel.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = HERE.parent.parent / "shared" / "bench" / "workloads.json"
DEFAULT = {"name": "gemm-1024", "M": 1024, "N": 1024, "K": 1024}


def naive(M: int, N: int, K: int):
    from tilewise import te

    A = te.placeholder((M, K), name="A")
    B = te.placeholder((K, N), name="B")
    k = te.reduce_axis((0, K), name="k")
    C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
    return te.create_schedule(C.op), [A, B, C]


def hand(M: int, N: int, K: int, mr: int = 8, nr: int = 32):
    """B packed into nr-wide column panels; an mr x nr register tile accumulated in a
    local buffer (unrolled rows, vectorised columns), one tile per parallel task.
    187 GFLOP/s on gemm-1024, 2 threads, Zen 4 (AVX-512)."""
    from tilewise import te

    A = te.placeholder((M, K), name="A")
    B = te.placeholder((K, N), name="B")
    Bp = te.compute(
        (-(-N // nr), K, nr),
        lambda jo, k, ji: te.if_then_else(jo * nr + ji < N, B[k, jo * nr + ji], 0.0),
        name="Bp",
    )
    k = te.reduce_axis((0, K), name="k")
    C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * Bp[j // nr, k, j % nr], axis=k), name="C")

    s = te.create_schedule(C.op)
    CC = s.cache_write(C, "local")
    i, j = s[C].op.axis
    io, jo, ii, ji = s[C].tile(i, j, mr, nr)
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
    return s, [A, B, C]


def child(workload: dict, threads: int, number: int, repeat: int) -> dict:
    import numpy as np

    import tilewise as tw

    M, N, K = workload["M"], workload["N"], workload["K"]
    flop = 2.0 * M * N * K
    rng = np.random.default_rng(0)
    a = rng.random((M, K), dtype=np.float32)
    b = rng.random((K, N), dtype=np.float32)
    expect = a @ b
    rows, compile_ms = [], []
    target = f"c -cores={threads}"
    for label, make in (("tilewise naive", naive), ("tilewise hand", hand)):
        s, args = make(M, N, K)
        t0 = time.perf_counter()
        mod = tw.build(s, args, target=target, name="gemm")
        compile_ms.append((time.perf_counter() - t0) * 1e3)
        c = np.zeros((M, N), np.float32)
        mod(a, b, c)
        np.testing.assert_allclose(c, expect, rtol=1e-3, atol=1e-3 * K)
        n = 1 if label.endswith("naive") else number
        sec = mod.time_evaluator(number=n, repeat=repeat)(a, b, c).median
        rows.append({"impl": label, "gflops": flop / sec / 1e9, "compile_ms": compile_ms[-1]})
    times = []
    c = np.empty((M, N), np.float32)
    np.matmul(a, b, out=c)
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            np.matmul(a, b, out=c)
        times.append((time.perf_counter() - t0) / number)
    rows.append({"impl": "numpy (OpenBLAS)", "gflops": flop / statistics.median(times) / 1e9})
    return {"threads": threads, "rows": rows, "compile_ms_median": statistics.median(compile_ms)}


def machine() -> dict:
    from tilewise.target import Target

    return Target.from_str("c").describe() | {"python": platform.python_version()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--workload", default="gemm-1024")
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--number", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    opts = ap.parse_args()
    workloads = json.loads(WORKLOADS.read_text())["gemm"] if WORKLOADS.exists() else [DEFAULT]
    wl = next((w for w in workloads if w["name"] == opts.workload), None)
    if wl is None:
        sys.exit(f"unknown workload {opts.workload}; have {[w['name'] for w in workloads]}")
    if opts.child is not None:
        print(json.dumps(child(wl, opts.child, opts.number, opts.repeat)))
        return
    results = []
    for t in opts.threads:
        env = dict(
            os.environ,
            OPENBLAS_NUM_THREADS=str(t),
            OMP_NUM_THREADS=str(t),
            TILEWISE_CACHE_DIR=tempfile.mkdtemp(prefix="tw-bench-"),
        )
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--workload",
                wl["name"],
                "--child",
                str(t),
                "--number",
                str(opts.number),
                "--repeat",
                str(opts.repeat),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{wl['name']} (M={wl['M']} N={wl['N']} K={wl['K']}, fp32), GFLOP/s, median"
    )
    table.add_column("implementation")
    for r in results:
        table.add_column(f"{r['threads']} thr", justify="right")
        table.add_column("vs numpy", justify="right")
    for idx, row in enumerate(results[0]["rows"]):
        cells = [row["impl"]]
        for r in results:
            g = r["rows"][idx]["gflops"]
            ref = r["rows"][-1]["gflops"]
            cells += [f"{g:.1f}", f"{g / ref:.2f}x"]
        table.add_row(*cells)
    console = Console()
    console.print(table)
    for r in results:
        console.print(
            f"compile time per kernel, {r['threads']} thr: median {r['compile_ms_median']:.0f} ms"
        )
    if opts.json:
        opts.json.write_text(
            json.dumps({"machine": machine(), "workload": wl, "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()
