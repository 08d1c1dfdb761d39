"""Whole-model tuning: the model's latency against tuning wall time, per task scheduler.

    python benchmarks/tune_model.py --only mobilenet_v2 --threads 1 --budget 300
    python benchmarks/tune_model.py --only resnet50 --threads 2 --budget 900 \\
        --schedulers gradient,round-robin --transfer-db other-models.db --json out.json

For each zoo model (``--only``) and scheduler (``--schedulers``): ``tw.tune_model`` into a
fresh database (``--work-dir``; with ``--transfer-db``, a copy of that database, whose
records the cost model is pre-trained on and which the model's own tasks may already
have), ``--budget`` seconds of wall time, the estimate (sum over the kernels of
weight x best measured) read after every round. Then each tuned database and no
database (untuned) are compiled and timed beside ONNX Runtime, round by round in one
process (``--rounds`` rounds, each side the median of 7 runs, 0.3 s apart): the measured
latency, not the estimate, is the figure to read. Printed per scheduler: trials,
tuning seconds, the estimate at a quarter, half and the whole of the budget, the
compiled model's median ms and ORT/tw (above 1: tilewise faster). Nothing here is
asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

PAUSE_S = 0.3


def tune(name: str, threads: int, scheduler: str, budget: float, db: Path, tuner: str,
         seed: int) -> dict:
    import tilewise as tw

    curve: list[tuple[float, float, int]] = []

    def progress(report, _left) -> None:
        curve.append((report.seconds, report.estimate_s, report.trials))
        print(f"  {scheduler}: {report.seconds:6.0f} s, {report.trials:4d} trials, "
              f"estimate {report.estimate_s * 1e3:8.3f} ms", file=sys.stderr, flush=True)

    report = tw.tune_model(name, str(db), f"c -cores={threads}", budget_s=budget,
                           tuner=tuner, scheduler=scheduler, seed=seed, progress=progress)
    return {"scheduler": scheduler, "db": str(db), "report": report.to_json(),
            "curve": curve}


def estimate_at(curve: list, seconds: float) -> float | None:
    """The estimate after the last round that ended by ``seconds``."""
    before = [e for s, e, _ in curve if s <= seconds]
    return before[-1] * 1e3 if before else None


def time_sides(name: str, threads: int, dbs: dict[str, str | None], rounds: int) -> dict:
    import tilewise as tw
    from tilewise import models
    from tilewise.model_bench import ort_session, relative_error, time_calls

    proto = models.build(name)
    compiled = {label: tw.compile_model(proto, db=db, target=f"c -cores={threads}")
                for label, db in dbs.items()}
    first = next(iter(compiled.values()))
    feeds = models.example_inputs(proto)
    session = ort_session(proto.SerializeToString(), threads)
    want = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds),
                    strict=True))
    errors = {label: relative_error(c.run(feeds), want) for label, c in compiled.items()}
    samples: dict[str, list[float]] = {label: [] for label in [*compiled, "onnxruntime"]}
    for _ in range(rounds):
        for label, c in compiled.items():
            samples[label].append(c.time(feeds, repeat=7).median)
            time.sleep(PAUSE_S)
        samples["onnxruntime"].append(time_calls(lambda: session.run(None, feeds), 7))
        time.sleep(PAUSE_S)
    ort = samples["onnxruntime"]
    return {label: {"ms": statistics.median(v) * 1e3,
                    "ort_over": statistics.median(o / t for o, t in zip(ort, v, strict=True)),
                    "error": errors.get(label), "rounds_ms": [t * 1e3 for t in v]}
            for label, v in samples.items()} | {"_kernels": len(first.manifest["kernels"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="mobilenet_v2", help="zoo models, comma-separated")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--budget", type=float, default=300, help="seconds of tuning each")
    ap.add_argument("--schedulers", default="gradient,round-robin")
    ap.add_argument("--tuner", default="model")
    ap.add_argument("--transfer-db", help="start each database as a copy of this one")
    ap.add_argument("--work-dir", default="tune_model_work")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write every reading here")
    opts = ap.parse_args()
    work = Path(opts.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    out = []
    for name in opts.only.split(","):
        runs = []
        for scheduler in opts.schedulers.split(","):
            db = work / f"{name}-{opts.threads}t-{scheduler}.db"
            db.unlink(missing_ok=True)
            if opts.transfer_db:
                shutil.copy(opts.transfer_db, db)
            runs.append(tune(name, opts.threads, scheduler, opts.budget, db, opts.tuner,
                             opts.seed))
        dbs: dict[str, str | None] = {"untuned": None}
        dbs.update({r["scheduler"]: r["db"] for r in runs})
        timed = time_sides(name, opts.threads, dbs, opts.rounds)
        ort = timed["onnxruntime"]["ms"]
        print(f"\n{name}, {opts.threads} thread(s), budget {opts.budget:.0f} s, tuner "
              f"{opts.tuner}; ONNX Runtime {ort:.2f} ms (median of {opts.rounds} rounds)")
        print(f"{'side':>12} {'trials':>6} {'tune s':>7} {'est@1/4':>8} {'est@1/2':>8} "
              f"{'est@end':>8} {'ms':>8} {'ORT/tw':>7} {'error':>8}")
        u = timed["untuned"]
        print(f"{'untuned':>12} {'-':>6} {'-':>7} {'':>8} {'':>8} {'':>8} {u['ms']:8.2f} "
              f"{u['ort_over']:7.3f} {u['error']:8.1e}")
        for r in runs:
            rep, t = r["report"], timed[r["scheduler"]]
            marks = [estimate_at(r["curve"], opts.budget * f) for f in (0.25, 0.5, 1.0)]
            cells = " ".join(f"{m:8.3f}" if m is not None else f"{'-':>8}" for m in marks)
            print(f"{r['scheduler']:>12} {rep['trials']:6d} {rep['seconds']:7.0f} {cells} "
                  f"{t['ms']:8.2f} {t['ort_over']:7.3f} {t['error']:8.1e}")
        print(f"(est: the kernels' estimate in ms; untuned estimate "
              f"{runs[0]['report']['untuned_ms']:.3f} ms)")
        out.append({"model": name, "threads": opts.threads, "budget_s": opts.budget,
                    "tuner": opts.tuner, "runs": runs, "timed": timed})
    if opts.json:
        Path(opts.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
