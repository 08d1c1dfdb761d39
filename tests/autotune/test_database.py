"""Records and the SQLite tuning database."""

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import toy_templates  # noqa: F401

from tilewise.autotune import (
    Database,
    ErrorKind,
    MeasureInput,
    MeasureResult,
    Record,
    Task,
    default_database_path,
)
from tilewise.errors import DatabaseFormatError, TuningError

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"


def make_records(task, indices, error_every=0):
    out = []
    for n, i in enumerate(indices):
        fail = error_every and n % error_every == 0
        result = (
            MeasureResult(error=ErrorKind.RUNTIME, error_msg="x")
            if fail
            else MeasureResult(costs=(1e-3 * (1 + i % 7), 1e-3 * (1 + i % 7)))
        )
        out.append(Record.of(MeasureInput(task, task.config_space.get(i)), result))
    return out


def test_record_json_line_round_trip():
    task = Task("toy_matmul", (256, 256))
    for record in make_records(task, [0, 3, 500], error_every=2):
        again = Record.from_line(record.to_line())
        assert again.to_line() == record.to_line()
        # a record stores knob values, not a position: read back, it is not yet placed
        assert "index" not in record.to_json()["config"] and again.config.index == -1
        assert again.placed(task.key, record.config) == record
        fallback = task.config_space.fallback
        assert again.at_fallback == {n for n, e in record.config.entities if fallback[n] == e}


def test_add_and_query(tmp_path):
    task = Task("toy_matmul", (256, 256))
    other = Task("toy_matmul", (64, 64))
    db = Database(tmp_path / "t.db")
    assert db.add_batch(make_records(task, range(20), error_every=3)) == 20
    db.add_batch(make_records(other, range(5)))
    assert len(db) == 25
    assert len(db.records(task)) == 20
    assert db.measured_indices(task) == set(range(20))
    assert db.has(task, 7) and not db.has(task, 77) and db.has(other, task.config_space.get(4))
    best = db.best(task)
    assert best.result.ok and best.result.mean == min(r.result.mean for r in db.records(task))
    assert set(db.tasks()) == {task.key, other.key}
    assert db.best(Task("toy_matmul", (8, 8))) is None


def test_wal_mode(tmp_path):
    Database(tmp_path / "t.db").close()
    conn = sqlite3.connect(tmp_path / "t.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_not_a_database(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("this is not a database\n" * 100)
    with pytest.raises(DatabaseFormatError, match="is not a tilewise tuning database"):
        Database(path)
    assert issubclass(DatabaseFormatError, TuningError)


def test_jsonl_export_import(tmp_path):
    task = Task("toy_matmul", (256, 256))
    db = Database(tmp_path / "a.db")
    db.add_batch(make_records(task, range(30), error_every=4))
    assert db.export_jsonl(tmp_path / "r.jsonl") == 30
    fresh = Database(tmp_path / "b.db")
    assert fresh.import_jsonl(tmp_path / "r.jsonl") == 30
    assert fresh.records(task) == db.records(task)
    assert fresh.best(task) == db.best(task)
    assert fresh.import_jsonl(tmp_path / "r.jsonl") == 0  # duplicates are skipped


def test_default_path_reads_xdg(monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", "/x")
    assert default_database_path() == Path("/x/tilewise/tuning.db")
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_database_path().parts[-3:] == ("share", "tilewise", "tuning.db")


WRITER = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [{src!r}, {here!r}]
    import toy_templates
    from tilewise.autotune import Database, Task
    from test_database import make_records
    task = Task("toy_matmul", ({n}, 256))
    db = Database({path!r})
    for start in range(0, 200, 5):
        db.add_batch(make_records(task, range(start, start + 5)))
    """
)


def test_two_processes_keep_all_records(tmp_path):
    path = str(tmp_path / "shared.db")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER.format(src=str(SRC), here=str(HERE), n=n, path=path)]
        )
        for n in (128, 256)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    db = Database(path)
    assert len(db) == 400
    for n in (128, 256):
        assert db.measured_indices(Task("toy_matmul", (n, 256))) == set(range(200))


OPENER = textwrap.dedent(
    """
    import sys, time
    sys.path[:0] = [{src!r}]
    from tilewise.autotune import Database
    while time.time() < {start!r}:
        pass
    Database({path!r}).close()
    """
)


def test_processes_creating_one_file_at_once(tmp_path):
    # Switching a fresh file to WAL can fail at once with "database is locked" (SQLite
    # skips its busy handler there); openers must wait for each other, not give up.
    for round_ in range(4):
        path = str(tmp_path / f"fresh{round_}.db")
        start = time.time() + 1.0
        code = OPENER.format(src=str(SRC), start=start, path=path)
        procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(6)]
        assert [p.wait(timeout=120) for p in procs] == [0] * 6


def test_open_waits_out_a_transient_lock(tmp_path, monkeypatch):
    calls = []
    real = Database._init_schema

    def locked_twice(self):
        calls.append(1)
        if len(calls) <= 2:
            raise sqlite3.OperationalError("database is locked")
        real(self)

    monkeypatch.setattr(Database, "_init_schema", locked_twice)
    db = Database(tmp_path / "t.db")
    assert len(calls) == 3 and len(db) == 0


def test_unopenable_path_is_not_a_format_error(tmp_path):
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(TuningError, match="cannot open the tuning database") as info:
        Database(tmp_path / "dir.db")
    assert not isinstance(info.value, DatabaseFormatError)
