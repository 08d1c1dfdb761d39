"""Tune a gemm on a farm of devices behind a Dask scheduler.

Each device is a Dask worker that declares a resource naming its kind, so the
scheduler gives it one measurement at a time. On the machines of the farm:

    # the tracker, anywhere the devices and the tuner can reach
    dask scheduler --port 8786

    # on each zen4 device: one worker, one measurement at a time; a worker must
    # not be a daemonic process, because it runs each kernel in a child process
    DASK_DISTRIBUTED__WORKER__DAEMON=False \
        dask worker tcp://SCHEDULER:8786 --resources "device-zen4=1" --nthreads 1

Every device needs tilewise installed (``pip install 'tilewise[distributed]'``)
and a C compiler: the tuner sends generated C, each device compiles it with its
own toolchain (``$CC``, ``-march=native`` there) and measures it in an isolated
child, checked against NumPy. Then, from the tuner's machine:

    python examples/farm_tune_gemm.py tcp://SCHEDULER:8786 --trials 64

Without a farm at hand, ``--local 2`` starts two device workers on this machine.
Templates of your own must be importable on the devices too: install them there,
or ``client.upload_file("my_templates.py")`` before tuning.
"""

from __future__ import annotations

import argparse
import contextlib

import tilewise.ops  # noqa: F401  (registers the gemm template)
from tilewise.autotune import Database, MeasureOption, RandomTuner, Task
from tilewise.distributed import DaskRunner, SourceBuilder, local_farm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scheduler", nargs="?", help="tcp://host:8786 of a running farm")
    parser.add_argument("--local", type=int, metavar="N", help="start N local devices instead")
    parser.add_argument("--device", default="zen4", help="device kind (resource device-KIND)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--db", default="farm_gemm.db")
    args = parser.parse_args()
    if (args.scheduler is None) == (args.local is None):
        parser.error("give a scheduler address or --local N")

    # The target describes the devices, not this machine: cores are theirs.
    task = Task("gemm", (args.size, args.size, args.size, "float32"), target="c -cores=1")
    with contextlib.ExitStack() as stack:
        scheduler = args.scheduler
        if args.local:
            farm = stack.enter_context(local_farm(args.local, device=args.device))
            scheduler = farm.scheduler_address
        builder = stack.enter_context(contextlib.closing(SourceBuilder(n_parallel=2)))
        runner = stack.enter_context(
            DaskRunner(scheduler, device=args.device, number=4, repeat=3, timeout=10)
        )
        # a batch of a few candidates per device keeps every device busy
        option = MeasureOption(builder, runner, batch_size=8)
        summary = RandomTuner(task, seed=0).tune(args.trials, option, database=Database(args.db))

    print(f"{task}: {summary.measured} measured, {summary.errors} failed")
    if summary.best_flops:
        print(f"best {summary.best_flops / 1e9:.2f} GFLOP/s with {summary.best_config}")


if __name__ == "__main__":
    main()
