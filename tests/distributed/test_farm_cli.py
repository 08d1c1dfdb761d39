"""The farm as a product: a Dask scheduler in this process with TLS and client
certificates (made by the openssl commands of docs/farm.md), two ``tilewise farm
worker`` processes on loopback, ``tilewise farm status``, ``tilewise tune --farm``, a
client without a certificate refused, and a device killed mid-measurement."""

import asyncio
import importlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from tilewise.autotune import Database, MeasureInput, Task  # noqa: E402
from tilewise.cli import main  # noqa: E402
from tilewise.distributed import (  # noqa: E402
    DaskRunner,
    FarmError,
    SourceBuilder,
    farm_security,
)
from tilewise.distributed.device import measure_on_device  # noqa: E402
from tilewise.target import Target  # noqa: E402

pytestmark = [pytest.mark.compiles, pytest.mark.slow]

AUTOTUNE_TESTS = Path(__file__).resolve().parents[1] / "autotune"
sys.path.insert(0, str(AUTOTUNE_TESTS))
importlib.import_module("kernel_templates")  # registers test_gemm here

DEVICE = "loopback"
OPENSSL = shutil.which("openssl")


def make_certificates(where: Path) -> dict[str, dict[str, str]]:
    """A CA, and a certificate signed by it for the scheduler, the workers and the
    client (docs/farm.md, step 1)."""

    def openssl(*args: str) -> None:
        subprocess.run([OPENSSL, *args], cwd=where, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", "ca-key.pem", "-out", "ca.pem", "-subj", "/CN=tilewise farm CA")
    parties = {}
    for party in ("scheduler", "worker", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{party}-key.pem",
                "-out", f"{party}.csr", "-subj", f"/CN={party}")
        openssl("x509", "-req", "-days", "1", "-in", f"{party}.csr", "-CA", "ca.pem",
                "-CAkey", "ca-key.pem", "-CAcreateserial", "-out", f"{party}.pem")
        parties[party] = {"ca": str(where / "ca.pem"), "cert": str(where / f"{party}.pem"),
                          "key": str(where / f"{party}-key.pem")}
    return parties


def tls_args(party: dict[str, str]) -> list[str]:
    return ["--tls-ca", party["ca"], "--tls-cert", party["cert"], "--tls-key", party["key"]]


class Farm:
    """A scheduler in this process and device worker processes; TLS where openssl is
    here, else plain TCP (and the TLS checks skip)."""

    def __init__(self, where: Path) -> None:
        self.where = where
        self.certs = make_certificates(where) if OPENSSL else None
        security = (farm_security(**self.certs["scheduler"]) if self.certs else None)
        self.cluster = distributed.LocalCluster(
            n_workers=0, processes=False, host="127.0.0.1", dashboard_address=None,
            protocol="tls://" if self.certs else "tcp://", security=security)
        self.address = self.cluster.scheduler_address
        self.workers: dict[str, subprocess.Popen] = {}

    def tls(self, party: str) -> list[str]:
        return tls_args(self.certs[party]) if self.certs else []

    def security(self, party: str):
        return farm_security(**self.certs[party]) if self.certs else None

    def start_worker(self, name: str) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(AUTOTUNE_TESTS), os.environ.get("PYTHONPATH", "")]))
        log = open(self.where / f"{name}.log", "w")  # noqa: SIM115 (the process holds it)
        self.workers[name] = subprocess.Popen(
            [sys.executable, "-m", "tilewise", "farm", "worker", "--scheduler", self.address,
             "--device", DEVICE, "--name", name, *self.tls("worker")],
            stdout=log, stderr=subprocess.STDOUT, env=env)

    def wait_for_workers(self, n: int, timeout: float = 60) -> None:
        give_up = time.monotonic() + timeout
        while len(self.cluster.scheduler.workers) != n:
            dead = {k: p.returncode for k, p in self.workers.items() if p.poll() is not None}
            if time.monotonic() > give_up or (dead and len(dead) > len(self.workers) - n):
                logs = {k: (self.where / f"{k}.log").read_text()[-2000:] for k in self.workers}
                raise AssertionError(f"{n} workers did not join: {dead} {logs}")
            time.sleep(0.2)

    def close(self) -> None:
        for p in self.workers.values():
            if p.poll() is None:
                p.terminate()
        for p in self.workers.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        self.cluster.close()


@pytest.fixture
def farm(tmp_path_factory):
    f = Farm(tmp_path_factory.mktemp("farm"))
    try:
        for name in ("dev-a", "dev-b"):
            f.start_worker(name)
        f.wait_for_workers(2)
        yield f
    finally:
        f.close()


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def status(capsys, farm) -> dict:
    code, out, err = run(capsys, "farm", "status", "--scheduler", farm.address, "--json",
                         *farm.tls("client"))
    assert code == 0, err
    return json.loads(out)


def status_lists_the_devices_with_their_own_targets(capsys, farm):
    s = status(capsys, farm)
    assert [(d["name"], d["device"], d["busy"]) for d in s["devices"]] == [
        ("dev-a", DEVICE, False), ("dev-b", DEVICE, False)]
    assert {d["target"] for d in s["devices"]} == {str(Target.from_str("c"))}
    assert s["queued"] == {DEVICE: 0}
    code, out, _ = run(capsys, "farm", "status", "--scheduler", farm.address,
                       *farm.tls("client"))
    assert code == 0 and "2 device(s)" in out and "dev-a" in out and "idle" in out
    # a measurement for a kind that no device offers waits at the scheduler
    with distributed.Client(farm.address, security=farm.security("client"),
                            set_as_default=False) as client:
        ghost = client.submit(sum, [1], resources={"device-ghost": 1}, pure=False)
        give_up = time.monotonic() + 10
        while status(capsys, farm)["queued"].get("ghost") != 1:
            assert time.monotonic() < give_up
            time.sleep(0.1)
        ghost.cancel()


def identity(address: str, ca: str, cert: dict[str, str] | None):
    """The scheduler's identity asked over TLS that trusts ``ca``, showing ``cert``
    (None: no certificate at all)."""
    context = ssl.create_default_context(cafile=ca)
    context.check_hostname = False  # as Dask: the farm's own CA is what is trusted
    if cert is not None:
        context.load_cert_chain(cert["cert"], cert["key"])

    async def ask():
        comm = await distributed.comm.connect(address, timeout=5, ssl_context=context,
                                              require_encryption=True)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    return asyncio.run(ask())


def a_client_without_a_certificate_is_refused(capsys, farm):
    if farm.certs is None:
        return  # openssl is not installed: a farm without TLS
    assert farm.address.startswith("tls://")
    ca = farm.certs["client"]["ca"]
    assert identity(farm.address, ca, farm.certs["client"])["type"] == "Scheduler"
    with pytest.raises(OSError):  # ssl.SSLError and Dask's CommClosedError are OSErrors
        identity(farm.address, ca, None)
    # a certificate that the farm's CA did not sign
    stranger = farm.where / "stranger"
    stranger.mkdir()
    with pytest.raises(OSError):
        identity(farm.address, ca, make_certificates(stranger)["client"])
    # nor does the farm speak plain TCP
    plain = farm.address.replace("tls://", "tcp://")
    code, _, err = run(capsys, "farm", "status", "--scheduler", plain, *farm.tls("client"))
    assert code == 2 and "tls://" in err


def tune_measures_on_the_farm(capsys, farm, tmp_path):
    db_path = tmp_path / "farm.db"
    code, out, err = run(
        capsys, "tune", "gemm", "M=32", "N=32", "K=32", "--trials", "4", "--tuner", "grid",
        "--confirm", "0", "--number", "1", "--repeat", "2", "--min-repeat-ms", "0",
        "--db", str(db_path), "--json", "--farm", farm.address, "--device", DEVICE,
        *farm.tls("client"))
    assert code == 0, err
    report = json.loads(out)
    assert report["trials"] == 4 and report["errors"] == 0
    # the task is keyed by the target the device described
    assert report["task"]["target"] == str(Target.from_str("c"))
    assert sum(report["devices"].values()) == 4 and set(report["devices"]) <= {"dev-a", "dev-b"}
    records = Database(db_path).records(Task("gemm", (32, 32, 32, "float32"),
                                             report["task"]["target"]))
    measured = [r for r in records if not r.result.rejected]
    assert len(measured) == 4 and all(r.result.ok for r in measured)
    assert {r.result.device for r in measured} <= {"dev-a", "dev-b"}  # who measured each


def model_tune_measures_on_the_farm(capsys, farm, tmp_path):
    from tilewise import models

    model = tmp_path / "bert.onnx"
    model.write_bytes(models.build("bert_layer", seq=16, hidden=64, heads=4, ffn=128)
                      .SerializeToString())
    db_path = tmp_path / "model.db"
    code, out, err = run(
        capsys, "model", "tune", str(model), "--trials", "16", "--tuner", "random",
        "--no-transfer", "--no-confirm", "--db", str(db_path), "--json",
        "--farm", farm.address, "--device", DEVICE, *farm.tls("client"))
    assert code == 0, err
    report = json.loads(out)
    assert report["trials"] == 16 and report["target"] == str(Target.from_str("c"))
    assert report["in_flight"] == 2  # two tasks' rounds of 8 out at once, two devices
    db = Database(db_path)
    measured = [r for key in db.tasks() for r in db.records(key) if not r.result.rejected]
    assert len(measured) >= 16
    assert all(r.result.ok for r in measured), {r.result.error_msg[:300] for r in measured
                                                 if not r.result.ok}
    assert {r.result.device for r in measured} <= {"dev-a", "dev-b"}
    code, _, err = run(capsys, "model", "tune", str(model), "--trials", "8", "--threads", "2",
                       "--farm", farm.address, "--device", DEVICE, *farm.tls("client"))
    assert code == 2 and "describes its own cores" in err


def tune_refuses_a_device_kind_the_farm_lacks(capsys, farm):
    code, _, err = run(capsys, "tune", "gemm", "M=32", "N=32", "K=32", "--farm",
                       farm.address, "--device", "no-such-kind", *farm.tls("client"))
    assert code == 2 and "no device of kind 'no-such-kind'" in err and DEVICE in err


def first_attempt_sleeps(where: Path, seconds: float):
    """A device job that, the first time it sees a config, says which process runs it
    and sleeps before measuring (a local function: Dask ships it by value)."""

    def job(device_job):
        marker = where / f"{device_job.inp.config.index}.pid"
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return measure_on_device(device_job)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        time.sleep(seconds)
        return measure_on_device(device_job)

    return job


def a_device_killed_mid_measurement(capsys, farm, tmp_path):
    """SIGKILL to the device measuring a candidate: Dask runs it on the other device,
    and every result is kept; with the last device gone, the runner raises instead of
    waiting for ever. (Last: it kills the farm.)"""
    target = status(capsys, farm)["devices"][0]["target"]
    task = Task("test_gemm", (16,), target)
    inputs = [MeasureInput(task, task.config_space.get(0))]
    builder = SourceBuilder(n_parallel=1, timeout=60)
    builds = builder.build(inputs[:1])
    builder.close()
    runner = DaskRunner(farm.address, device=DEVICE, number=1, repeat=1, timeout=30,
                        security=farm.security("client"))
    runner.job = first_attempt_sleeps(tmp_path, 30)
    out: list = []
    thread = threading.Thread(target=lambda: out.append(runner.run(inputs[:1], builds)))
    thread.start()
    marker = tmp_path / f"{inputs[0].config.index}.pid"
    give_up = time.monotonic() + 60
    while not (marker.exists() and marker.read_text()):
        assert time.monotonic() < give_up and thread.is_alive(), "no device started it"
        time.sleep(0.1)
    victim = next(n for n, p in farm.workers.items() if p.pid == int(marker.read_text()))
    while not any(d["busy"] for d in status(capsys, farm)["devices"] if d["name"] == victim):
        assert time.monotonic() < give_up, "the device never showed busy"
        time.sleep(0.2)
    farm.workers[victim].send_signal(signal.SIGKILL)
    thread.join(60)
    assert not thread.is_alive()
    (result,) = out[0]
    assert result.ok, result.error_msg
    survivor = ({"dev-a", "dev-b"} - {victim}).pop()
    assert runner.measured_on == [survivor]

    # the last device dies too: no device comes back, so the tuner is told, not hung
    (tmp_path / "again").mkdir()
    runner.job = first_attempt_sleeps(tmp_path / "again", 30)
    runner.device_wait_s = 1
    marker = tmp_path / "again" / f"{inputs[0].config.index}.pid"
    thread = threading.Thread(target=lambda: out.append(_raised(runner, inputs[:1], builds)))
    thread.start()
    while not (marker.exists() and marker.read_text()):
        assert time.monotonic() < give_up + 60 and thread.is_alive()
        time.sleep(0.1)
    farm.workers[survivor].send_signal(signal.SIGKILL)
    thread.join(60)
    assert isinstance(out[1], FarmError) and "left the farm" in str(out[1])
    runner.close()


def _raised(runner, inputs, builds):
    try:
        return runner.run(inputs, builds)
    except FarmError as err:
        return err



def test_a_farm_of_two_device_workers(capsys, farm, tmp_path):
    """One farm, one test (its processes take seconds to start): each step is a
    function above, in the order a user meets them."""
    status_lists_the_devices_with_their_own_targets(capsys, farm)
    a_client_without_a_certificate_is_refused(capsys, farm)
    tune_measures_on_the_farm(capsys, farm, tmp_path)
    model_tune_measures_on_the_farm(capsys, farm, tmp_path)
    tune_refuses_a_device_kind_the_farm_lacks(capsys, farm)
    a_device_killed_mid_measurement(capsys, farm, tmp_path)
