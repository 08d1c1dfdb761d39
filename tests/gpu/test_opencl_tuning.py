"""Tuning on the opencl target: the target names the device and its limits, the
template's space is made for them, and every trial is built for and run on the OpenCL
device (PoCL in CI), checked against NumPy, into the same database as the CPU's."""

from __future__ import annotations

import pytest
from gpu_testing import needs_opencl, tune_on_device

import tilewise.ops  # noqa: F401  (registers the templates)
from tilewise.autotune import Task
from tilewise.autotune.measure.workload import check_measurable
from tilewise.errors import TargetError, TuningError
from tilewise.target import Target, TargetKind


def test_an_opencl_target_names_its_device_and_limits_and_round_trips():
    t = Target.from_str("opencl -device=0 -local-mem=32K -max-threads=256")
    assert (t.kind, t.device, t.local_mem_bytes, t.max_threads) == (
        TargetKind.OPENCL, 0, 32 * 1024, 256)
    assert str(t) == "opencl -device=0 -local-mem=32K -max-threads=256"
    assert Target.from_str(str(t)) == t
    for bad, why in (("opencl -arch=x", "unknown target option"),
                     ("opencl -device=x", "device number"),
                     ("opencl -max-threads=0", "at least 1")):
        with pytest.raises(TargetError, match=why):
            Target.from_str(bad)


def test_a_template_is_measured_only_for_the_targets_it_schedules_for():
    with pytest.raises(TuningError, match="schedules for 'cuda', 'opencl' targets, not 'c'"):
        check_measurable(Task("gpu_gemm", (64, 64, 64), "c"))
    with pytest.raises(TuningError, match="schedules for 'c' targets, not 'opencl'"):
        check_measurable(Task("gemm", (64, 64, 64), "opencl -local-mem=48K -max-threads=1024"))


@needs_opencl
@pytest.mark.compiles
def test_the_tuner_end_to_end_on_the_opencl_device(tmp_path):
    task = Task("gpu_gemm", (64, 96, 40), "opencl")
    summary, db = tune_on_device(task, 6, tmp_path / "t.db")
    records = db.records(task)
    assert summary.measured == 6 == len(records)
    assert summary.errors == 0, [r.result.error_msg for r in records if not r.result.ok]
    assert all(min(r.result.costs) > 0 for r in records)
    assert records[0].target["target"] == task.target and "device" in records[0].target
