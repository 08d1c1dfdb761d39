"""``tilewise farm``: run a device worker and see what the farm holds; and the
``--farm`` options through which ``tilewise tune`` measures on it.

    dask scheduler --tls-ca-file ca.pem --tls-cert sched.pem --tls-key sched-key.pem
    tilewise farm worker --scheduler tls://farm:8786 --device zen4 --tls-ca ca.pem \\
        --tls-cert worker.pem --tls-key worker-key.pem
    tilewise farm status --scheduler tls://farm:8786 --json --tls-ca ...
    tilewise tune gemm M=512 N=512 K=512 --farm tls://farm:8786 --device zen4 --tls-ca ...

The scheduler is Dask's own; docs/farm.md says how to make the certificates.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

#: Seconds a command waits to reach the scheduler.
CONNECT_TIMEOUT_S = 10


def add_tls_options(parser: argparse.ArgumentParser) -> None:
    """``--tls-ca``, ``--tls-cert``, ``--tls-key``: all three, or none for a farm on
    one trusted machine."""
    parser.add_argument("--tls-ca", metavar="FILE", help="the farm's CA certificate (PEM)")
    parser.add_argument("--tls-cert", metavar="FILE", help="this party's certificate (PEM)")
    parser.add_argument("--tls-key", metavar="FILE", help="this party's private key (PEM)")


def add_farm_parser(sub: Any) -> None:
    """The ``tilewise farm`` command and its ``worker`` and ``status`` verbs."""
    farm = sub.add_parser("farm", help="the measurement farm: device workers and status")
    verbs = farm.add_subparsers(dest="farm_command", required=True)
    worker = verbs.add_parser("worker", help="serve this machine as one device of a farm")
    worker.add_argument("--scheduler", required=True, metavar="ADDRESS",
                        help="the Dask scheduler, e.g. tls://farm:8786")
    worker.add_argument("--device", metavar="NAME",
                        help="the device kind tuners ask for (resource device-NAME; "
                        "default: machine and ISA, e.g. x86_64-avx512)")
    worker.add_argument("--target", default="c",
                        help="the target this device describes (default: c, this host)")
    worker.add_argument("--name", help="the worker's name in the farm "
                        "(default: DEVICE-HOST-PID)")
    add_tls_options(worker)
    worker.set_defaults(func=cmd_farm_worker)
    status = verbs.add_parser("status", help="devices, their targets, busy or idle, queues")
    status.add_argument("--scheduler", required=True, metavar="ADDRESS")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    add_tls_options(status)
    status.set_defaults(func=cmd_farm_status)


def add_farm_tune_options(tune: argparse.ArgumentParser) -> None:
    """``tilewise tune --farm ADDRESS --device NAME``: measure on the farm's devices of
    that kind, for the target they describe."""
    tune.add_argument("--farm", metavar="ADDRESS",
                      help="measure on this Dask farm's devices (see 'tilewise farm')")
    tune.add_argument("--device", metavar="NAME", help="with --farm: the device kind")
    add_tls_options(tune)


def _security(opts: argparse.Namespace) -> Any:
    from .distributed import farm_security

    return farm_security(opts.tls_ca, opts.tls_cert, opts.tls_key)


def _address(address: str, security: Any) -> str:
    from .distributed.security import farm_address

    return farm_address(address, security)


def _connect(address: str, security: Any) -> Any:
    from .distributed.lazy import import_distributed

    distributed = import_distributed()
    return distributed.Client(_address(address, security), security=security,
                              timeout=CONNECT_TIMEOUT_S, set_as_default=False)


def cmd_farm_worker(opts: argparse.Namespace) -> int:
    from .distributed import DeviceWorkerOptions, serve_device

    security = _security(opts)
    serve_device(DeviceWorkerOptions(_address(opts.scheduler, security), opts.device,
                                     opts.target, opts.name, security))
    return 0


def cmd_farm_status(opts: argparse.Namespace) -> int:
    from .distributed import farm_status

    with _connect(opts.scheduler, _security(opts)) as client:
        status = farm_status(client)
    if opts.json:
        print(json.dumps(status.to_json()))
        return 0
    print(f"farm at {status.scheduler}: {len(status.devices)} device(s)")
    width = max([len(d.name) for d in status.devices] + [4])
    for d in status.devices:
        state = "busy" if d.busy else "idle"
        print(f"  {d.name:{width}}  {d.kind}  {state}  {d.address}  "
              f"{d.target or '(describes no target)'}")
    for kind, n in sorted(status.queued.items()):
        print(f"queued for {kind}: {n}")
    return 0


def _check_farm_options(opts: argparse.Namespace) -> None:
    from .distributed import FarmError

    if opts.farm is None:
        if opts.device is not None or any((opts.tls_ca, opts.tls_cert, opts.tls_key)):
            raise FarmError("--device and --tls-* measure on a farm: give --farm ADDRESS")
        return
    if opts.device is None:
        raise FarmError("--farm needs --device NAME, the kind of device to measure on")
    if opts.target != "c":
        raise FarmError("with --farm the device describes its own target; leave --target out")


def tune_target(opts: argparse.Namespace) -> str:
    """The target ``tilewise tune`` instantiates its templates for: ``--target``, or
    with ``--farm`` the one the farm's ``--device`` devices describe."""
    _check_farm_options(opts)
    if opts.farm is None:
        return str(opts.target)
    from .distributed import device_target, farm_status

    with _connect(opts.farm, _security(opts)) as client:
        return device_target(farm_status(client), opts.device)


def farm_measure_option(opts: argparse.Namespace) -> Any:
    """With ``--farm``, a SourceBuilder here and a DaskRunner on the farm's devices,
    with the command's timing options; None without."""
    if opts.farm is None:
        return None
    from .autotune import measure_option
    from .distributed import DaskRunner, SourceBuilder

    security = _security(opts)
    runner = DaskRunner(
        _address(opts.farm, security),
        device=opts.device,
        number=opts.number,
        repeat=opts.repeat,
        min_repeat_ms=opts.min_repeat_ms,
        timeout=opts.timeout,
        compile_timeout=opts.timeout,
        security=security,
    )
    builder = SourceBuilder(timeout=opts.timeout)
    # a batch keeps every device busy, however few cores generate the source here
    batch = max(builder.n_parallel, runner.device_count())
    return measure_option(builder=builder, runner=runner, batch_size=batch)


def close_measure(option: Any, finished: bool) -> None:
    """End an option's build pool (at once where the run was interrupted: the builds
    under way are abandoned rather than keep the command from exiting) and its
    connection to the farm (from :func:`farm_measure_option`; none for a local one)."""
    option.builder.close(wait=finished)
    close = getattr(option.runner, "close", None)
    if close is not None:
        close()


def farm_report(option: Any) -> dict[str, Any]:
    """What the tune report adds for a farm: how many results each device (worker)
    measured; nothing for a local option."""
    devices = getattr(option.runner, "devices_used", None)
    return {} if devices is None else {"devices": dict(sorted(devices.items()))}
