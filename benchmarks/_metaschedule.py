"""TVM MetaSchedule as a peer in compare.py: each workload's plain TE compute, tuned,
built, checked against tilewise's reference and timed.

Run only in compare.py's "metaschedule" child, with TVM_NUM_THREADS set to the thread
count (TVM otherwise takes half the cores on a 2-core VM and tunes on one).
"""

from __future__ import annotations

import functools
import importlib
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

INSTALL = "pip install -e '.[metaschedule]'"


@dataclass(frozen=True)
class MeasureOptions:
    trials: int  # MetaSchedule's max_trials_global
    threads: int
    work_dir: Path  # its database and logs stay here
    number: int  # runs per timed repeat
    repeat: int
    tune: bool = True  # False: only build and time the best schedule already in work_dir


def missing() -> str | None:
    """None when TVM with MetaSchedule imports; otherwise a note saying how to install it."""
    try:
        from tvm.s_tir import meta_schedule  # noqa: F401
    except ImportError:
        return f"TVM MetaSchedule: not installed ({INSTALL})"
    return None


def te_compute(w: dict) -> list:
    """``[*inputs, output]`` of a workload in TVM's TE: the same shapes and semantics as
    tilewise's templates (conv NCHW/OIHW with padding as its own stage, depthwise
    weights (C, 1, R, S)), and no layout tricks: MetaSchedule chooses those."""
    from tvm import te

    k = w["kind"]
    if k in ("gemm", "batch_matmul"):
        b = (w["B"],) if k == "batch_matmul" else ()
        A = te.placeholder((*b, w["M"], w["K"]), "float32", name="A")
        B = te.placeholder((*b, w["K"], w["N"]), "float32", name="B")
        r = te.reduce_axis((0, w["K"]), name="k")
        if b:
            C = te.compute((*b, w["M"], w["N"]),
                           lambda n, i, j: te.sum(A[n, i, r] * B[n, r, j], axis=r), name="C")
        else:
            C = te.compute((w["M"], w["N"]),
                           lambda i, j: te.sum(A[i, r] * B[r, j], axis=r), name="C")
        return [A, B, C]
    C, H, W, R, S, st, p = (w[x] for x in ("C", "H", "W", "R", "S", "stride", "pad"))
    OH, OW = (H + 2 * p - R) // st + 1, (W + 2 * p - S) // st + 1
    data = te.placeholder((1, C, H, W), "float32", name="data")
    padded = te.compute(
        (1, C, H + 2 * p, W + 2 * p),
        lambda n, c, h, x: te.if_then_else(
            te.all(h >= p, h < H + p, x >= p, x < W + p), data[n, c, h - p, x - p],
            te.const(0.0, "float32")),
        name="padded")
    ry, rx = te.reduce_axis((0, R), name="ry"), te.reduce_axis((0, S), name="rx")
    if k == "depthwise_conv2d":
        kernel = te.placeholder((C, 1, R, S), "float32", name="kernel")
        out = te.compute(
            (1, C, OH, OW),
            lambda n, c, y, x: te.sum(padded[n, c, y * st + ry, x * st + rx]
                                      * kernel[c, 0, ry, rx], axis=[ry, rx]),
            name="out")
        return [data, kernel, out]
    kernel = te.placeholder((w["K"], C, R, S), "float32", name="kernel")
    rc = te.reduce_axis((0, C), name="rc")
    out = te.compute(
        (1, w["K"], OH, OW),
        lambda n, o, y, x: te.sum(padded[n, rc, y * st + ry, x * st + rx]
                                  * kernel[o, rc, ry, rx], axis=[rc, ry, rx]),
        name="out")
    return [data, kernel, out]


def target(threads: int):
    import tvm
    from tvm.target import codegen

    return tvm.target.Target({"kind": "llvm", "mcpu": codegen.llvm_get_system_cpu(),
                              "num-cores": threads})


def _builder():
    """MetaSchedule's LocalBuilder, its workers warmed up. A fresh worker (the pool is
    restarted for every batch) imports ``tvm.s_tir.tensor_intrin`` on its first build,
    ~28 s on a 2-core Zen 4 VM, inside the 30 s build timeout: most candidates were
    killed as timeouts. Imported by the initializer, the import is outside the timeout
    (still in tune_s)."""
    from tvm.s_tir import meta_schedule as ms

    warm = functools.partial(importlib.import_module, "tvm.s_tir.tensor_intrin")
    return ms.builder.LocalBuilder(initializer=warm)


def measure(w: dict, arrays: list, expected: list, flop: float, opts: MeasureOptions) -> dict:
    """Tune ``w`` until the database in ``opts.work_dir`` holds ``opts.trials`` records
    (one that already holds them costs no tuning), build the best schedule, check it on
    ``arrays`` (inputs, then the output buffer) against ``expected`` and time it:
    ``metaschedule`` in GFLOP/s (median of the repeats, TVM's native timer, as
    tilewise's runner), ``metaschedule_rounds`` (that one reading) and, when it tuned,
    ``metaschedule_tune_s`` (the wall time of ``tune_tir``). A failure at any stage is
    recorded, never raised.

        row = measure(w, arrays, expected, 2.7e8, MeasureOptions(256, 2, Path("ms"), 10, 7))
    """
    import tvm
    from tvm.s_tir import meta_schedule as ms

    opts.work_dir.mkdir(parents=True, exist_ok=True)
    row: dict = {"metaschedule_work_dir": str(opts.work_dir), "tvm_version": tvm.__version__}
    stage = "tune"
    try:
        db = ms.database.JSONDatabase(work_dir=str(opts.work_dir))
        done = len(db.get_all_tuning_records())
        if opts.tune and done < opts.trials:
            t0 = time.perf_counter()
            db = ms.tune_tir(_module(w), target(opts.threads), str(opts.work_dir),
                             max_trials_global=opts.trials - done,
                             num_trials_per_iter=min(64, opts.trials - done), seed=0,
                             builder=_builder())
            row["metaschedule_tune_s"] = time.perf_counter() - t0
        row["metaschedule_trials"] = len(db.get_all_tuning_records())
        stage = "build and check"
        timer = best_kernel(w, opts.threads, opts.work_dir, arrays, expected,
                            opts.number, opts.repeat)
        row["metaschedule_correct"] = True
        stage = "run"
        row["metaschedule_rounds"] = [flop / timer() / 1e9]
        row["metaschedule"] = row["metaschedule_rounds"][0]
    except Exception as e:  # any failure is this peer's result, never an abort
        row["metaschedule_correct"] = False
        why = " ".join(str(e).split())[:200]  # one line: it is printed as a note
        row["metaschedule_error"] = f"{stage}: {type(e).__name__}: {why}"
    return row


def _module(w: dict):
    import tvm
    from tvm import te

    return tvm.IRModule({"main": te.create_prim_func(te_compute(w))})


def best_kernel(w: dict, threads: int, work_dir: Path, arrays: list, expected: list,
                number: int, repeat: int):
    """The best schedule of ``w`` in the tuning database of ``work_dir``, built, run once
    on ``arrays`` (inputs, then the output buffer) and checked against ``expected``: a
    function that times it on them by TVM's native timer (``number`` runs a repeat),
    seconds a run, the median of ``repeat``. Raises where there is no schedule, or a
    wrong one."""
    import numpy as np
    import tvm
    from tvm.s_tir import meta_schedule as ms

    tgt = target(threads)
    db = ms.database.JSONDatabase(work_dir=str(work_dir))
    sch = ms.tir_integration.compile_tir(db, _module(w), tgt)
    if sch is None:
        raise RuntimeError(f"no valid schedule in the tuning database of {work_dir}")
    lib = tvm.compile(sch.mod, target=tgt).jit()
    dev = tvm.cpu()
    bufs = [tvm.runtime.tensor(x, dev) for x in arrays]
    lib["main"](*bufs)
    np.testing.assert_allclose(bufs[-1].numpy(), expected[0], rtol=1e-3, atol=1e-3)
    timer = lib.time_evaluator("main", dev, number=number, repeat=repeat)
    return lambda: statistics.median(timer(*bufs).results)
