"""benchmarks/tuning_efficiency.py in the generated space: a tiny run writes every
trial's reading and each tuner's trials to 95% of the best found (nothing is asserted of
the timings: benchmarks are never asserted)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "tuning_efficiency.py"


def test_tuning_efficiency_benchmark_help():
    out = subprocess.run([sys.executable, str(BENCHMARK), "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--space" in out and "--workload" in out and "--trials" in out


@pytest.mark.compiles
def test_tuning_efficiency_generated_space_reports_trials_to_95(tmp_path):
    out_json = tmp_path / "eff.json"
    out = subprocess.run(
        [sys.executable, str(BENCHMARK), "--space", "generated", "--shape", "64", "64", "64",
         "--seeds", "1", "--trials", "4", "--json", str(out_json)],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    assert "trials to 95%, model-ir / random" in out and "goal: <= 0.33" in out
    report = json.loads(out_json.read_text())
    assert report["space"] == "generated" and report["task"]["name"] == "generated"
    assert report["trials"] == 4 and report["seeds"] == 1
    best = report["best_gflops"]
    assert best > 0
    assert set(report["summary"]) == {"random", "model-ir"}
    for tuner, summary in report["summary"].items():
        (reach,) = summary["trials_to_95"]
        assert reach is None or 1 <= reach <= 4, tuner
        assert summary["median_trials_to_95"] == reach, tuner
    ratio = report["summary"]["model-ir"]["ratio_to_random"]
    assert ratio["relation"] in ("=", "<", ">", "?") and ratio["goal"] == pytest.approx(1 / 3)
    assert len(report["runs"]) == 2
    for run in report["runs"]:
        assert len(run["readings"]) == len(run["curve"]) == len(run["costs"]) == 4
        ok = [g for g in run["readings"] if g is not None]
        assert run["curve"][-1] == pytest.approx(max(ok, default=0.0))
        assert run["curve"][-1] <= best
