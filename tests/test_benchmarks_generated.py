"""benchmarks/generated_spaces.py parses its options and builds its operators' generated
tasks (nothing is timed: benchmarks are never asserted)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import tilewise.ops  # noqa: F401  (registers the hand templates)
from tilewise.autotune import Task

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "generated_spaces.py"


def test_generated_spaces_benchmark_help():
    out = subprocess.run([sys.executable, str(BENCHMARK), "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--trials" in out and "--seeds" in out and "--ops" in out


def test_generated_spaces_benchmark_tasks_are_generated_contractions(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARK.parent))  # its helpers live beside it
    spec = importlib.util.spec_from_file_location("generated_spaces", BENCHMARK)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    target = "c -mcpu=x86-64-v4 -cores=2"
    for op, (name, args) in bench.OPS.items():
        task = bench.generated_task(name, args, target)
        assert task.name == "generated" and "tile0_at" in {k.name for k in
                                                          task.config_space.knobs}, op
        assert task.flop == Task(name, args, target).flop, op
