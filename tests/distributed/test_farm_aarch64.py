"""An aarch64 device on this machine: a real Dask scheduler and one ``tilewise farm
worker --target "c -mtriple=aarch64-linux-gnu"`` on loopback, which cross-compiles each
candidate and runs it under qemu-user. ``tilewise tune --farm`` tunes a small gemm
through it: every trial checked against NumPy, keyed by the device's aarch64 target,
and no speed reported. Skips without gcc-aarch64-linux-gnu and qemu-user."""

import json
import os
import subprocess
import sys
import time

import pytest

distributed = pytest.importorskip("distributed")

from tilewise.autotune import Database, Task  # noqa: E402
from tilewise.cli import main  # noqa: E402
from tilewise.errors import BuildError  # noqa: E402
from tilewise.runtime.executable import require_programs  # noqa: E402
from tilewise.target import Target  # noqa: E402

ARM = "c -mtriple=aarch64-linux-gnu"


def _tools_missing() -> str | None:
    target = Target.from_str(ARM)
    try:
        require_programs(target.compiler, target.emulator)
    except BuildError as err:
        return str(err)
    return None


pytestmark = [
    pytest.mark.compiles, pytest.mark.slow,
    pytest.mark.skipif(_tools_missing() is not None,
                       reason=f"no aarch64 toolchain: {_tools_missing()}"),
]


@pytest.fixture
def arm_farm(tmp_path):
    """A scheduler in this process and one aarch64 device worker process, ``arm0``."""
    cluster = distributed.LocalCluster(n_workers=0, processes=False, host="127.0.0.1",
                                       protocol="tcp://", dashboard_address=None)
    log = open(tmp_path / "arm0.log", "w")  # noqa: SIM115 (the process holds it)
    worker = subprocess.Popen(
        [sys.executable, "-m", "tilewise", "farm", "worker", "--scheduler",
         cluster.scheduler_address, "--device", "arm0", "--target", ARM, "--name", "arm0-w"],
        stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        give_up = time.monotonic() + 60
        while not cluster.scheduler.workers:
            if worker.poll() is not None or time.monotonic() > give_up:
                raise AssertionError((tmp_path / "arm0.log").read_text()[-2000:])
            time.sleep(0.2)
        yield cluster.scheduler_address
    finally:
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
        cluster.close()


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_an_aarch64_device_under_qemu_tunes_a_small_gemm(capsys, arm_farm, tmp_path):
    arm = str(Target.from_str(ARM))
    code, out, err = run(capsys, "farm", "status", "--scheduler", arm_farm, "--json")
    assert code == 0, err
    (device,) = json.loads(out)["devices"]
    assert (device["name"], device["device"], device["target"]) == ("arm0-w", "arm0", arm)

    db_path = tmp_path / "arm.db"
    tune = ["tune", "gemm", "M=32", "N=32", "K=32", "--tuner", "random", "--confirm", "0",
            "--number", "1", "--repeat", "2", "--db", str(db_path), "--farm", arm_farm,
            "--device", "arm0"]
    code, out, err = run(capsys, *tune, "--trials", "4", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["trials"] == 4 and report["errors"] == 0, report
    assert report["devices"] == {"arm0-w": 4}
    # keyed by the device's aarch64 target, apart from the host's; no speed reported
    assert report["task"]["target"] == arm != str(Target.from_str("c"))
    assert report["emulated"] and report["best_gflops"] is None
    db = Database(db_path)
    records = db.records(Task("gemm", (32, 32, 32, "float32"), arm))
    assert len(records) == 4
    # every trial checked against NumPy on the device (a wrong answer is an error record)
    assert all(r.result.ok and r.result.device == "arm0-w" for r in records)
    assert all(r.target["machine"] == "aarch64" for r in records)
    assert not db.records(Task("gemm", (32, 32, 32, "float32"), "c"))

    code, out, err = run(capsys, *tune, "--trials", "2")
    assert code == 0, err
    assert "times under emulation are not speed" in out and "GFLOP/s" not in out
    assert "resumed 4" in out and "errors 0" in out

