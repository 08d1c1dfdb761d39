"""How fast does each tuner find a fast config? RandomTuner against ModelTuner on the
gemm template, best GFLOP/s after 16/32/64/128 trials, median over seeds, in one run.

    python benchmarks/tuning_efficiency.py                  # gemm-512, 3 seeds, 128 trials
    python benchmarks/tuning_efficiency.py --seeds 5 --trials 128 --json out.json
    python benchmarks/tuning_efficiency.py --tuners random model-ir model-transfer

``model-transfer`` first tunes two other gemm shapes into a source database and
starts the ModelTuner from a cost model trained on them.

Also prints measurement throughput (trials per second) and where the time goes:
compiling (in a process pool), running (one kernel at a time) and the model (fitting,
feature extraction, simulated annealing).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

CHECKPOINTS = (16, 32, 64, 128)


class _Timed:
    """Delegates to a builder or runner and adds up the seconds its calls take."""

    def __init__(self, inner, method: str) -> None:
        self.inner, self.method, self.seconds = inner, method, 0.0

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name != self.method:
            return attr

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        return timed


def source_database(db_dir: Path, shapes: list[tuple[int, int, int]], trials: int):
    """Tuning records of other gemm shapes, for the transfer tuner to learn from."""
    from tilewise import autotune as at

    db = at.Database(db_dir / "source.db")
    for shape in shapes:
        task = at.Task("gemm", shape, "c")
        option = at.measure_option(builder=at.LocalBuilder(),
                                   runner=at.LocalRunner(number=4, repeat=3))
        at.ModelTuner(task, seed=0, feature="ir").tune(trials, option, database=db)
        option.builder.close()
    return db


def run_one(tuner_name: str, seed: int, task, trials: int, db_dir: Path, source=None) -> dict:
    from tilewise import autotune as at

    builder = _Timed(at.LocalBuilder(), "build")
    runner = _Timed(at.LocalRunner(number=4, repeat=3), "run")
    option = at.MeasureOption(builder, runner)  # type: ignore[arg-type]
    tuner = {
        "random": lambda: at.RandomTuner(task, seed=seed),
        "model-ir": lambda: at.ModelTuner(task, seed=seed, feature="ir"),
        "model-knob": lambda: at.ModelTuner(task, seed=seed, feature="knob"),
        "model-transfer": lambda: at.ModelTuner(task, seed=seed, feature="ir", transfer=source),
    }[tuner_name]()
    curve: list[float] = []
    best = [0.0]

    def record(tuner, inputs, results) -> None:
        for r in results:
            if r.ok:
                best[0] = max(best[0], task.flop / r.mean / 1e9)
            curve.append(best[0])

    db = at.Database(db_dir / f"{tuner_name}-{seed}.db")
    t0 = time.perf_counter()
    tuner.tune(trials, option, callbacks=[record], database=db)
    wall = time.perf_counter() - t0
    builder.inner.close()
    return {
        "tuner": tuner_name,
        "seed": seed,
        "curve": curve,
        "wall_s": wall,
        "build_s": builder.seconds,
        "run_s": runner.seconds,
        "model_s": wall - builder.seconds - runner.seconds,
    }


def trials_to(curve: list[float], target: float) -> int | None:
    return next((i + 1 for i, v in enumerate(curve) if v >= target), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--shape", type=int, nargs=3, default=[512, 512, 512], metavar=("M", "N", "K"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--trials", type=int, default=128)
    ap.add_argument("--tuners", nargs="*", default=["random", "model-ir"])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--source-trials", type=int, default=64,
                    help="trials per source shape for model-transfer (gemm 256^3, 128x768x3072)")
    opts = ap.parse_args()

    import tilewise.ops  # noqa: F401 - registers gemm
    from tilewise import autotune as at
    from tilewise.target import Target

    task = at.Task("gemm", tuple(opts.shape), "c")
    db_dir = Path(tempfile.mkdtemp(prefix="tw-eff-"))
    runs = [
        run_one(name, seed, task, opts.trials, db_dir)
        for seed in range(opts.seeds)
        for name in opts.tuners
    ]
    overall = max(max(r["curve"], default=0.0) for r in runs)

    from rich.console import Console
    from rich.table import Table

    console = Console()
    marks = [c for c in CHECKPOINTS if c <= opts.trials]
    table = Table(
        title=f"best GFLOP/s after N trials, gemm{tuple(opts.shape)}, "
        f"median of {opts.seeds} seeds; space {task.config_space.size} configs"
    )
    table.add_column("tuner")
    for c in marks:
        table.add_column(f"{c}", justify="right")
    table.add_column("trials to 95% of best", justify="right")
    table.add_column("trials/s", justify="right")
    summary = {}
    for name in opts.tuners:
        mine = [r for r in runs if r["tuner"] == name]
        cells = []
        for c in marks:
            cells.append(statistics.median(r["curve"][min(c, len(r["curve"])) - 1] for r in mine))
        reach = [trials_to(r["curve"], 0.95 * overall) for r in mine]
        reach_num = [x if x is not None else float("inf") for x in reach]
        med_reach = statistics.median(reach_num)
        tps = statistics.median(len(r["curve"]) / r["wall_s"] for r in mine)
        summary[name] = {
            "median_best": dict(zip(marks, cells, strict=False)),
            "trials_to_95": reach,
            "median_trials_to_95": med_reach,
            "trials_per_s": tps,
        }
        table.add_row(
            name,
            *(f"{v:.1f}" for v in cells),
            "never" if med_reach == float("inf") else f"{med_reach:.0f}",
            f"{tps:.2f}",
        )
    console.print(table)
    console.print(f"best found by any tuner: {overall:.1f} GFLOP/s")
    for name in opts.tuners:
        mine = [r for r in runs if r["tuner"] == name]
        tot = {k: sum(r[k] for r in mine) for k in ("wall_s", "build_s", "run_s", "model_s")}
        console.print(
            f"{name}: {tot['wall_s']:.0f} s in all = compile {tot['build_s']:.0f} s "
            f"({100 * tot['build_s'] / tot['wall_s']:.0f}%), run {tot['run_s']:.0f} s "
            f"({100 * tot['run_s'] / tot['wall_s']:.0f}%), model/search {tot['model_s']:.0f} s "
            f"({100 * tot['model_s'] / tot['wall_s']:.0f}%)"
        )
    if opts.json:
        opts.json.write_text(
            json.dumps(
                {
                    "machine": Target.from_str("c").describe(),
                    "task": task.key.to_json(),
                    "summary": summary,
                    "runs": runs,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
