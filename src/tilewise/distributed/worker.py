"""A device worker: one Dask worker for one device, which measures one candidate at a
time (one thread and one unit of the ``device-<kind>`` resource), compiles with this
machine's toolchain and describes its own target to the scheduler. A device may be
another architecture that this machine emulates (``--target "c
-mtriple=aarch64-linux-gnu"``: a cross compiler and qemu-user), for correctness only.

The description travels as the worker's *startup information* (Dask's
``Worker(startup_information=...)``): the scheduler keeps it beside the worker and hands
it to every client in ``Client.scheduler_info()["workers"][address]["tilewise"]``.

Example (what ``tilewise farm worker`` runs)::

    serve_device(DeviceWorkerOptions("tls://farm:8786", device="zen4",
                                     security=farm_security(ca, cert, key)))
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tilewise.distributed.device import DeviceJob, FarmError, device_resource
from tilewise.distributed.lazy import import_distributed
from tilewise.errors import BuildError
from tilewise.runtime.executable import require_programs
from tilewise.target import Target, TargetKind

#: The key of a device's description in its worker's entry of ``scheduler_info()``.
INFO_KEY = "tilewise"


def default_device(target: Target) -> str:
    """The device kind a worker offers unless told: machine and ISA (``x86_64-avx512``;
    ``aarch64-neon-emulated`` under an emulator), or the OpenCL device's name
    (``opencl-<name>``)."""
    if target.kind is TargetKind.OPENCL:
        name = str(target.describe()["device"])
        return "opencl-" + "-".join(re.findall(r"[a-z0-9]+", name.lower()))[:40]
    return f"{target.machine}-{target.isa}" + ("-emulated" if target.emulated else "")


def device_info(device: str, target: Target) -> dict[str, Any]:
    """What a device worker publishes about itself: its kind and its target, as a string
    (what its candidates are built for) and described (what the records store)."""
    return {
        "device": device,
        "target": str(target),
        "description": target.describe(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


@dataclass(frozen=True)
class DeviceWorkerOptions:
    """How to start a device worker: the scheduler's address, the device kind (the
    resource ``device-<device>``; default :func:`default_device`), the target string
    (default ``"c"``: this host), the worker's name (default ``<device>-<host>-<pid>``)
    and a ``distributed.security.Security`` for a TLS farm."""

    scheduler: str
    device: str | None = None
    target: str = "c"
    name: str | None = None
    security: Any = None


def device_worker_kwargs(options: DeviceWorkerOptions) -> dict[str, Any]:
    """The ``distributed.Worker`` arguments of a device worker."""
    target = Target.from_str(options.target)
    if target.kind not in (TargetKind.C, TargetKind.OPENCL):
        raise FarmError(f"a farm device runs 'c' and 'opencl' targets, not {options.target!r}")
    if target.triple:
        try:
            require_programs(target.compiler, target.emulator)
        except BuildError as err:
            raise FarmError(f"this machine cannot run {target.triple} code: {err}") from None
    device = options.device or default_device(target)
    info = device_info(device, target)
    name = options.name or f"{device}-{socket.gethostname()}-{os.getpid()}"
    return {
        "nthreads": 1,
        "name": name,
        "resources": {device_resource(device): 1},
        "security": options.security,
        "startup_information": {INFO_KEY: lambda worker: info},
    }


async def run_device_worker(options: DeviceWorkerOptions, started: Any = None) -> None:
    """Run a device worker until it is closed (by the scheduler) or this process gets
    SIGINT or SIGTERM. ``started(worker)`` is called once it has joined the farm."""
    distributed = import_distributed()
    kwargs = device_worker_kwargs(options)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with distributed.Worker(options.scheduler, **kwargs) as worker:
            if started is not None:
                started(worker)
            stopped = asyncio.ensure_future(stop.wait())
            finished = asyncio.ensure_future(worker.finished())
            await asyncio.wait([stopped, finished], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def serve_device(options: DeviceWorkerOptions) -> None:
    """Run a device worker in this process (not daemonic, so that it may start the
    isolated child that runs each kernel) until SIGINT or SIGTERM."""

    def announce(worker: Any) -> None:
        info = worker.startup_information[INFO_KEY](worker)
        print(f"device worker {worker.name!r} at {worker.address} offers "
              f"{device_resource(info['device'])}=1 to {options.scheduler}; "
              f"target: {info['target']}", file=sys.stderr, flush=True)

    asyncio.run(run_device_worker(options, announce))


def published_info(worker_entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """A device worker's description from its ``scheduler_info()`` entry (None for a
    worker that is not a tilewise device worker)."""
    info = worker_entry.get(INFO_KEY)
    return info if isinstance(info, dict) else None


def check_job_target(worker: Any, job: DeviceJob) -> None:
    """Refuse a candidate built for another target than the one this device worker
    published (a tuner that asked the wrong device kind): a setup error, raised."""
    publish = getattr(worker, "startup_information", {}).get(INFO_KEY)
    if publish is None:
        return  # a plain Dask worker (local_farm): it described nothing
    mine = publish(worker)["target"]
    built_for = job.target
    if built_for != mine:
        raise FarmError(
            f"device worker {worker.name!r} describes target {mine!r}, but the candidate "
            f"was built for {built_for!r}; tune with the device's own target"
        )
