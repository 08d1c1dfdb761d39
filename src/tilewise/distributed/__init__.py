"""The device farm on Dask distributed: a DaskRunner that measures candidates on Dask
workers declaring a device resource (``--resources "device-zen4=1"``), the
SourceBuilder that feeds it generated C, device workers that describe their own target
(``tilewise farm worker``), the farm's status, TLS, and a local farm for tests and demos.

Dask itself is imported only when a farm is used (``pip install 'tilewise[distributed]'``).

Example::

    from tilewise.distributed import DaskRunner, SourceBuilder, local_farm
    with local_farm(n_workers=2) as cluster:
        option = MeasureOption(SourceBuilder(), DaskRunner(cluster.scheduler_address))
"""

from tilewise.distributed.builder import SourceBuilder
from tilewise.distributed.cluster import local_farm
from tilewise.distributed.device import DeviceJob, FarmError, KernelSource, device_resource
from tilewise.distributed.runner import DaskRunner
from tilewise.distributed.security import farm_security
from tilewise.distributed.status import DeviceStatus, FarmStatus, device_target, farm_status
from tilewise.distributed.worker import DeviceWorkerOptions, serve_device

__all__ = [
    "DaskRunner",
    "DeviceJob",
    "DeviceStatus",
    "DeviceWorkerOptions",
    "FarmError",
    "FarmStatus",
    "KernelSource",
    "SourceBuilder",
    "device_resource",
    "device_target",
    "farm_security",
    "farm_status",
    "local_farm",
    "serve_device",
]
