"""DaskRunner: measure candidates on a farm of devices behind a Dask scheduler. Each
candidate is one Dask task holding one unit of the device's resource, so a device
measures one candidate at a time; Dask does the transport, queueing, placement and the
rescheduling of work from a worker that left.

A candidate's time limit starts when a device starts it (the device says so through a
Dask event), never while it waits in the queue behind other tuners' candidates.

Several threads may call :meth:`DaskRunner.run` at once (the whole-model tuner keeps
several tasks' batches in flight): each call has its own futures and event topic.

Example::

    option = MeasureOption(SourceBuilder(n_parallel=4),
                           DaskRunner("tcp://scheduler:8786", device="zen4"))
    RandomTuner(task, seed=0).tune(64, option, database=db)
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from tilewise.autotune.measure.packed import PackedArtifact
from tilewise.autotune.measure.runner import LocalRunner
from tilewise.autotune.record import BuildResult, ErrorKind, MeasureInput, MeasureResult
from tilewise.distributed.device import (
    DeviceJob,
    FarmError,
    KernelSource,
    device_resource,
    measure_on_device,
)
from tilewise.distributed.lazy import import_distributed
from tilewise.distributed.worker import check_job_target
from tilewise.runtime.opencl import OpenCLArtifact

#: Seconds a job may take beyond its compile and run limits (child start, transfers).
JOB_SLACK_S = 10.0


def on_device(job: Callable[[DeviceJob], MeasureResult], device_job: DeviceJob,
              topic: str) -> tuple[str, MeasureResult]:
    """The Dask task of one candidate, run on a device: tell the tuner that it started
    here (its time limit starts now), measure, and name the worker that measured."""
    worker = import_distributed().get_worker()
    check_job_target(worker, device_job)
    worker.log_event(topic, {"key": worker.get_current_task(), "worker": worker.address})
    return str(worker.name), job(device_job)


class DaskRunner:
    """Runs :class:`~tilewise.distributed.SourceBuilder` candidates on the farm's
    ``device`` workers: each device compiles the source with its own toolchain and
    measures it like a :class:`~tilewise.autotune.measure.LocalRunner` with the same
    options. A crash is :attr:`ErrorKind.RUNTIME`, a hang :attr:`ErrorKind.TIMEOUT`, a
    mismatch :attr:`ErrorKind.WRONG_ANSWER`.

    A device worker that dies while measuring hands its candidate back to Dask, which
    runs it on another device of the kind; a candidate that has killed
    ``distributed.scheduler.allowed-failures`` + 1 workers (the scheduler's setting,
    3 by default) is RUNTIME (Dask's ``KilledWorker``). A device that starts a
    candidate and gives no answer within the compile and run limits (plus
    :attr:`job_slack_s`) makes it TIMEOUT. A farm that cannot measure at all (no
    device of this kind for :attr:`device_wait_s`, a device that cannot import the
    template) raises :class:`FarmError` instead of filling the database with error
    records.

    ``scheduler`` is a scheduler address (the runner opens and owns a Client, with
    ``security``: a ``distributed.security.Security`` for a TLS farm) or a
    ``distributed.Client``. After each :meth:`run`, :attr:`measured_on` names the
    worker that measured each result ("" where none did; the last call's, where
    several run at once) and :attr:`devices_used` counts the results per worker.
    """

    #: The device side of one candidate: ``job(DeviceJob) -> MeasureResult``.
    job = staticmethod(measure_on_device)
    #: Seconds to wait for a first device of this kind to join the scheduler (and, while
    #: candidates wait, for one to come back after every device of the kind left).
    device_wait_s = 30.0
    #: Seconds a started candidate may take beyond its compile and run limits.
    job_slack_s = JOB_SLACK_S
    #: Seconds between looks at the farm while candidates are out.
    poll_s = 0.5

    def __init__(
        self,
        scheduler: Any,
        device: str = "zen4",
        number: int = 4,
        repeat: int = 3,
        min_repeat_ms: float = 0,
        timeout: float = 10.0,
        cache_flush: bool = False,
        check_correctness: bool = True,
        compile_timeout: float = 30.0,
        security: Any = None,
    ) -> None:
        import_distributed()  # fail here, with the install hint, not in the first batch
        self.device = device
        self.local = LocalRunner(
            number, repeat, min_repeat_ms, timeout, cache_flush, check_correctness
        )
        self.compile_timeout = compile_timeout
        self.security = security
        self._scheduler = scheduler if isinstance(scheduler, str) else None
        self._client = None if isinstance(scheduler, str) else scheduler
        # one event topic per call: a client may serve several runners and calls at once
        self._topic = f"tilewise-started-{uuid.uuid4().hex}"
        self._lock = threading.Lock()  # the client, devices_used
        self.measured_on: list[str] = []
        self.devices_used: Counter[str] = Counter()

    @property
    def resource(self) -> str:
        return device_resource(self.device)

    @property
    def client(self) -> Any:
        """The Dask client, connected on first use when the runner was given an address."""
        with self._lock:
            if self._client is None:
                distributed = import_distributed()
                self._client = distributed.Client(
                    self._scheduler, security=self.security, set_as_default=False
                )
            return self._client

    @property
    def job_limit_s(self) -> float:
        """Seconds from a device starting a candidate to its answer, at most."""
        return self.compile_timeout + self.local.timeout + self.job_slack_s

    def run(
        self, inputs: Sequence[MeasureInput], builds: Sequence[BuildResult]
    ) -> list[MeasureResult]:
        if len(inputs) != len(builds):
            raise ValueError(f"{len(inputs)} inputs but {len(builds)} builds")
        ready = [i for i, build in enumerate(builds) if build.ok]
        jobs = [self._job(inputs[i], builds[i]) for i in ready]
        measured = dict(zip(ready, self._measure(jobs) if jobs else [], strict=True))
        out, measured_on = [], []
        for i, build in enumerate(builds):
            if i in measured:
                # build time = source generation here + compilation on the device
                worker, result = measured[i]
                out.append(replace(result, build_s=build.build_s + result.build_s,
                                   device=worker))
                measured_on.append(worker)
            else:
                out.append(
                    MeasureResult(
                        error=build.error, error_msg=build.error_msg, build_s=build.build_s
                    )
                )
                measured_on.append("")
        with self._lock:
            self.measured_on = measured_on
            self.devices_used.update(w for w in measured_on if w)
        return out

    def _job(self, inp: MeasureInput, build: BuildResult) -> DeviceJob:
        artifact = build.artifact
        kernel = artifact.kernel if isinstance(artifact, PackedArtifact) else artifact
        if not isinstance(kernel, (KernelSource, OpenCLArtifact)):
            raise TypeError(
                "DaskRunner measures KernelSource artifacts (use a SourceBuilder), "
                f"got {type(kernel).__name__}"
            )
        return DeviceJob(inp, artifact, self.local, self.compile_timeout)

    def _measure(self, jobs: list[DeviceJob]) -> list[tuple[str, MeasureResult]]:
        client = self.client
        self._wait_for_devices()
        started: dict[Any, tuple[float, str]] = {}  # key -> (when, worker address)
        wake = threading.Event()

        def on_start(event: tuple[float, dict[str, Any]]) -> None:
            # our own clock, at arrival: the device's clock may differ from ours
            started[event[1]["key"]] = (time.monotonic(), event[1]["worker"])
            wake.set()

        topic = f"{self._topic}-{uuid.uuid4().hex[:12]}"
        client.subscribe_topic(topic, on_start)
        n = len(jobs)
        futures = client.map(
            on_device, [self.job] * n, jobs, [topic] * n,
            resources={self.resource: 1}, pure=False,
        )
        for future in futures:
            future.add_done_callback(lambda _: wake.set())
        try:
            return self._collect(futures, started, wake)
        finally:
            client.unsubscribe_topic(topic)
            client.cancel([f for f in futures if not f.done()])

    def _collect(
        self, futures: list[Any], started: dict[Any, tuple[float, str]], wake: threading.Event
    ) -> list[tuple[str, MeasureResult]]:
        """Wait for every candidate: a finished one is its result, one that a device has
        run past :attr:`job_limit_s` is TIMEOUT; a candidate whose device left is Dask's
        to place again, and its clock starts over where it starts again."""
        out: dict[int, tuple[str, MeasureResult]] = {}
        pending = dict(enumerate(futures))
        no_device_since: float | None = None
        looked = -float("inf")
        while pending:
            wake.wait(self.poll_s)
            wake.clear()
            for i, future in list(pending.items()):
                if future.done():
                    out[i] = self._outcome(future)
                    del pending[i]
            now = time.monotonic()
            if not pending or now - looked < self.poll_s:
                continue  # a look at the farm per poll, not per finished candidate
            looked = now
            devices = self._devices()
            for i, future in list(pending.items()):
                start = started.get(future.key)
                if start is None:
                    continue  # still queued: waiting never counts against the limit
                if start[1] not in devices:
                    del started[future.key]  # its device left; Dask runs it elsewhere
                elif now - start[0] > self.job_limit_s:
                    future.cancel()
                    del pending[i]
                    out[i] = ("", MeasureResult(
                        error=ErrorKind.TIMEOUT,
                        error_msg=f"the device at {start[1]} gave no result within "
                        f"{self.job_limit_s:g} s of starting the candidate",
                    ))
            if devices:
                no_device_since = None
            elif no_device_since is None:
                no_device_since = now
            elif now - no_device_since > self.device_wait_s:
                raise FarmError(
                    f"every worker offering {self.resource!r} left the farm and none came "
                    f"back within {self.device_wait_s:g} s; {len(pending)} candidates "
                    "were not measured"
                )
        return [out[i] for i in range(len(futures))]

    @staticmethod
    def _outcome(future: Any) -> tuple[str, MeasureResult]:
        try:
            worker, result = future.result()
        except FarmError:
            raise
        except Exception as err:  # KilledWorker: it killed its devices; or it was lost
            return "", MeasureResult(
                error=ErrorKind.RUNTIME,
                error_msg=f"the farm lost the job: {type(err).__name__}: {err}",
            )
        return worker, result

    def _devices(self) -> set[str]:
        """The addresses of the workers offering this device's resource now."""
        workers = self.client.scheduler_info()["workers"]
        return {
            address for address, w in workers.items()
            if w.get("resources", {}).get(self.resource, 0) >= 1
        }

    def device_count(self) -> int:
        """How many devices of this kind the farm has, waiting for a first one (a tuner
        keeps at least this many candidates in flight, the whole-model tuner this many
        tasks' rounds)."""
        return self._wait_for_devices()

    def _wait_for_devices(self) -> int:
        """How many workers offer this device's resource, waiting for a first one."""
        give_up = time.monotonic() + self.device_wait_s
        while True:
            n = len(self._devices())
            if n or time.monotonic() > give_up:
                break
            time.sleep(0.5)
        if not n:
            raise FarmError(
                f"no worker of the farm offers {self.resource!r}; start one with "
                f"`tilewise farm worker --scheduler <address> --device {self.device}`"
            )
        return n

    def close(self) -> None:
        """Close the client if this runner opened it."""
        if self._scheduler is not None and self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> DaskRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self._scheduler or "a client"
        return f"DaskRunner({where}, device={self.device!r}, {self.local.timing})"
