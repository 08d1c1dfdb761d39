"""DaskRunner: measure candidates on a farm of devices behind a Dask scheduler. Each
candidate is one Dask task holding one unit of the device's resource, so a device
measures one candidate at a time; Dask does the transport, queueing, placement and the
rescheduling of work from a worker that left.

Example::

    option = MeasureOption(SourceBuilder(n_parallel=4),
                           DaskRunner("tcp://scheduler:8786", device="zen4"))
    RandomTuner(task, seed=0).tune(64, option, database=db)
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

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

#: Seconds a job may take beyond its compile and run limits (child start, transfers).
JOB_SLACK_S = 10.0


class DaskRunner:
    """Runs :class:`~tilewise.distributed.SourceBuilder` candidates on the farm's
    ``device`` workers: each device compiles the source with its own toolchain and
    measures it like a :class:`~tilewise.autotune.measure.LocalRunner` with the same
    options. A crash is :attr:`ErrorKind.RUNTIME`, a hang :attr:`ErrorKind.TIMEOUT`, a
    mismatch :attr:`ErrorKind.WRONG_ANSWER`; a device worker that dies while measuring
    (Dask's ``KilledWorker``) is RUNTIME too. A farm that cannot measure at all (no
    device of this kind, a device that cannot import the template) raises
    :class:`FarmError` instead of filling the database with error records.

    ``scheduler`` is a scheduler address (the runner opens and owns a Client) or a
    ``distributed.Client``.
    """

    #: The device side of one candidate: ``job(DeviceJob) -> MeasureResult``.
    job = staticmethod(measure_on_device)
    #: Seconds to wait for a first device of this kind to join the scheduler.
    device_wait_s = 30.0

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
    ) -> None:
        import_distributed()  # fail here, with the install hint, not in the first batch
        self.device = device
        self.local = LocalRunner(
            number, repeat, min_repeat_ms, timeout, cache_flush, check_correctness
        )
        self.compile_timeout = compile_timeout
        self._scheduler = scheduler if isinstance(scheduler, str) else None
        self._client = None if isinstance(scheduler, str) else scheduler

    @property
    def resource(self) -> str:
        return device_resource(self.device)

    @property
    def client(self) -> Any:
        """The Dask client, connected on first use when the runner was given an address."""
        if self._client is None:
            distributed = import_distributed()
            self._client = distributed.Client(self._scheduler, set_as_default=False)
        return self._client

    def run(
        self, inputs: Sequence[MeasureInput], builds: Sequence[BuildResult]
    ) -> list[MeasureResult]:
        if len(inputs) != len(builds):
            raise ValueError(f"{len(inputs)} inputs but {len(builds)} builds")
        ready = [i for i, build in enumerate(builds) if build.ok]
        jobs = [self._job(inputs[i], builds[i]) for i in ready]
        measured = dict(zip(ready, self._measure(jobs) if jobs else [], strict=True))
        out = []
        for i, build in enumerate(builds):
            if i in measured:
                # build time = source generation here + compilation on the device
                result = measured[i]
                out.append(replace(result, build_s=build.build_s + result.build_s))
            else:
                out.append(
                    MeasureResult(
                        error=build.error, error_msg=build.error_msg, build_s=build.build_s
                    )
                )
        return out

    def _job(self, inp: MeasureInput, build: BuildResult) -> DeviceJob:
        if not isinstance(build.artifact, KernelSource):
            raise TypeError(
                "DaskRunner measures KernelSource artifacts (use a SourceBuilder), "
                f"got {type(build.artifact).__name__}"
            )
        return DeviceJob(inp, build.artifact, self.local, self.compile_timeout)

    def _measure(self, jobs: list[DeviceJob]) -> list[MeasureResult]:
        client = self.client
        devices = self._wait_for_devices()
        futures = client.map(self.job, jobs, resources={self.resource: 1}, pure=False)
        # Devices work through the batch in ceil(n / devices) rounds of at most one
        # compile and one isolated run each; past that the farm has lost the job.
        budget = math.ceil(len(jobs) / devices) * (
            self.compile_timeout + self.local.timeout + JOB_SLACK_S
        )
        deadline = time.monotonic() + budget
        try:
            return [self._collect(f, deadline, budget) for f in futures]
        finally:
            client.cancel([f for f in futures if not f.done()])

    def _collect(self, future: Any, deadline: float, budget: float) -> MeasureResult:
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FarmError:
            raise
        except TimeoutError:
            return MeasureResult(
                error=ErrorKind.TIMEOUT,
                error_msg=f"no result from the farm within {budget:g} s",
            )
        except Exception as err:  # KilledWorker: the device died; or the job was lost
            return MeasureResult(
                error=ErrorKind.RUNTIME,
                error_msg=f"the farm lost the job: {type(err).__name__}: {err}",
            )

    def _wait_for_devices(self) -> int:
        """How many workers offer this device's resource, waiting for a first one."""
        give_up = time.monotonic() + self.device_wait_s
        while True:
            workers = self.client.scheduler_info()["workers"].values()
            n = sum(1 for w in workers if w.get("resources", {}).get(self.resource, 0) >= 1)
            if n or time.monotonic() > give_up:
                break
            time.sleep(0.5)
        if not n:
            raise FarmError(
                f"no worker of the farm offers {self.resource!r}; start one with "
                f'`dask worker <scheduler> --resources "{self.resource}=1" --nthreads 1`'
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
