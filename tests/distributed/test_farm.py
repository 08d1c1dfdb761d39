"""The device farm on a local Dask cluster: two worker processes, each one device
(``device-zen4=1``) with two threads, so only the resource keeps a device to one
measurement at a time. A small gemm is tuned end to end through SourceBuilder and
DaskRunner, and a small model with two tasks' rounds in flight at once; kernels that
crash, hang or compute wrongly become error records; a worker that dies while measuring
becomes an error record too."""

import importlib
import os
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from tilewise.autotune import (  # noqa: E402  (after the skip)
    Database,
    ErrorKind,
    GridSearchTuner,
    MeasureInput,
    MeasureOption,
    RandomTuner,
    Task,
)
from tilewise.autotune.measure.packed import PackedArtifact  # noqa: E402
from tilewise.distributed import (  # noqa: E402
    DaskRunner,
    FarmError,
    KernelSource,
    SourceBuilder,
    local_farm,
)
from tilewise.distributed.device import measure_on_device  # noqa: E402

pytestmark = pytest.mark.compiles

# The measurement templates of tests/autotune (test_gemm, test_faulty_gemm).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "autotune"))
kernel_templates = importlib.import_module("kernel_templates")


@pytest.fixture(scope="module")
def client():
    with local_farm(n_workers=2, device="zen4", threads_per_worker=2) as cluster:
        with distributed.Client(cluster, set_as_default=False) as client:
            # How a farm gets a template module that its devices have not installed.
            client.upload_file(kernel_templates.__file__)
            yield client


@pytest.fixture(scope="module")
def builder():
    b = SourceBuilder(n_parallel=2, timeout=60)
    yield b
    b.close()


def logging_spans(log_dir):
    """A device job that measures as usual and appends its (start, stop) to a file
    named after the worker process (a local function: Dask ships it by value)."""

    def job(device_job):
        start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process
        try:
            return measure_on_device(device_job)
        finally:
            with open(log_dir / f"{os.getpid()}.spans", "a") as f:
                f.write(f"{start} {time.monotonic()}\n")

    return job


def spans_per_device(log_dir):
    return {
        path.stem: sorted(tuple(map(float, line.split())) for line in path.read_text().splitlines())
        for path in log_dir.glob("*.spans")
    }


def test_source_builder_generates_c_without_compiling(builder):
    task = Task("test_gemm", (32,))
    (build,) = builder.build([MeasureInput(task, task.config_space.get(0))])
    assert build.ok, build.error_msg
    kernel = build.artifact
    assert isinstance(kernel, KernelSource) and "test_gemm" in kernel.source
    assert "tw_time_" not in kernel.source  # the device adds its own timing harness
    assert [a.shape for a in kernel.arg_specs] == [(32, 32)] * 3
    assert "-shared" in kernel.flags


def test_random_tuner_tunes_a_gemm_on_the_farm(client, builder, tmp_path):
    task = Task("test_gemm", (32,))
    db = Database(tmp_path / "farm.db")
    runner = DaskRunner(client, device="zen4", number=2, repeat=2, timeout=30)
    runner.job = logging_spans(tmp_path)
    summary = RandomTuner(task, 0).tune(8, MeasureOption(builder, runner, 4), database=db)
    records = db.records(task)
    assert summary.measured == 8 == len(records) == len({r.config.index for r in records})
    assert summary.errors == 0, [r.result.error_msg for r in records if not r.result.ok]
    assert all(len(r.result.costs) == 2 and min(r.result.costs) > 0 for r in records)
    assert summary.best_flops > 0
    spans = spans_per_device(tmp_path)
    assert len(spans) == 2 and sum(map(len, spans.values())) == 8  # both devices worked
    for runs in spans.values():  # but never on two candidates at once (2 threads each)
        assert all(b[0] >= a[1] for a, b in zip(runs, runs[1:], strict=False)), runs


def test_weights_are_packed_on_the_device_and_checked(client, builder):
    task = Task("test_packed_gemm", (24,))
    inputs = [MeasureInput(task, task.config_space.get(i)) for i in range(2)]
    builds = builder.build(inputs)
    assert all(isinstance(b.artifact, PackedArtifact) and isinstance(b.artifact.pack, KernelSource)
               for b in builds)
    runner = DaskRunner(client, device="zen4", number=1, repeat=1, timeout=30)
    right, wrong = runner.run(inputs, builds)
    assert right.ok, right.error_msg
    assert wrong.error is ErrorKind.WRONG_ANSWER


def test_an_opencl_task_is_measured_on_the_farm(client, builder):
    from tilewise.runtime.opencl import OpenCLArtifact, opencl_available

    if not opencl_available():
        pytest.skip("no OpenCL platform (install pocl-opencl-icd)")
    task = Task("gpu_gemm", (32, 32, 32), "opencl")
    inputs = [MeasureInput(task, task.config_space.fallback)]
    builds = builder.build(inputs)
    assert isinstance(builds[0].artifact, OpenCLArtifact), builds[0].error_msg
    runner = DaskRunner(client, device="zen4", number=1, repeat=1, timeout=60)
    (result,) = runner.run(inputs, builds)
    assert result.ok, result.error_msg


def test_faulty_configs_get_their_error_kind(client, builder, tmp_path):
    task = Task("test_faulty_gemm", (32,))
    db = Database(tmp_path / "farm.db")
    runner = DaskRunner(client, number=1, repeat=1, timeout=3)
    # "mode" is the fastest knob: the first 10 configs hold every mode twice
    summary = GridSearchTuner(task, 0).tune(8, MeasureOption(builder, runner, 5), database=db)
    kernel_templates.assert_faulty_records(db, task, summary)
    assert len(client.scheduler_info()["workers"]) == 2  # a segfault killed only a child


def test_a_farm_without_the_device_raises(client, builder):
    task = Task("test_gemm", (32,))
    inp = MeasureInput(task, task.config_space.get(0))
    runner = DaskRunner(client, device="no-such-chip")
    runner.device_wait_s = 0
    with pytest.raises(FarmError, match="device-no-such-chip"):
        runner.run([inp], builder.build([inp]))


def test_a_worker_that_dies_becomes_an_error_record(client, builder):
    task = Task("test_gemm", (32,))
    inputs = [MeasureInput(task, task.config_space.get(i)) for i in range(2)]
    builds = builder.build(inputs)
    runner = DaskRunner(client, number=1, repeat=1, timeout=10)

    def die(job):  # a local function: Dask ships it by value
        if job.inp.config.index == 0:
            os._exit(1)
        return measure_on_device(job)

    runner.job = die
    dead, alive = runner.run(inputs, builds)
    assert dead.error is ErrorKind.RUNTIME and "KilledWorker" in dead.error_msg
    assert alive.ok, alive.error_msg
    client.wait_for_workers(2, timeout=30)  # the nannies restart the dead workers


def answers_at_once(job):  # a device job that measures nothing: the farm's cost alone
    from tilewise.autotune import MeasureResult

    return MeasureResult(costs=(1e-3,))


def hold_the_device(marker, seconds):
    marker.write_text("started")
    time.sleep(seconds)


def test_waiting_in_the_queue_never_counts_against_the_time_limit(client, builder, tmp_path):
    task = Task("test_gemm", (32,))
    inputs = [MeasureInput(task, task.config_space.get(i)) for i in range(2)]
    builds = builder.build(inputs)
    # another tuner's candidates hold both devices for 3 s
    held = [client.submit(hold_the_device, tmp_path / f"{i}.held", 3, pure=False,
                          resources={"device-zen4": 1}) for i in range(2)]
    give_up = time.monotonic() + 30
    while len(list(tmp_path.glob("*.held"))) < 2:
        assert time.monotonic() < give_up
        time.sleep(0.05)
    runner = DaskRunner(client, number=1, repeat=1, timeout=0.5, compile_timeout=0.5)
    runner.job_slack_s = 0  # a candidate has 1 s from its start, and waits 3 s for it
    runner.job = answers_at_once
    results = runner.run(inputs, builds)
    assert all(r.ok for r in results), [r.error_msg for r in results]
    assert all(f.done() for f in held)


def test_a_device_that_never_answers_becomes_a_timeout(client, builder):
    task = Task("test_gemm", (32,))
    inputs = [MeasureInput(task, task.config_space.get(0))]
    runner = DaskRunner(client, number=1, repeat=1, timeout=0.5, compile_timeout=0.5)
    runner.job_slack_s = 0.5

    def wedged(job):  # alive (its heartbeats go on) but silent past every limit
        time.sleep(3)
        return measure_on_device(job)

    runner.job = wedged
    start = time.monotonic()
    (result,) = runner.run(inputs, builder.build(inputs))
    assert result.error is ErrorKind.TIMEOUT and "within 1.5 s of starting" in result.error_msg
    assert time.monotonic() - start < 3


class RecordingRunner(DaskRunner):
    """A DaskRunner that notes each call's tasks and (start, end): the whole-model
    tuner calls it from several threads at once."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def run(self, inputs, builds):
        start = time.monotonic()
        try:
            return super().run(inputs, builds)
        finally:
            self.calls.append(({i.task.key for i in inputs}, start, time.monotonic()))


def test_a_model_keeps_two_tasks_in_flight_on_two_devices(client, builder, tmp_path):
    import tilewise as tw
    from tilewise import models

    model = models.build("bert_layer", seq=16, hidden=64, heads=4, ffn=128)
    runner = RecordingRunner(client, device="zen4", number=1, repeat=2, timeout=30)
    runner.job = logging_spans(tmp_path)
    db = Database(tmp_path / "model.db")
    report = tw.tune_model(model, db, "c -cores=1", trials=16, tuner="random",
                           generated=False, confirm=False,
                           measure=MeasureOption(builder, runner, 2))
    # two tasks' batches were out at once (the first call holds every task's fallback)
    single = [c for c in runner.calls[1:] if len(c[0]) == 1]
    assert any(a[0] != b[0] and a[1] < b[2] and b[1] < a[2]
               for i, a in enumerate(single) for b in single[i + 1:]), runner.calls
    assert report.in_flight == 2
    # the budget, exactly; every record measured once, right, on one of the devices
    assert report.trials == 16
    records = [r for key in db.tasks() for r in db.records(key) if not r.result.rejected]
    assert len(records) == 16 + len(report.units)
    assert all(r.result.ok for r in records), {r.result.error_msg[:200] for r in records
                                               if not r.result.ok}
    workers = {w["name"] for w in client.scheduler_info()["workers"].values()}
    assert {r.result.device for r in records} <= {str(w) for w in workers}
    for key in db.tasks():
        indices = [r.config.index for r in db.records(key)]
        assert len(indices) == len(set(indices))
    spans = spans_per_device(tmp_path)
    assert len(spans) == 2 and sum(map(len, spans.values())) == len(records)
    for runs in spans.values():  # each device measured one candidate at a time
        assert all(b[0] >= a[1] for a, b in zip(runs, runs[1:], strict=False)), runs
