"""What the farm holds now: its devices by name with their kind and target, busy or
idle, and the measurements queued per device kind (what TVM's ``query_rpc_tracker``
shows), read from the Dask scheduler.

Busy and queued come from the workers' heartbeats (Dask's ``task_counts`` metric), so
they lag by up to a heartbeat (about a second on a small farm).

Example::

    status = farm_status(client)
    [(d.name, d.kind, d.busy) for d in status.devices], status.queued
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tilewise.distributed.device import FarmError
from tilewise.distributed.worker import published_info

_PREFIX = "device-"


@dataclass(frozen=True)
class DeviceStatus:
    """One device worker. ``target`` is None for a worker that offers a device resource
    but described no target (a plain ``dask worker --resources``)."""

    name: str
    address: str
    kind: str
    target: str | None
    busy: bool
    queued: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "device": self.kind,
                "target": self.target, "busy": self.busy, "queued": self.queued}


@dataclass(frozen=True)
class FarmStatus:
    """The devices, and per device kind the measurements waiting for one (on a worker
    or, where no worker of the kind is in the farm, at the scheduler)."""

    scheduler: str
    devices: tuple[DeviceStatus, ...]
    queued: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler,
                "devices": [d.to_json() for d in self.devices],
                "queued": dict(sorted(self.queued.items()))}


def farm_status(client: Any) -> FarmStatus:
    """The farm behind ``client`` (a ``distributed.Client``) as it is now."""
    info = client.scheduler_info()
    devices = []
    queued: dict[str, int] = {}
    for address, worker in info["workers"].items():
        counts = worker.get("metrics", {}).get("task_counts", {})
        waiting = int(counts.get("constrained", 0)) + int(counts.get("ready", 0))
        published = published_info(worker)
        for resource in sorted(worker.get("resources", {})):
            if not resource.startswith(_PREFIX):
                continue
            kind = resource[len(_PREFIX):]
            queued[kind] = queued.get(kind, 0) + waiting
            devices.append(DeviceStatus(
                name=str(worker.get("name", address)),
                address=address,
                kind=kind,
                target=published["target"] if published else None,
                busy=int(counts.get("executing", 0)) > 0,
                queued=waiting,
            ))
    for kind, n in _unplaced(client).items():
        queued[kind] = queued.get(kind, 0) + n
    devices.sort(key=lambda d: (d.kind, d.name))
    return FarmStatus(str(info.get("address", "")), tuple(devices), queued)


def _unplaced(client: Any) -> dict[str, int]:
    """Measurements that no worker holds (no device of their kind is in the farm), per
    kind; empty where the scheduler runs no code sent to it."""

    # Nested, so that it travels by value: the scheduler need not have tilewise.
    def count(dask_scheduler: Any) -> dict[str, int]:
        out: dict[str, int] = {}
        for ts in dask_scheduler.unrunnable:
            for resource in ts.resource_restrictions or {}:
                if resource.startswith("device-"):
                    kind = resource[len("device-"):]
                    out[kind] = out.get(kind, 0) + 1
        return out

    try:
        return dict(client.run_on_scheduler(count))
    except Exception:  # the scheduler refuses pickled code (distributed.scheduler.pickle)
        return {}


def device_target(status: FarmStatus, device: str) -> str:
    """The target that the farm's devices of kind ``device`` describe, which a tuner
    instantiates its templates for; :class:`FarmError` where there is none, or the
    devices of the kind disagree (give each target its own kind)."""
    targets = {d.target for d in status.devices if d.kind == device}
    if not targets:
        kinds = sorted({d.kind for d in status.devices})
        raise FarmError(f"no device of kind {device!r} in the farm at {status.scheduler}; "
                        f"it has: {', '.join(kinds) or 'none'}")
    if None in targets:
        raise FarmError(f"a worker offering device-{device} describes no target; start "
                        "devices with `tilewise farm worker`")
    if len(targets) > 1:
        raise FarmError(f"the devices of kind {device!r} describe different targets "
                        f"({' | '.join(sorted(map(str, targets)))}); give each its own --device")
    return str(targets.pop())
