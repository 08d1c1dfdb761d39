"""The tuning database: every measured record in one embedded SQLite file.

WAL mode and a busy timeout let several processes tune into one file; each measured
batch is one transaction, so what was measured is durable before the next batch starts.

Records are read back for a task of today: each config is placed in the task's space
by its knob values (:meth:`~tilewise.autotune.space.ConfigSpace.place`), so adding a
knob or a value to a template keeps its records. A record that no longer fits (a value
or a knob gone, another template version) is an :class:`Orphan`: kept in the file,
left out of what is read, counted by :meth:`Database.orphans` and reported once per
task by a :class:`StaleRecordsWarning`.

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
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

from tilewise import env
from tilewise.autotune.migration import legacy_keys, upgrade
from tilewise.autotune.placement import Orphan, Placer, StaleRecordsWarning, summary
from tilewise.autotune.ranking import leader, standing
from tilewise.autotune.record import ErrorKind, Record
from tilewise.autotune.space import ConfigEntity
from tilewise.autotune.task import Task, TaskKey, Template, get_template
from tilewise.errors import (
    DatabaseFormatError,
    TilewiseError,
    TuningError,
    UnknownTemplateError,
)

_SCHEMA_VERSION = 2
_BUSY_TIMEOUT_MS = 60_000

# ``config`` holds a record's knob values as canonical JSON (knobs by name): equal
# texts are one config, whatever space it is placed in.
_SCHEMA = """
CREATE TABLE records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task TEXT NOT NULL,
    config TEXT NOT NULL,
    template_version INTEGER NOT NULL,
    error INTEGER NOT NULL,
    cost REAL,
    timestamp REAL NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    line TEXT NOT NULL
);
CREATE INDEX records_by_task ON records (task, config)
"""


def default_database_path() -> Path:
    """``$XDG_DATA_HOME/tilewise/tuning.db``, else ``~/.local/share/tilewise/tuning.db``."""
    return env.data_dir() / "tuning.db"


def _keys(known: Task | None, task: Task | TaskKey) -> list[str]:
    """The stored keys of ``task`` (``known``: its task of today, if any): its
    canonical one and those of older spellings."""
    if known is None:
        return [(task.key if isinstance(task, Task) else task).canonical()]
    return [k.canonical() for k in (known.key, *legacy_keys(known))]


class Database:
    """A SQLite file of tuning records.

    ``path`` may be ``":memory:"`` for a throwaway database. A path that exists but is
    not a tilewise database raises :class:`~tilewise.errors.DatabaseFormatError`; a
    database of tilewise 0.1 is migrated as it is opened (:mod:`.migration`).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = default_database_path() if path is None else path
        self._warned: set[str] = set()
        self._known: dict[tuple[TaskKey, Template], Task | None] = {}
        try:
            if str(self.path) != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(self.path), timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None
            )
            self._conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            _while_locked(lambda: self._conn.execute("PRAGMA journal_mode = WAL"))
            self._conn.execute("PRAGMA synchronous = NORMAL")
            _while_locked(self._init_schema)
        except OSError as err:
            raise TuningError(f"cannot open the tuning database {self.path} "
                              f"({err.strerror or err})") from None
        except sqlite3.OperationalError as err:
            raise TuningError(f"cannot open the tuning database {self.path} ({err})") from None
        except sqlite3.DatabaseError as err:
            raise DatabaseFormatError(
                f"{self.path} is not a tilewise tuning database ({err})"
            ) from None

    def _init_schema(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = self._conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                if self._has_table("records"):
                    raise DatabaseFormatError(f"{self.path} is not a tilewise tuning database "
                                              "(it has a records table but no schema)")
                self._create_records()
                self._conn.execute("INSERT INTO meta VALUES ('schema', ?)", (str(_SCHEMA_VERSION),))
            elif row[0] == "1":
                self._migrate_schema_1()
            elif row[0] != str(_SCHEMA_VERSION):
                raise DatabaseFormatError(
                    f"{self.path} has tuning-database schema {row[0]}, "
                    f"this tilewise reads schema {_SCHEMA_VERSION}"
                )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def _has_table(self, name: str) -> bool:
        return self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)
        ).fetchone() is not None

    def _create_records(self) -> None:
        for statement in _SCHEMA.split(";"):
            self._conn.execute(statement)

    def _migrate_schema_1(self) -> None:
        """Rewrite a tilewise 0.1 file in place (inside the caller's transaction): keys
        with today's target strings, configs by values (:func:`.migration.upgrade`)."""
        lines = [line for (line,) in self._conn.execute("SELECT line FROM records ORDER BY id")]
        try:
            rows = [_row(upgrade(Record.from_line(line))) for line in lines]
        except (ValueError, KeyError, TypeError, TilewiseError) as err:
            raise DatabaseFormatError(
                f"{self.path} holds a record tilewise cannot read ({type(err).__name__}: {err})"
            ) from None
        self._conn.execute("DROP TABLE records")
        self._create_records()
        self._insert(rows)
        self._conn.execute("UPDATE meta SET value = ? WHERE key = 'schema'",
                           (str(_SCHEMA_VERSION),))

    # -- writing -------------------------------------------------------------------
    def add_batch(self, records: Iterable[Record]) -> int:
        """Store ``records`` in one transaction; return how many were new."""
        rows = [_row(r) for r in records]
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            added = self._insert(rows)
            cur.execute("COMMIT")
        except BaseException as err:
            if self._conn.in_transaction:  # SQLite already rolled back on a full disk
                cur.execute("ROLLBACK")
            if isinstance(err, sqlite3.Error):
                raise TuningError(f"cannot write to the tuning database {self.path} ({err}); "
                                  "the records stored before this batch are kept") from None
            raise
        return added

    def _insert(self, rows: list[tuple[object, ...]]) -> int:
        before = self._conn.total_changes
        self._conn.executemany(
            "INSERT OR IGNORE INTO records "
            "(task, config, template_version, error, cost, timestamp, digest, line) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        return self._conn.total_changes - before

    def add(self, record: Record) -> int:
        return self.add_batch([record])

    # -- reading -------------------------------------------------------------------
    def _as_task(self, task: Task | TaskKey) -> Task | None:
        """The task of today that ``task`` names; None where its template is not
        registered here or no longer takes its args (its records are read as stored).
        Kept per key and template: building a task's space runs its template."""
        try:
            template = task.template if isinstance(task, Task) else get_template(task.name)
        except (UnknownTemplateError, ImportError):
            return None
        if isinstance(task, Task):
            return task
        if (task, template) not in self._known:
            try:
                self._known[task, template] = Task.from_key(task)
            except TilewiseError:
                self._known[task, template] = None
        return self._known[task, template]

    def records(self, task: Task | TaskKey) -> list[Record]:
        """The records of ``task``, oldest first, placed in its space of today (their
        configs' indices are today's); those that no longer fit are left out
        (:meth:`orphans`). Where ``task``'s template is not registered here, all of its
        records as stored (configs unplaced: index -1)."""
        return self._read(task)[0]

    def orphans(self, task: Task | TaskKey | None = None) -> list[Orphan]:
        """The records of ``task`` (default: of every task whose template is registered
        here) that its template of today cannot place, oldest first, each with why."""
        if task is not None:
            return self._read(task, warn=False)[1]
        return [o for key in self.tasks() for o in self._read(key, warn=False)[1]]

    def _read(self, task: Task | TaskKey, warn: bool = True
              ) -> tuple[list[Record], list[Orphan]]:
        known = self._as_task(task)
        keys = _keys(known, task)
        rows = self._conn.execute(
            f"SELECT config, template_version, line FROM records "
            f"WHERE task IN ({', '.join('?' * len(keys))}) ORDER BY id", keys)
        if known is None:
            return [Record.from_line(line) for _, _, line in rows], []
        place = Placer(known)
        records, orphans = [], []
        for config, version, line in rows:
            placed, why = place(config, version)
            record = Record.from_line(line)
            if placed is None:
                orphans.append(Orphan(record, why))
            else:
                records.append(record.placed(known.key, placed))
        if warn:
            self._report(known, orphans)
        return records, orphans

    def _report(self, task: Task, orphans: list[Orphan]) -> None:
        """Warn once per task and database that some of its records are not used."""
        key = task.key.canonical()
        if not orphans or key in self._warned:
            return
        self._warned.add(key)
        warnings.warn(f"{len(orphans)} records of {task} no longer fit its template and "
                      f"are not used (kept in {self.path}): {summary(orphans)}",
                      StaleRecordsWarning, stacklevel=4)

    def best(self, task: Task | TaskKey) -> Record | None:
        """The successful record of ``task``'s best config, or None.

        The best is named by :func:`~tilewise.autotune.ranking.leader`, as the tuner
        names it: a config measured more than once is judged by the upper median of its
        latest measurements (:func:`~tilewise.autotune.ranking.standing`), and that
        record is returned; once any config was re-measured, a config read once does
        not lead. Records are placed as :meth:`records` places them: those that no
        longer fit do not compete.
        """
        known = self._as_task(task)
        keys = _keys(known, task)
        place = Placer(known) if known is not None else None
        # Readings by config: by index in today's space, or by stored text unplaced.
        by_config: dict[int | str, list[tuple[float, int]]] = {}
        configs: dict[int | str, ConfigEntity] = {}
        stale = False
        for config, version, cost, row_id in self._conn.execute(
            f"SELECT config, template_version, cost, id FROM records WHERE task IN "
            f"({', '.join('?' * len(keys))}) AND error = ? AND cost IS NOT NULL ORDER BY id",
            (*keys, ErrorKind.NONE.value),
        ):
            which: int | str = config
            if place is not None:
                placed, _ = place(config, version)
                if placed is None:
                    stale = True
                    continue
                which, configs[placed.index] = placed.index, placed
            by_config.setdefault(which, []).append((cost, row_id))
        if stale and known is not None:
            self._read(known)  # warns, once, of what is left out and why
        best = leader(by_config)
        if best is None:
            return None
        _, row_id = standing(by_config[best])
        (line,) = self._conn.execute("SELECT line FROM records WHERE id = ?", (row_id,)).fetchone()
        record = Record.from_line(line)
        if known is None:
            return record
        return record.placed(known.key, configs[best])

    def measured_indices(self, task: Task | TaskKey) -> set[int]:
        """Indices in ``task``'s space of today of the configs that have a record
        (successful or not, placed as :meth:`records` places them)."""
        known = self._as_task(task)
        if known is None:
            return set()
        keys = _keys(known, task)
        place = Placer(known)
        rows = self._conn.execute(
            f"SELECT DISTINCT config, template_version FROM records "
            f"WHERE task IN ({', '.join('?' * len(keys))})", keys)
        return {c.index for c, _ in (place(config, v) for config, v in rows) if c is not None}

    def has(self, task: Task | TaskKey, config: ConfigEntity | int) -> bool:
        index = config.index if isinstance(config, ConfigEntity) else int(config)
        return index in self.measured_indices(task)

    def tasks(self) -> list[TaskKey]:
        """Every task with records, by its key of today where its template is
        registered here (older spellings of one task are one task)."""
        rows = self._conn.execute("SELECT DISTINCT task FROM records ORDER BY task")
        keys: dict[TaskKey, None] = {}
        for (text,) in rows:
            key = TaskKey.from_json(json.loads(text))
            known = self._as_task(key)
            keys[known.key if known is not None else key] = None
        return list(keys)

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def all_records(self) -> list[Record]:
        """Every record as stored (configs unplaced: index -1)."""
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
        """Add the records of a JSON Lines file (duplicates skipped; lines of tilewise
        0.1 upgraded as its databases are); return how many new."""
        with open(path, encoding="utf-8") as f:
            records = [upgrade(Record.from_line(line)) for line in f if line.strip()]
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
    stored = record.to_json()["config"]
    config = {"entities": sorted(stored["entities"]), "at_fallback": stored["at_fallback"]}
    cost = record.result.mean if record.result.ok else None
    return (
        record.task_key.canonical(),
        json.dumps(config, sort_keys=True, separators=(",", ":")),
        record.template_version,
        record.result.error.value,
        cost,
        record.result.timestamp,
        hashlib.sha256(line.encode()).hexdigest(),
        line,
    )
