"""The tuning database: every measured record in one embedded SQLite file.

WAL mode and a busy timeout let several processes tune into one file; each measured
batch is one transaction, so what was measured is durable before the next batch starts.

>>> db = Database(":memory:")
>>> db.tasks()
[]
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from tilewise import env
from tilewise.autotune.ranking import leader, standing
from tilewise.autotune.record import ErrorKind, Record
from tilewise.autotune.space import ConfigEntity
from tilewise.autotune.task import Task, TaskKey
from tilewise.errors import DatabaseFormatError, TuningError

_SCHEMA_VERSION = 1
_BUSY_TIMEOUT_MS = 60_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task TEXT NOT NULL,
    config_index TEXT NOT NULL,
    error INTEGER NOT NULL,
    cost REAL,
    timestamp REAL NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    line TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_task ON records (task, config_index);
"""


def default_database_path() -> Path:
    """``$XDG_DATA_HOME/tilewise/tuning.db``, else ``~/.local/share/tilewise/tuning.db``."""
    return env.data_dir() / "tuning.db"


def _key(task: Task | TaskKey) -> str:
    return (task.key if isinstance(task, Task) else task).canonical()


class Database:
    """A SQLite file of tuning records.

    ``path`` may be ``":memory:"`` for a throwaway database. A path that exists but is
    not a tilewise database raises :class:`~tilewise.errors.DatabaseFormatError`.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = default_database_path() if path is None else path
        if str(self.path) != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(
                str(self.path), timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None
            )
            self._conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            _while_locked(lambda: self._conn.execute("PRAGMA journal_mode = WAL"))
            self._conn.execute("PRAGMA synchronous = NORMAL")
            _while_locked(self._init_schema)
        except sqlite3.OperationalError as err:
            raise TuningError(f"cannot open the tuning database {self.path} ({err})") from None
        except sqlite3.DatabaseError as err:
            raise DatabaseFormatError(
                f"{self.path} is not a tilewise tuning database ({err})"
            ) from None

    def _init_schema(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self._conn.execute(statement)
            row = self._conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                self._conn.execute("INSERT INTO meta VALUES ('schema', ?)", (str(_SCHEMA_VERSION),))
            elif int(row[0]) != _SCHEMA_VERSION:
                raise DatabaseFormatError(
                    f"{self.path} has tuning-database schema {row[0]}, "
                    f"this tilewise reads schema {_SCHEMA_VERSION}"
                )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    # -- writing -------------------------------------------------------------------
    def add_batch(self, records: Iterable[Record]) -> int:
        """Store ``records`` in one transaction; return how many were new."""
        rows = [_row(r) for r in records]
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            before = self._conn.total_changes
            cur.executemany(
                "INSERT OR IGNORE INTO records "
                "(task, config_index, error, cost, timestamp, digest, line) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            added = self._conn.total_changes - before
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return added

    def add(self, record: Record) -> int:
        return self.add_batch([record])

    # -- reading -------------------------------------------------------------------
    def records(self, task: Task | TaskKey) -> list[Record]:
        """All records of ``task``, oldest first."""
        rows = self._conn.execute(
            "SELECT line FROM records WHERE task = ? ORDER BY id", (_key(task),)
        )
        return [Record.from_line(line) for (line,) in rows]

    def best(self, task: Task | TaskKey) -> Record | None:
        """The successful record of ``task``'s best config, or None.

        The best is named by :func:`~tilewise.autotune.ranking.leader`, as the tuner
        names it: a config measured more than once is judged by the upper median of its
        latest measurements (:func:`~tilewise.autotune.ranking.standing`), and that
        record is returned; once any config was re-measured, a config read once does
        not lead.
        """
        by_config: dict[str, list[tuple[float, int]]] = {}
        for config, cost, row_id in self._conn.execute(
            "SELECT config_index, cost, id FROM records "
            "WHERE task = ? AND error = ? AND cost IS NOT NULL ORDER BY id",
            (_key(task), ErrorKind.NONE.value),
        ):
            by_config.setdefault(config, []).append((cost, row_id))
        if not by_config:
            return None
        config = leader(by_config)
        _, row_id = standing(by_config[config])
        (line,) = self._conn.execute("SELECT line FROM records WHERE id = ?", (row_id,)).fetchone()
        return Record.from_line(line)

    def measured_indices(self, task: Task | TaskKey) -> set[int]:
        """Config indices of ``task`` that have a record (successful or not)."""
        rows = self._conn.execute(
            "SELECT DISTINCT config_index FROM records WHERE task = ?", (_key(task),)
        )
        return {int(i) for (i,) in rows}

    def has(self, task: Task | TaskKey, config: ConfigEntity | int) -> bool:
        index = config.index if isinstance(config, ConfigEntity) else int(config)
        row = self._conn.execute(
            "SELECT 1 FROM records WHERE task = ? AND config_index = ? LIMIT 1",
            (_key(task), str(index)),
        ).fetchone()
        return row is not None

    def tasks(self) -> list[TaskKey]:
        rows = self._conn.execute("SELECT DISTINCT task FROM records ORDER BY task")
        return [TaskKey.from_json(json.loads(t)) for (t,) in rows]

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def all_records(self) -> list[Record]:
        rows = self._conn.execute("SELECT line FROM records ORDER BY id")
        return [Record.from_line(line) for (line,) in rows]

    # -- exchange ------------------------------------------------------------------
    def export_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Write every record as one JSON line; return how many."""
        lines = [line for (line,) in self._conn.execute("SELECT line FROM records ORDER BY id")]
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in lines)
        return len(lines)

    def import_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Add the records of a JSON Lines file (duplicates skipped); return how many new."""
        with open(path, encoding="utf-8") as f:
            records = [Record.from_line(line) for line in f if line.strip()]
        return self.add_batch(records)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({str(self.path)!r})"


def _while_locked(step: Callable[[], object]) -> None:
    """Run ``step``, retrying while another process holds the file's lock.

    SQLite does not call its busy handler when a fresh file switches to WAL, so two
    processes that create one database at the same moment can see "database is locked"
    at once instead of waiting for each other.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    delay = 0.001
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(2 * delay, 0.1)


def _row(record: Record) -> tuple[object, ...]:
    line = record.to_line()
    cost = record.result.mean if record.result.ok else None
    return (
        record.task_key.canonical(),
        str(record.config.index),
        record.result.error.value,
        cost,
        record.result.timestamp,
        hashlib.sha256(line.encode()).hexdigest(),
        line,
    )
