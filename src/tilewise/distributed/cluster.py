"""A farm on this machine, for tests and demos: a Dask LocalCluster whose workers are
each one device (one resource unit, so one measurement at a time).

Example::

    with local_farm(n_workers=2, device="zen4") as cluster, Client(cluster) as client:
        runner = DaskRunner(client, device="zen4")
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tilewise.distributed.device import device_resource
from tilewise.distributed.lazy import import_distributed


@contextmanager
def local_farm(
    n_workers: int = 2, device: str = "zen4", threads_per_worker: int = 1, **cluster_kwargs: Any
) -> Iterator[Any]:
    """A started ``dask.distributed.LocalCluster`` of ``n_workers`` worker processes, each
    offering ``{"device-<device>": 1}``; closed on exit. ``cluster_kwargs`` go to
    LocalCluster (e.g. ``dashboard_address=":8787"``)."""
    distributed = import_distributed()
    import dask

    options: dict[str, Any] = {"processes": True, "dashboard_address": None}
    options.update(cluster_kwargs)
    # Workers start isolated children for the kernels, which a daemonic process may not;
    # the nanny reads this whenever it (re)starts a worker, so hold it for the farm's life.
    with dask.config.set({"distributed.worker.daemon": False}):
        with distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            resources={device_resource(device): 1},
            **options,
        ) as cluster:
            yield cluster
