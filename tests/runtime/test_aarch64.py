"""aarch64 on this machine: its target (its own vectors, never the host's), kernels
cross-compiled into programs of their own and run under qemu-user, checked against
NumPy, and kernels that crash, hang or compute wrongly as error records. The tests
that compile skip without Debian's gcc-aarch64-linux-gnu and qemu-user."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

import tilewise as tw
import tilewise.ops  # noqa: F401  (registers gemm)
from tilewise import env
from tilewise.autotune import (
    Database,
    GridSearchTuner,
    LocalBuilder,
    LocalRunner,
    MeasureOption,
    Task,
)
from tilewise.autotune.measure.workload import check_measurable
from tilewise.cli import main
from tilewise.errors import BuildError, ModelError, RuntimeCallError, TargetError, TuningError
from tilewise.model import check_target
from tilewise.runtime import ExecutableModule
from tilewise.runtime.executable import require_programs
from tilewise.target import Target

ARM = "c -mtriple=aarch64-linux-gnu"
GEMM = (20, 24, 16, "float32")


def _tools_missing() -> str | None:
    target = Target.from_str(ARM)
    try:
        require_programs(target.compiler, target.emulator)
    except BuildError as err:
        return str(err)
    return None


needs_tools = pytest.mark.skipif(_tools_missing() is not None,
                                 reason=f"no aarch64 toolchain: {_tools_missing()}")


def test_the_aarch64_target_describes_its_own_machine_not_the_hosts(monkeypatch):
    monkeypatch.delenv("CC_aarch64_linux_gnu", raising=False)
    arm = Target.from_str(ARM)
    assert (arm.machine, arm.isa, arm.vector_bits, arm.cores, arm.mcpu) == (
        "aarch64", "neon", 128, 1, "generic")
    assert arm.vector_lanes(4) == 4 and arm.vector_registers == 32
    assert arm.compiler == "aarch64-linux-gnu-gcc" and not arm.vector_math
    assert Target.from_str(str(arm)) == arm and str(arm).startswith(f"{ARM} -emulator=")
    if os.uname().machine != "aarch64":
        assert arm.emulator == "qemu-aarch64" and arm.emulated
        assert arm.describe()["emulated"] and arm.describe()["machine"] == "aarch64"
    assert "-static" in arm.cflags and "-shared" not in arm.cflags
    assert Target.from_str(ARM + " -emulator=none").emulator == ""
    for bad, message in [(ARM + " -isa=avx2", "not an ISA level of aarch64"),
                         (ARM + " -vector-bits=256", "128 bits, not 256"),
                         (ARM + " -mcpu=native", "-mcpu=native is this host's"),
                         (ARM + " -libmvec=1", "x86-64 glibc's"),
                         ("c -mtriple=riscv64-linux-gnu", "unknown -mtriple"),
                         ("c -emulator=qemu-aarch64", "name it with -mtriple")]:
        with pytest.raises(TargetError, match=message):
            Target.from_str(bad)


def test_templates_take_the_aarch64_space_and_key_apart_from_the_hosts():
    arm, host = Task("gemm", GEMM, ARM), Task("gemm", GEMM, "c")
    assert arm.key != host.key and "-mtriple=aarch64-linux-gnu" in arm.target
    def values(knob):
        return [e.val for e in arm.config_space.knob(knob).entities]

    assert values("nr") == [4, 8, 12, 16]  # of 128-bit vectors
    assert values("kernel") == ["loops"]  # the x86 micro-kernel is not offered
    with pytest.raises(ModelError, match="tune its operators"):
        check_target(ARM)


def test_missing_tools_are_one_clear_error(monkeypatch):
    monkeypatch.setenv("CC_aarch64_linux_gnu", "no-such-aarch64-gcc")
    with pytest.raises(TuningError, match="no-such-aarch64-gcc is not installed here"):
        check_measurable(Task("gemm", GEMM, ARM))
    assert Target.from_str(ARM).compiler == "no-such-aarch64-gcc"
    with pytest.raises(BuildError, match="apt-get install qemu-user"):
        require_programs("qemu-no-such-arch")
    with pytest.raises(BuildError, match="apt-get install gcc-riscv64-linux-gnu"):
        require_programs("riscv64-linux-gnu-gcc")


def _is_aarch64_elf(path: str) -> bool:
    header = Path(path).read_bytes()[:20]
    return header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183


@needs_tools
def test_a_gemm_built_for_aarch64_runs_under_qemu_and_matches_numpy():
    task = Task("gemm", GEMM, ARM)
    s, args = task.instantiate(task.config_space.fallback)
    mod = tw.build(s, args, target=ARM, name="gemm_arm")
    assert isinstance(mod, ExecutableModule) and _is_aarch64_elf(mod.artifact.exe_path)
    assert mod.artifact.emulator == "qemu-aarch64"
    rng = np.random.default_rng(1)
    a = rng.standard_normal((20, 16)).astype("float32")
    b = rng.standard_normal((16, 24)).astype("float32")
    c = np.zeros((20, 24), "float32")
    mod(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)
    timing = mod.time_evaluator(number=2, repeat=3, min_repeat_ms=1)(a, b, c)
    assert len(timing.results) == 3 and all(t > 0 for t in timing.results)
    with pytest.raises(RuntimeCallError, match="expected float32"):
        mod(a, b, c.astype("float64"))


def _programs_running(where: str) -> list[str]:
    """Processes whose command line names a file under ``where`` (our programs)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if where in cmd and str(os.getpid()) != proc.name:
            found.append(cmd)
    return found


@needs_tools
def test_aarch64_candidates_are_checked_and_faults_become_error_records(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "autotune"))
    import kernel_templates  # registers test_faulty_gemm (the builders import it too)

    task = Task("test_faulty_gemm", (16,), ARM)
    db = Database(tmp_path / "t.db")
    builder = LocalBuilder(n_parallel=1, timeout=60)
    try:
        option = MeasureOption(builder, LocalRunner(number=1, repeat=1, timeout=3),
                               batch_size=5)
        summary = GridSearchTuner(task, 0).tune(8, option, database=db)
    finally:
        builder.close()
    # ok, wrong (WRONG_ANSWER), crash (RUNTIME: qemu dies of SIGSEGV), hang (TIMEOUT)
    kernel_templates.assert_faulty_records(db, task, summary)
    crashed = [r for r in db.records(task) if r.config["mode"].val == "crash"]
    assert all("under qemu-aarch64" in r.result.error_msg for r in crashed)
    # a hung kernel's emulator goes with the measuring child killed at the time limit
    give_up = time.monotonic() + 5
    while _programs_running(str(env.cache_dir() / "programs")):
        assert time.monotonic() < give_up, _programs_running(str(env.cache_dir()))
        time.sleep(0.1)


@needs_tools
def test_tune_reports_no_speed_under_emulation(capsys, tmp_path):
    """Nor does it re-measure the leaders unless asked: the emulator's times rank
    nothing on the device."""
    tune = ["tune", "gemm", "M=16", "N=16", "K=16", "--target", ARM, "--trials", "2",
            "--tuner", "random", "--db", str(tmp_path / "t.db")]
    code = main(tune)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "times under emulation are not speed" in out and "GFLOP/s" not in out
    assert "errors 0" in out and "-mtriple=aarch64-linux-gnu" in out
    assert "leaders not re-measured under emulation" in out
    assert len(Database(tmp_path / "t.db").all_records()) == 2
    code = main([*tune, "--confirm", "1", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert report["confirm"] == 1 and report["confirmed"] > 0
