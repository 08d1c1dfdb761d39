"""Records outlive their template's edits: configs are stored as knob values and placed
in today's space; those that no longer fit are reported, counted and kept."""

import sqlite3
import warnings

import pytest

from tilewise.autotune import (
    ConfigEntity,
    Database,
    FallbackConfigWarning,
    MeasureInput,
    MeasureResult,
    OtherOptionEntity,
    Record,
    SplitEntity,
    StaleRecordsWarning,
    Task,
    apply_history_best,
    dispatch,
    template,
)
from tilewise.errors import TuningError

NAME = "toy_evolving"


def register(version=1, unroll=(0, 1), tile_max=None, prefetch=False, vec=True):
    """Register one edition of the toy template under ``NAME``: it returns its config,
    so what dispatch chose can be read back."""

    @template(NAME, version=version)
    def toy_evolving(cfg, n, dtype="float32"):
        cfg.define_split("tile", n, max_factor=tile_max)
        cfg.define_knob("unroll", list(unroll))
        if prefetch:  # a knob added since: its fallback is what the template did before
            cfg.define_knob("prefetch", [False, True])
            cfg.fallback_with(prefetch=False)
        if vec:  # removed later: the template then always vectorises, as vec=1 did
            cfg.define_knob("vec", [0, 1])
            cfg.fallback_with(vec=1)
        cfg.fallback_with(unroll=1)
        return cfg, []


def choose(task, **values):
    space = task.config_space
    return next(c for c in map(space.get, range(len(space)))
                if all(_value(c[k]) == v for k, v in values.items()))


def _value(entity):
    return entity.val if isinstance(entity, OtherOptionEntity) else list(entity.size)


@pytest.fixture
def db(tmp_path):
    """Four records of the first edition (16 wide): A and D fit every later edit, B
    chose vec=0 (gone later), C a tile of 16 (gone later, and the fastest)."""
    register()
    task = Task(NAME, (16,))
    db = Database(tmp_path / "t.db")
    measured = {"A": (dict(tile=[-1, 4], unroll=0, vec=1), 1e-3),
                "B": (dict(tile=[-1, 8], unroll=1, vec=0), 0.8e-3),
                "C": (dict(tile=[-1, 16], unroll=0, vec=1), 0.5e-3),
                "D": (dict(tile=[-1, 2], unroll=1, vec=1), 1.5e-3)}
    db.add_batch(Record.of(MeasureInput(task, choose(task, **values)),
                           MeasureResult(costs=(cost,)))
                 for values, cost in measured.values())
    yield db
    db.close()
    register()


def dispatched(db, n=16):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackConfigWarning)
        with apply_history_best(db):
            cfg, _ = dispatch(NAME, n)
    return cfg


def test_the_first_edition_dispatches_its_fastest_record(db):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = dispatched(db)
    assert cfg["tile"].size == (-1, 16) and db.orphans() == []


def test_a_value_and_a_knob_added_keep_every_record(db):
    register(unroll=(0, 1, 2), prefetch=True)
    task = Task(NAME, (16,))
    cfg = dispatched(db)
    assert cfg["tile"].size == (-1, 16) and cfg["prefetch"].val is False  # its fallback
    assert cfg == task.config_space.lookup(cfg) and cfg.index == db.best(task).config.index
    assert len(db.records(task)) == 4 and db.orphans(task) == []
    assert db.measured_indices(task) == {r.config.index for r in db.records(task)}


def test_removed_values_and_knobs_leave_records_out_and_report_them(db):
    register(unroll=(0, 1, 2), tile_max=8, prefetch=True, vec=False)
    task = Task(NAME, (16,))
    with pytest.warns(StaleRecordsWarning, match="2 records of toy_evolving") as caught:
        cfg = dispatched(db)
    assert len(caught) == 1
    # C (the fastest) and B cannot be placed; A, faster than D, dispatches
    assert cfg["tile"].size == (-1, 4) and cfg["unroll"].val == 0
    assert [r.config["tile"].size for r in db.records(task)] == [(-1, 4), (-1, 2)]
    report = {o.record.config["tile"].size: o.reason for o in db.orphans(task)}
    assert report == {(-1, 8): "knob 'vec' is gone and the record chose 0, not its fallback",
                      (-1, 16): "knob 'tile' has no choice [-1, 16] now"}
    assert len(db) == 4  # kept in the file
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        db.records(task)  # reported once per task


def test_another_template_version_reports_every_record_and_falls_back(db):
    register(version=2)
    task = Task(NAME, (16,))
    with pytest.warns(FallbackConfigWarning), apply_history_best(db):
        with pytest.warns(StaleRecordsWarning, match="template version 1, now 2"):
            cfg, _ = dispatch(NAME, 16)
    assert cfg == task.config_space.fallback
    assert len(db.orphans()) == 4 and db.records(task) == [] and db.best(task) is None
    register()  # back to version 1: the records dispatch again
    assert dispatched(db)["tile"].size == (-1, 16)


def test_the_version_is_a_positive_integer():
    with pytest.raises(TuningError, match="version must be a positive integer"):
        template("toy_bad_version", version=0)


# -- a database written by tilewise 0.1 (schema 1) -------------------------------------

OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE records (id INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL,
    config_index TEXT NOT NULL, error INTEGER NOT NULL, cost REAL, timestamp REAL NOT NULL,
    digest TEXT NOT NULL UNIQUE, line TEXT NOT NULL);
CREATE INDEX records_by_task ON records (task, config_index);
INSERT INTO meta VALUES ('schema', '1');
"""


def old_line(task, config, cost, args):
    """A record line as tilewise 0.1 wrote it: the args as the caller gave them, a
    target of -mcpu and -cores only, the config's index beside its values."""
    line = Record.of(MeasureInput(task, config), MeasureResult(costs=(cost,))).to_json()
    line["task"] = {"name": task.name, "args": list(args), "target": "c -mcpu=native -cores=3"}
    line["config"] = config.to_json()
    del line["template_version"]
    return line


def test_a_schema_1_database_is_migrated_and_found_by_every_spelling(tmp_path):
    import json

    register()
    task = Task(NAME, (16,), "c -cores=3")
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA)
    lines = [old_line(task, choose(task, tile=[-1, 4], unroll=0), 2e-3, (16,)),
             old_line(task, choose(task, tile=[-1, 2], unroll=0), 1e-3, (16, "float32"))]
    for n, line in enumerate(lines):
        key = json.dumps(line["task"], sort_keys=True, separators=(",", ":"))
        conn.execute("INSERT INTO records VALUES (?, ?, ?, 0, ?, 0, ?, ?)",
                     (n + 1, key, str(line["config"]["index"]), line["result"]["costs"][0],
                      str(n), json.dumps(line)))
    conn.commit()
    conn.close()
    register(unroll=(2, 1, 0))  # renumbered since: the old indices name other configs
    db = Database(path)
    assert sqlite3.connect(path).execute(
        "SELECT value FROM meta WHERE key='schema'").fetchone() == ("2",)
    assert db.tasks() == [Task(NAME, (16, "float32"), "c -cores=3").key]
    assert "-isa=" in db.tasks()[0].target
    records = db.records(Task(NAME, (16,), "c -cores=3"))
    assert [(r.config["tile"].size, r.config["unroll"].val) for r in records] == [
        ((-1, 4), 0), ((-1, 2), 0)]
    assert db.best(task).config["tile"].size == (-1, 2)
    with apply_history_best(db):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            cfg, _ = dispatch(NAME, 16, dtype="float32", target="c -cores=3")
    assert cfg["tile"].size == (-1, 2) and cfg["unroll"].val == 0
    db.close()
    register()


def test_a_jsonl_line_of_0_1_is_upgraded_on_import(tmp_path):
    import json

    register()
    task = Task(NAME, (16,), "c -cores=3")
    dump = tmp_path / "old.jsonl"
    dump.write_text(json.dumps(old_line(task, choose(task, unroll=0), 1e-3, (16,))) + "\n")
    db = Database(tmp_path / "t.db")
    assert db.import_jsonl(dump) == 1
    assert db.best(Task(NAME, (16, "float32"), "c -cores=3")).config["unroll"].val == 0


def test_config_entity_without_index_is_unplaced():
    cfg = ConfigEntity.from_json({"entities": [["t", "split", [-1, 8]]]})
    assert cfg.index == -1 and cfg["t"] == SplitEntity((-1, 8))
