"""Whole-model tuning: the model's latency against tuning wall time, per task scheduler.

    python benchmarks/tune_model.py --only mobilenet_v2 --threads 1 --budget 300
    python benchmarks/tune_model.py --only resnet18 --threads 1 --budget 150 \\
        --ignore-templates --seeds 3 \\
        --schedulers gradient,round-robin,gradient+transfer --transfer-db others.db

For each zoo model (``--only``), seed (``--seeds``) and side (``--schedulers``: a task
scheduler, or one with ``+transfer``): ``tw.tune_model`` into a fresh database
(``--work-dir``; a ``+transfer`` side's a copy of ``--transfer-db``, whose records the
cost model is pre-trained on), ``--budget`` seconds of wall time, the estimate (sum over
the kernels of weight x best measured) read after every round. With
``--ignore-templates``, every kernel is tuned and compiled in its generated space. Then
each tuned database and no database (untuned) are compiled and timed beside ONNX
Runtime, round by round in one process (``--rounds`` rounds, each side the median of 7
runs, 0.3 s apart): the measured latency, not the estimate, is the figure to read.
Printed per run: trials, tuning seconds, the estimate at a quarter, half and the whole
of the budget, the compiled model's median ms and ORT/tw (above 1: tilewise faster).
Where round-robin is a side: how soon each other side's estimate read round-robin's
final one, per seed and the median. Nothing here is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import time
from pathlib import Path

PAUSE_S = 0.3


def tune(name: str, threads: int, side: str, budget: float, db: Path, tuner: str,
         seed: int, templates: bool) -> dict:
    import tilewise as tw

    scheduler = side.removesuffix("+transfer")

    curve: list[tuple[float, float, int]] = []

    def progress(report, _left) -> None:
        curve.append((report.seconds, report.estimate_s, report.trials))
        print(f"  {scheduler}: {report.seconds:6.0f} s, {report.trials:4d} trials, "
              f"estimate {report.estimate_s * 1e3:8.3f} ms", file=sys.stderr, flush=True)

    report = tw.tune_model(name, str(db), f"c -cores={threads}", budget_s=budget,
                           tuner=tuner, scheduler=scheduler, seed=seed, progress=progress,
                           templates=templates)
    return {"side": side, "scheduler": scheduler, "seed": seed, "db": str(db),
            "report": report.to_json(), "curve": curve}


def reached(curve: list, target_ms: float) -> float | None:
    """Seconds until the estimate first read ``target_ms`` or less (None: never)."""
    return next((s for s, e, _ in curve if e * 1e3 <= target_ms), None)


def estimate_at(curve: list, seconds: float) -> float | None:
    """The estimate after the last round that ended by ``seconds``."""
    before = [e for s, e, _ in curve if s <= seconds]
    return before[-1] * 1e3 if before else None


def time_sides(name: str, threads: int, dbs: dict[str, str | None], rounds: int,
               templates: bool = True) -> dict:
    import tilewise as tw
    from tilewise import models
    from tilewise.model_bench import ort_session, relative_error, time_calls

    proto = models.build(name)
    compiled = {label: tw.compile_model(proto, db=db, target=f"c -cores={threads}",
                                        templates=templates)
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
    ap.add_argument("--schedulers", default="gradient,round-robin",
                    help="sides, comma-separated: a scheduler, or one with '+transfer' "
                         "(its database a copy of --transfer-db; the others start empty)")
    ap.add_argument("--tuner", default="model")
    ap.add_argument("--transfer-db", help="what a '+transfer' side's database starts as "
                    "(without any '+transfer' side: every side's)")
    ap.add_argument("--ignore-templates", action="store_true",
                    help="tune and compile every kernel in its generated space")
    ap.add_argument("--work-dir", default="tune_model_work")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=1, help="tuning runs per side")
    ap.add_argument("--json", help="write every reading here")
    opts = ap.parse_args()
    sides = opts.schedulers.split(",")
    any_transfer = any(side.endswith("+transfer") for side in sides)
    if any_transfer and not opts.transfer_db:
        ap.error("a '+transfer' side needs --transfer-db")
    templates = not opts.ignore_templates
    work = Path(opts.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    out = []
    for name in opts.only.split(","):
        runs = []
        for seed in range(opts.seed, opts.seed + opts.seeds):
            for side in sides:
                db = work / f"{name}-{opts.threads}t-{side}-s{seed}.db"
                for stale in (db, *(db.with_name(db.name + s) for s in ("-wal", "-shm"))):
                    stale.unlink(missing_ok=True)  # a stale log would replay into it
                if opts.transfer_db and (side.endswith("+transfer") or not any_transfer):
                    shutil.copy(opts.transfer_db, db)
                runs.append(tune(name, opts.threads, side, opts.budget, db, opts.tuner,
                                 seed, templates))
        dbs: dict[str, str | None] = {"untuned": None}
        dbs.update({label(r): r["db"] for r in runs})
        timed = time_sides(name, opts.threads, dbs, opts.rounds, templates)
        ort = timed["onnxruntime"]["ms"]
        space = "generated spaces only" if opts.ignore_templates else "templates"
        print(f"\n{name}, {opts.threads} thread(s), budget {opts.budget:.0f} s, tuner "
              f"{opts.tuner}, {space}; ONNX Runtime {ort:.2f} ms (median of {opts.rounds} "
              f"rounds)")
        print(f"{'side':>22} {'trials':>6} {'tune s':>7} {'est@1/4':>8} {'est@1/2':>8} "
              f"{'est@end':>8} {'ms':>8} {'ORT/tw':>7} {'error':>8}")
        u = timed["untuned"]
        print(f"{'untuned':>22} {'-':>6} {'-':>7} {'':>8} {'':>8} {'':>8} {u['ms']:8.2f} "
              f"{u['ort_over']:7.3f} {u['error']:8.1e}")
        for r in runs:
            rep, t = r["report"], timed[label(r)]
            marks = [estimate_at(r["curve"], opts.budget * f) for f in (0.25, 0.5, 1.0)]
            cells = " ".join(f"{m:8.3f}" if m is not None else f"{'-':>8}" for m in marks)
            print(f"{label(r):>22} {rep['trials']:6d} {rep['seconds']:7.0f} {cells} "
                  f"{t['ms']:8.2f} {t['ort_over']:7.3f} {t['error']:8.1e}")
        print(f"(est: the kernels' estimate in ms; untuned estimate "
              f"{runs[0]['report']['untuned_ms']:.3f} ms)")
        if "round-robin" in sides:
            print_reach(runs, sides)
        out.append({"model": name, "threads": opts.threads, "budget_s": opts.budget,
                    "tuner": opts.tuner, "templates": templates, "runs": runs,
                    "timed": timed})
    if opts.json:
        Path(opts.json).write_text(json.dumps(out, indent=1))


def label(run: dict) -> str:
    return f"{run['side']} (seed {run['seed']})"


def print_reach(runs: list[dict], sides: list[str]) -> None:
    """Per side and seed: the seconds until its estimate first read round-robin's final
    estimate of the same seed, as a share of round-robin's seconds; then the median
    over seeds ('never' counts as above any share)."""
    rr = {r["seed"]: r for r in runs if r["side"] == "round-robin"}
    print("time to round-robin's final estimate, as a share of round-robin's time:")
    for side in sides:
        if side == "round-robin":
            continue
        shares = []
        for r in runs:
            if r["side"] != side or r["seed"] not in rr:
                continue
            base = rr[r["seed"]]
            final = base["curve"][-1][1] * 1e3 if base["curve"] else None
            at = reached(r["curve"], final) if final is not None else None
            shares.append(math.inf if at is None else at / base["report"]["seconds"])
        cells = ", ".join("never" if math.isinf(x) else f"{x:.2f}" for x in shares)
        median = statistics.median(shares) if shares else math.inf
        shown = "never" if math.isinf(median) else f"{median:.2f}"
        print(f"  {side}: per seed {cells}; median {shown}")


if __name__ == "__main__":
    main()
