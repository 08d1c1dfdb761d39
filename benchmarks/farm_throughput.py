"""Trials per second through the device farm against LocalRunner on one task, and the
farm's overhead per trial beyond building and running.

    python benchmarks/farm_throughput.py                       # gemm 64^3, 5 rounds of 8
    python benchmarks/farm_throughput.py --rounds 7 --trials 8 --json out.json

Three sides measure the same task, each round in an order that rotates round by round:

- ``local``: LocalBuilder (compiles here, in ``--jobs`` processes), then LocalRunner (one
  candidate at a time, here) -- what ``tilewise tune`` does without a farm;
- ``farm-1``: SourceBuilder here (C source in ``--jobs`` processes), then DaskRunner on
  a local farm of one device worker, which compiles and measures each candidate;
- ``farm-2``: the same on a local farm of two device workers.

Every side and round measures configs of its own (drawn by a RandomTuner, none twice),
so no compile is served from the kernel cache; a first, untimed round warms each side up.
Timing is ``tilewise tune``'s (one call a run, 3 repeats, each raised to 10 ms). "x local"
is the median of the rounds' ratios to the local side in the same round.

The farm's overhead per trial is the devices' time not spent compiling or measuring while
the runner's call was out, over its trials: ``(devices x run wall - sum of the devices'
compile and run seconds) / trials``. With one device that is exactly the time beyond
building and running (transport, queueing, Dask's scheduling, the event that starts a
candidate's clock); with two it also holds a batch's tail, one device idle while the
other measures the last candidate. The issue's mark: under 20 ms with one device.

Then (``--model-trials``, 0 to skip) a small model (the zoo's BERT layer, 16 tokens,
hidden 64) is tuned on the two-device farm with ``tw.tune_model``, alternating round by
round: with two tasks' rounds in flight at once, and one round at a time (the runner
hidden behind one that does not say how many devices it has). Each run has a fresh
database and its own seed; the fallbacks are the same in both, so after the first run
their kernels come from the devices' cache alike.

The farms are Dask LocalClusters on this machine (``local_farm``), so the devices share
its cores with the tuner and with each other: farm-2 on a 2-core machine says what the
farm's machinery costs, not what two real devices would give.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

SIDES = ("local", "farm-1", "farm-2")


def draw_configs(task, n: int, seed: int = 0):
    """``n`` distinct configs that the space offers, in a random order."""
    from tilewise.autotune import RandomTuner

    tuner = RandomTuner(task, seed=seed)
    configs = []
    while len(configs) < n and tuner.has_next():
        configs += tuner.next_batch(n - len(configs))
    if len(configs) < n:
        raise SystemExit(f"the space of {task} offers only {len(configs)} configs")
    return configs


def measure_side(option, inputs, devices: int) -> dict:
    """Build then run one batch; the walls, and what the device side reported."""
    t0 = time.perf_counter()
    builds = option.builder.build(inputs)
    t1 = time.perf_counter()
    results = option.runner.run(inputs, builds)
    t2 = time.perf_counter()
    bad = [r.error_msg[:200] for r in results if not r.ok]
    if bad:
        raise SystemExit(f"a candidate failed: {bad[0]}")
    n = len(inputs)
    # build_s of a farm's result = source generation here + compilation on the device
    device_compile = sum(r.build_s - b.build_s for r, b in zip(results, builds, strict=True))
    device_run = sum(r.run_s for r in results)
    run_wall = t2 - t1
    return {
        "trials": n,
        "wall_s": t2 - t0,
        "build_wall_s": t1 - t0,
        "run_wall_s": run_wall,
        "device_compile_s": device_compile,
        "device_run_s": device_run,
        "trials_per_s": n / (t2 - t0),
        # devices' idle time while the run call was out, per trial (for the local side:
        # the runner's own time beyond its children's runs)
        "overhead_ms": 1e3 * (devices * run_wall - device_compile - device_run) / n,
        "devices": sorted({r.device for r in results if r.device}),
    }


class OneAtATime:
    """A runner that hides how many devices its farm has: the model tuner then measures
    one round at a time."""

    def __init__(self, runner) -> None:
        self.runner = runner

    def run(self, inputs, builds):
        return self.runner.run(inputs, builds)


def tune_model_side(option, trials: int, seed: int, where: Path) -> dict:
    """Tune the small BERT layer on ``option``; its wall seconds and what it reports."""
    import tilewise as tw
    from tilewise import models

    model = models.build("bert_layer", seq=16, hidden=64, heads=4, ffn=128)
    t0 = time.perf_counter()
    report = tw.tune_model(model, where / f"model-{seed}.db", "c -cores=1", trials=trials,
                           tuner="random", seed=seed, generated=False, confirm=False,
                           transfer=False, measure=option)
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "trials": report.trials, "rounds": report.rounds,
            "in_flight": report.in_flight, "trials_per_s": report.trials / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--shape", type=int, nargs=3, default=[64, 64, 64], metavar=("M", "N", "K"))
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    ap.add_argument("--trials", type=int, default=8, help="trials per side and round")
    ap.add_argument("--jobs", type=int, default=2, help="builder processes (default 2)")
    ap.add_argument("--model-trials", type=int, default=32,
                    help="trials of each whole-model run on farm-2 (default 32; 0 skips)")
    ap.add_argument("--model-rounds", type=int, default=5, help="timed model rounds")
    ap.add_argument("--json", type=Path, help="write the rounds and medians here")
    opts = ap.parse_args()

    # Every process of the run (the farms' workers too) compiles into a fresh cache.
    os.environ["TILEWISE_CACHE_DIR"] = tempfile.mkdtemp(prefix="tw-farm-bench-")
    warnings.filterwarnings("ignore", message="Port 8787 is already in use")
    import distributed
    import tilewise.ops  # noqa: F401 - registers gemm
    from tilewise import autotune as at
    from tilewise.distributed import DaskRunner, SourceBuilder, local_farm
    from tilewise.target import Target

    target = "c -cores=1"  # one thread a kernel: two devices share two cores
    task = at.Task("gemm", (*opts.shape, "float32"), target)
    timing = dict(number=1, repeat=3, min_repeat_ms=10.0, timeout=10.0)
    per_round = opts.trials
    configs = draw_configs(task, (opts.rounds + 1) * len(SIDES) * per_round)
    load_before = os.getloadavg()

    with local_farm(1, device="bench1") as farm1, local_farm(2, device="bench2") as farm2, \
            distributed.Client(farm1, set_as_default=False) as c1, \
            distributed.Client(farm2, set_as_default=False) as c2:
        options = {
            "local": at.MeasureOption(at.LocalBuilder(opts.jobs),
                                      at.LocalRunner(**timing)),
            "farm-1": at.MeasureOption(SourceBuilder(opts.jobs),
                                       DaskRunner(c1, device="bench1", **timing)),
            "farm-2": at.MeasureOption(SourceBuilder(opts.jobs),
                                       DaskRunner(c2, device="bench2", **timing)),
        }
        devices = {"local": 1, "farm-1": 1, "farm-2": 2}
        rows: list[dict] = []
        draw = iter(configs)
        for r in range(opts.rounds + 1):  # round 0 warms every side up, untimed
            k = r % len(SIDES)
            for side in SIDES[k:] + SIDES[:k]:
                inputs = [at.MeasureInput(task, next(draw)) for _ in range(per_round)]
                row = measure_side(options[side], inputs, devices[side])
                row.update(side=side, round=r)
                if r:
                    rows.append(row)
                print(f"round {r} {side:7s} {row['trials_per_s']:6.2f} trials/s, overhead "
                      f"{row['overhead_ms']:7.1f} ms/trial", flush=True)
        model_rows: list[dict] = []
        if opts.model_trials:
            where = Path(tempfile.mkdtemp(prefix="tw-farm-model-"))
            farm2 = options["farm-2"]
            ways = {"in flight": farm2,
                    "one at a time": at.MeasureOption(farm2.builder,
                                                      OneAtATime(farm2.runner),
                                                      farm2.batch_size)}
            names = list(ways)
            for r in range(opts.model_rounds + 1):  # round 0 warms up, untimed
                for i, name in enumerate(names[r % 2:] + names[:r % 2]):
                    row = tune_model_side(ways[name], opts.model_trials,
                                          seed=10 * r + i, where=where)
                    row.update(side=name, round=r)
                    if r:
                        model_rows.append(row)
                    print(f"model round {r} {name:13s} {row['trials_per_s']:5.2f} trials/s "
                          f"({row['trials']} trials, {row['wall_s']:.1f} s, "
                          f"{row['in_flight']} in flight at most)", flush=True)
        for option in options.values():
            option.builder.close()
    load_after = os.getloadavg()

    medians = {}
    for side in SIDES:
        mine = [row for row in rows if row["side"] == side]
        medians[side] = {key: statistics.median(row[key] for row in mine) for key in (
            "trials_per_s", "wall_s", "build_wall_s", "run_wall_s", "device_compile_s",
            "device_run_s", "overhead_ms")}
        # paired within each round: the machine's swings between rounds cancel
        medians[side]["x_local"] = statistics.median(
            row["trials_per_s"] / local["trials_per_s"] for row in mine
            for local in rows if local["side"] == "local" and local["round"] == row["round"])

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{task}: {per_round} trials per side and round, medians of "
                  f"{opts.rounds} rounds (sides alternated)")
    for col in ("side", "trials/s", "x local", "build ms/trial", "compile ms/trial",
                "run ms/trial", "overhead ms/trial"):
        table.add_column(col, justify="left" if col == "side" else "right")
    for side in SIDES:
        m = medians[side]
        # the device compiles for the farm; the local builder did it in build ms
        compile_ms = 1e3 * m["device_compile_s"] / per_round
        table.add_row(side, f"{m['trials_per_s']:.2f}", f"{m['x_local']:.2f}",
                      f"{1e3 * m['build_wall_s'] / per_round:.1f}",
                      f"{compile_ms:.1f}" if side != "local" else "(in build)",
                      f"{1e3 * m['device_run_s'] / per_round:.1f}",
                      f"{m['overhead_ms']:.1f}")
    console = Console(width=120)
    console.print(table)
    model_medians = {}
    if model_rows:
        table = Table(title=f"tw.tune_model, BERT layer (16 tokens, hidden 64), "
                      f"{opts.model_trials} trials on farm-2, medians of "
                      f"{opts.model_rounds} rounds (sides alternated)")
        for col in ("rounds", "trials/s", "x one at a time", "wall s", "most in flight"):
            table.add_column(col, justify="left" if col == "rounds" else "right")
        for name in ("in flight", "one at a time"):
            mine = [row for row in model_rows if row["side"] == name]
            model_medians[name] = {key: statistics.median(row[key] for row in mine)
                                   for key in ("trials_per_s", "wall_s")}
            model_medians[name]["x_one_at_a_time"] = statistics.median(
                row["trials_per_s"] / other["trials_per_s"] for row in mine
                for other in model_rows
                if other["side"] == "one at a time" and other["round"] == row["round"])
            table.add_row(name, f"{model_medians[name]['trials_per_s']:.2f}",
                          f"{model_medians[name]['x_one_at_a_time']:.2f}",
                          f"{model_medians[name]['wall_s']:.1f}",
                          str(max(row["in_flight"] for row in mine)))
        Console(width=120).print(table)
    verdict = "under" if medians["farm-1"]["overhead_ms"] < 20 else "NOT under"
    console.print(f"farm overhead per trial with one device: "
                  f"{medians['farm-1']['overhead_ms']:.1f} ms ({verdict} the 20 ms mark); "
                  f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
                  f"({os.cpu_count()} cores)")
    if opts.json:
        opts.json.write_text(json.dumps({
            "machine": Target.from_str("c").describe(),
            "task": task.key.to_json(),
            "options": {**vars(opts), "json": str(opts.json), **timing},
            "load_average": {"before": load_before, "after": load_after},
            "medians": medians,
            "rounds": rows,
            "model_medians": model_medians,
            "model_rounds": model_rows,
        }, indent=2))


if __name__ == "__main__":
    main()
