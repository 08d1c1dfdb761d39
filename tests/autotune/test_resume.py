"""A tuning process killed with SIGKILL mid-run leaves a valid database, and a rerun
resumes without measuring any config twice."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import toy_templates  # noqa: F401
from toy_templates import bowl_cost

from tilewise.autotune import Database, FakeBuilder, FakeRunner, MeasureOption, RandomTuner, Task

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"

TUNE = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [{src!r}, {here!r}]
    from toy_templates import slow_bowl_cost
    from tilewise.autotune import (
        Database, FakeBuilder, FakeRunner, MeasureOption, RandomTuner, Task)
    task = Task("toy_matmul", (256, 256))
    option = MeasureOption(FakeBuilder(), FakeRunner(slow_bowl_cost), batch_size=4)
    RandomTuner(task, seed=0).tune(1000, option, database=Database({path!r}))
    """
)


def test_sigkill_mid_run_then_resume(tmp_path):
    path = str(tmp_path / "t.db")
    task = Task("toy_matmul", (256, 256))
    proc = subprocess.Popen(
        [sys.executable, "-c", TUNE.format(src=str(SRC), here=str(HERE), path=path)]
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if os.path.exists(path) and len(Database(path).records(task)) >= 20:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    db = Database(path)  # still a valid database
    before = db.measured_indices(task)
    assert 20 <= len(before) < 1000
    assert len(db.records(task)) % 4 == 0  # whole batches only: one transaction each

    runner = FakeRunner(bowl_cost)
    summary = RandomTuner(task, seed=0).tune(
        40, MeasureOption(FakeBuilder(), runner, batch_size=4), database=db
    )
    assert summary.resumed == len(before) and summary.measured == 40
    assert not set(runner.measured) & before
    assert db.measured_indices(task) == before | set(runner.measured)
