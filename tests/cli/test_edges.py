"""Every mistake a user can make on the command line is one line and exit status 2; a
full disk or a damaged database loses nothing already stored; a tuning run ended by
SIGTERM or SIGKILL leaves no process behind."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tilewise.cli import main

GEMM = ["gemm", "M=8", "N=8", "K=8"]
CONV = ["conv2d_nchw", "N=1", "C=4", "H=4", "W=4", "K=4"]


@pytest.mark.parametrize("argv, message", [
    (["tune", *GEMM, "dtype=float13"], "unsupported dtype 'float13'"),
    (["tune", *CONV, "R=7", "S=7"], "a window of 7 (size 7, dilation 1) is larger than"),
    (["tune", *CONV, "R=3", "S=3", "dilation=3"], "a window of 7 (size 3, dilation 3)"),
    (["tune", "max_pool2d", "N=1", "C=4", "H=4", "W=4", "R=5", "S=5", "pad=0"],
     "a window of 5"),
    (["tune", "gemm", "M=1000000", "N=1000000", "K=1000000"], "too large to measure here"),
    (["tune", "gemm", "M=8", "N=8", "K=3000000000"], "K must be at most 2147483647"),
    (["tune", *GEMM, "--trials", "-5"], "argument --trials: must be a whole number from 1"),
    (["tune", *GEMM, "--trials", "0"], "argument --trials"),
    (["tune", *GEMM, "--trials", "1000000000000"], "argument --trials"),
    (["tune", *GEMM, "--repeat", "-1"], "argument --repeat"),
    (["tune", *GEMM, "--number", "0"], "argument --number"),
    (["tune", *GEMM, "--timeout", "-1"], "argument --timeout: must be a number above 0"),
    (["tune", *GEMM, "--timeout", "nan"], "argument --timeout"),
    (["tune", *GEMM, "--min-repeat-ms", "inf"], "argument --min-repeat-ms"),
    (["tune", *GEMM, "--confirm", "-3"], "argument --confirm"),
    (["tune", *GEMM, "--early-stopping", "0"], "argument --early-stopping"),
    (["tune", *GEMM, "--seed", "-1"], "argument --seed"),
    (["tune", *GEMM, "--target", "cuda"], "template gemm schedules for 'c' targets, not 'cuda'"),
    (["tune", *GEMM, "--target", "c -cores=100000"], "more threads than a machine has"),
    (["tune", *GEMM, "--db", "/proc/no/such/dir/t.db"], "cannot open the tuning database"),
    (["best", "--db", "/proc/no/such/t.db"], "no tuning database at /proc/no/such/t.db"),
    (["plot", "--db", "/proc/no/such/t.db"], "no tuning database at"),
    (["model", "bench", "resnet18", "--threads", "5000"], "argument --threads"),
    (["model", "bench", "resnet18", "--rounds", "0"], "argument --rounds"),
    (["model", "bench", "resnet18", "--tolerance", "-1"], "argument --tolerance"),
    (["model", "bench", "resnet18", "--seed", "-1"], "argument --seed"),
    (["model", "compile", "resnet18", "--target", "cuda", "-o", "x"],
     "models compile for 'c' targets"),
    (["model", "compile", "resnet18", "--target", "c -cores=100000", "-o", "x"],
     "more threads than a machine has"),
])
def test_each_mistake_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert message in err and err.count("\n") == 1 and not out, err


def test_a_gpu_target_without_its_gpu_is_one_line_and_exit_2(capsys):
    from tilewise.runtime.cuda import cuda_unavailable

    if not cuda_unavailable():
        pytest.skip("CUDA kernels run here")
    assert main(["tune", "gpu_gemm", "M=64", "N=64", "K=64", "--target", "cuda"]) == 2
    out, err = capsys.readouterr()
    assert "cannot measure on 'cuda -arch=sm_80': " in err and err.count("\n") == 1, err


def test_a_workload_larger_than_memory_is_refused_before_allocating(monkeypatch):
    """The runner checks too, for callers of the Python API, before making arrays."""
    from tilewise import autotune as at
    from tilewise.autotune.measure import workload
    from tilewise.errors import TuningError
    from tilewise.runtime.artifact import ArgSpec, KernelArtifact

    monkeypatch.setattr(workload, "available_memory", lambda: 2**20)
    task = at.Task("gemm", (512, 512, 512), "c")
    specs = tuple(ArgSpec(n, (512, 512), "float32") for n in "ABC")
    with pytest.raises(TuningError, match="too large to measure"):
        at.LocalRunner().inputs_for(task, KernelArtifact("k", "", "", specs, "c"))


@pytest.mark.parametrize("kwargs", [dict(number=0), dict(repeat=-1), dict(timeout=-1.0),
                                    dict(min_repeat_ms=float("nan"))])
def test_the_runner_refuses_nonsense_counts(kwargs):
    from tilewise.autotune import LocalRunner
    from tilewise.errors import TuningError

    with pytest.raises(TuningError):
        LocalRunner(**kwargs)


def test_export_and_import_mistakes(tmp_path, capsys):
    db = tmp_path / "t.db"
    assert main(["import", "--db", str(db), str(tmp_path / "none.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"bad\n')
    assert main(["import", "--db", str(db), str(junk)]) == 2
    assert "is not JSON Lines of tuning records" in capsys.readouterr().err
    assert main(["export", "--db", str(db), "/proc/no/such/out.jsonl"]) == 2
    err = capsys.readouterr().err
    assert "cannot write /proc/no/such/out.jsonl" in err and err.count("\n") == 1


# -- databases that fail under a run -----------------------------------------------------

# Tunes gemm with the fake builder and runner (nothing compiled), as the command would.
_FAKE_TUNE = """
import resource, sys
from unittest import mock
from tilewise import autotune as at
from tilewise.autotune.measure.fake import FakeBuilder, FakeRunner
from tilewise.cli import main

class Builder(FakeBuilder):
    def __init__(self, timeout=10.0):
        super().__init__(n_parallel=4)
    def close(self, wait=True):
        pass

db, trials, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
if limit:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
with mock.patch.object(at, "LocalBuilder", Builder), \\
        mock.patch.object(at, "LocalRunner", lambda **_: FakeRunner(lambda c: 1e-3)):
    sys.exit(main(["tune", "gemm", "M=64", "N=64", "K=64", "--trials", trials, "--db", db,
                   "--tuner", "random", "--confirm", "0"]))
"""


def _fake_tune(db: Path, trials: int, limit: int = 0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _FAKE_TUNE, str(db), str(trials), str(limit)],
                          capture_output=True, text=True, timeout=120)


def _count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]


def test_a_disk_that_fills_while_writing_loses_nothing_stored(tmp_path):
    db = tmp_path / "t.db"
    assert _fake_tune(db, 40).returncode == 0
    before = _count(db)
    # Files may grow by a few pages only: a later batch no longer fits.
    full = _fake_tune(db, 400, limit=db.stat().st_size + 8192)
    assert full.returncode == 2, full.stderr
    assert "cannot write to the tuning database" in full.stderr
    assert full.stderr.count("\n") == 1 and "records stored before this batch are kept" in \
        full.stderr
    assert _count(db) >= before
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_damaged_database_is_one_line(tmp_path, capsys):
    db = tmp_path / "t.db"
    assert _fake_tune(db, 20).returncode == 0
    with open(db, "r+b") as f:  # scribble over every page but the first
        for offset in range(4096, db.stat().st_size, 4096):
            f.seek(offset + 100)
            f.write(bytes(range(256))[::-1] * 4)
    assert main(["best", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tilewise: ") and err.count("\n") == 1
    assert err.rstrip("\n").isprintable()


def test_a_database_failing_under_a_command_is_one_line(monkeypatch, capsys):
    """Locked past the busy timeout (a minute), say: the command names the file."""
    from tilewise import cli

    def locked(opts):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(cli, "cmd_best", locked)
    assert main(["best", "--db", "shared.db"]) == 2
    err = capsys.readouterr().err
    assert err == "tilewise: the tuning database shared.db failed: database is locked\n"


# -- an interrupted or killed run --------------------------------------------------------

def _group(pgid: int) -> list[int]:
    """The live processes of process group ``pgid``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(entry.name))
    return pids


#: How a run ends: the signal, sent to the command alone or to its whole process group
#: (as Ctrl-C and ``timeout`` send it), its exit status and the line it prints.
_ENDS = [
    (signal.SIGTERM, False, 143, "tilewise: terminated; finished measurements are in the "
     "database\n"),
    (signal.SIGTERM, True, 143, "tilewise: terminated; finished measurements are in the "
     "database\n"),
    (signal.SIGINT, True, 130, "tilewise: interrupted; finished measurements are in the "
     "database\n"),
    (signal.SIGKILL, False, -9, None),
]


@pytest.mark.compiles
@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize("sig, group, status, line", _ENDS)
def test_an_ended_tuning_run_leaves_no_process_behind(sig, group, status, line, tmp_path):
    """The build pool, the cost model's feature workers and the measuring child end
    with the command, and nothing holds its output open after it."""
    db = tmp_path / "t.db"
    run = subprocess.Popen(
        [sys.executable, "-m", "tilewise", "tune", "gemm", "M=128", "N=128", "K=128",
         "--trials", "200", "--db", str(db), "--confirm", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        # a batch stored, and the build pool (tracker, forkserver, workers) running
        while not (_stored(db) and len(_group(run.pid)) >= 4):
            assert run.poll() is None and time.monotonic() < deadline, run.stderr.read()
            time.sleep(0.2)
        stored = _stored(db)
        if group:
            os.killpg(run.pid, sig)
        else:
            run.send_signal(sig)
        _, err = run.communicate(timeout=20)  # the output ends: nothing else holds it
    finally:
        if run.poll() is None:
            run.kill()
    deadline = time.monotonic() + 10
    while _group(run.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _group(run.pid) == []
    assert _stored(db) >= stored
    assert run.returncode == status
    if line is not None:
        assert err.endswith(line) and "Traceback" not in err, err


def _stored(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        return _count(db)
    except sqlite3.Error:  # not yet made
        return 0
