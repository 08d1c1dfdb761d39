"""The device worker's description of itself, the check that a candidate was built for
it, and the TLS and --farm options, without a farm."""

from types import SimpleNamespace

import pytest

pytest.importorskip("distributed")

import tilewise.ops  # noqa: E402, F401  (registers gemm)
from tilewise.autotune import MeasureInput, Task  # noqa: E402
from tilewise.cli import main  # noqa: E402
from tilewise.distributed import DeviceJob, FarmError, KernelSource  # noqa: E402
from tilewise.distributed.security import farm_address, farm_security  # noqa: E402
from tilewise.distributed.worker import (  # noqa: E402
    INFO_KEY,
    DeviceWorkerOptions,
    check_job_target,
    default_device,
    device_worker_kwargs,
)
from tilewise.target import Target  # noqa: E402

AVX2 = "c -cores=1 -isa=avx2"


def test_a_device_worker_measures_one_candidate_at_a_time_and_describes_its_target():
    kwargs = device_worker_kwargs(DeviceWorkerOptions("tcp://farm:8786", device="v3",
                                                      target=AVX2, name="w"))
    assert kwargs["nthreads"] == 1 and kwargs["resources"] == {"device-v3": 1}
    info = kwargs["startup_information"][INFO_KEY](None)
    assert info["device"] == "v3" and info["target"] == str(Target.from_str(AVX2))
    assert info["description"]["isa"] == "avx2" and info["description"]["vector_bits"] == 256
    host = device_worker_kwargs(DeviceWorkerOptions("tcp://farm:8786"))
    device = default_device(Target.from_str("c"))
    assert host["resources"] == {f"device-{device}": 1} and host["name"].startswith(device)
    with pytest.raises(FarmError, match="'c' and 'opencl' targets"):
        device_worker_kwargs(DeviceWorkerOptions("tcp://farm:8786", target="cuda"))
    gpu = device_worker_kwargs(DeviceWorkerOptions(
        "tcp://farm:8786", target="opencl -local-mem=64K -max-threads=256"))
    info = gpu["startup_information"][INFO_KEY](None)
    assert info["target"] == "opencl -device=0 -local-mem=64K -max-threads=256"
    assert info["device"].startswith("opencl") and "device" in info["description"]


def job_for(target: str) -> DeviceJob:
    task = Task("gemm", (8, 8, 8, "float32"), target)
    kernel = KernelSource("k", "", (), (), str(Target.from_str(target)))
    return DeviceJob(MeasureInput(task, task.config_space.get(0)), kernel, None, 1.0)


def test_a_device_refuses_a_candidate_built_for_another_target():
    kwargs = device_worker_kwargs(DeviceWorkerOptions("tcp://farm:8786", target=AVX2))
    worker = SimpleNamespace(name="w", startup_information=kwargs["startup_information"])
    check_job_target(worker, job_for(AVX2))
    with pytest.raises(FarmError, match="describes target"):
        check_job_target(worker, job_for("c -cores=1 -isa=sse4"))
    check_job_target(SimpleNamespace(name="plain", startup_information={}), job_for(AVX2))


def test_tls_takes_all_three_files(tmp_path):
    assert farm_security(None, None, None) is None
    with pytest.raises(FarmError, match="--tls-key missing"):
        farm_security("ca.pem", "cert.pem", None)
    with pytest.raises(FarmError, match="no such file"):
        farm_security(str(tmp_path / "ca.pem"), "cert.pem", "key.pem")
    assert farm_address("farm:8786", None) == "tcp://farm:8786"
    assert farm_address("farm:8786", object()) == "tls://farm:8786"
    with pytest.raises(FarmError, match="tls://"):
        farm_address("tcp://farm:8786", object())


@pytest.mark.parametrize("argv, message", [
    (["--device", "zen4"], "give --farm ADDRESS"),
    (["--farm", "tcp://127.0.0.1:9"], "--farm needs --device"),
    (["--farm", "tcp://127.0.0.1:9", "--device", "x", "--target", "c -cores=1"],
     "leave --target out"),
    (["--farm", "tcp://127.0.0.1:9", "--device", "x", "--tls-ca", "ca.pem"],
     "--tls-cert, --tls-key missing"),
])
def test_tune_farm_options_are_checked_before_connecting(capsys, argv, message):
    assert main(["tune", "gemm", "M=8", "N=8", "K=8", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_an_aarch64_device_describes_its_own_machine_or_refuses_to_serve(capsys, monkeypatch):
    arm = Target.from_str("c -mtriple=aarch64-linux-gnu -emulator=qemu-aarch64")
    assert default_device(arm) == "aarch64-neon-emulated"
    monkeypatch.setenv("CC_aarch64_linux_gnu", "no-such-aarch64-gcc")
    assert main(["farm", "worker", "--scheduler", "tcp://127.0.0.1:9",
                 "--target", "c -mtriple=aarch64-linux-gnu"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "cannot run aarch64-linux-gnu code: no-such-aarch64-gcc is not installed" in err
