"""One rule for a task's fields: every reader agrees on files other tools wrote to.

"Another tool" appends triples with plain SQL (strings for integers, numbers for
text, NULLs, JSON-looking text); the projection's triggers, `get`, `as_of`, the
`tasks` view and the JSON export/import must then give the same fields.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minna_tasks import Task, TaskStore
from minna_tasks.engines.sqlite.projection import TASK_MIGRATIONS
from minna_tasks.engines.task_schema import COLUMNS, FIELDS
from minna_tasks.jsonio import export_tasks, import_tasks
from minna_tasks.records import load_json

FIXTURE = Path(__file__).parent / "data" / "written-by-0.1.sqlite"
FAR = "9999-12-31T00:00:00+00:00"
STATES = ("pending", "in_progress", "review", "completed", "failed")
ODD_TEXT = (
    "2.5", " 12", "-7abc", "1e3", "0x10", "", "  ", "9999999999999999999999", "true",
    "null", '{"a": [1, 2.5]}', "[1, 2", "NaN", "Infinity", "1e400", '"quoted"', "[" * 3000,
)  # fmt: skip

values = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(ODD_TEXT),
)
attributes = st.sampled_from([*FIELDS, "note"])
write = st.tuples(
    st.integers(0, 4),  # which task: 0-2 the store's own, 3-4 made by the other tool
    attributes,
    values,
    st.one_of(st.none(), st.text(max_size=5)),  # source
)


def _plain_sql(
    path: Path, writes: list[tuple[int, str, Any, Any]], ids: list[str], late: bool
) -> None:
    """Another tool's writes, in one transaction of plain SQL; tasks 3 and 4 are its own."""
    stamp = datetime.now(UTC)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        insert = (
            "INSERT INTO memories (entity, attribute, value, source, created_at)"
            " VALUES (?, ?, ?, ?, ?)"
        )
        for n, task_id in enumerate(("x-1", "x-2")):
            stamp += timedelta(microseconds=7)
            if not late or n:
                conn.execute(
                    "INSERT INTO entities (name, entity_type, created_at) VALUES (?, 'task', ?)",
                    (task_id, stamp.isoformat()),
                )
            conn.execute(insert, (task_id, "status", "pending", "tool", stamp.isoformat()))
        for index, attribute, value, source in writes:
            stamp += timedelta(microseconds=7)
            if attribute == "status":
                value = STATES[hash(str(value)) % len(STATES)]
            entity = [*ids, "x-1", "x-2"][index]
            conn.execute(insert, (entity, attribute, value, source, stamp.isoformat()))
        if late:  # the entity after its triples: the projection replays them
            conn.execute(
                "INSERT INTO entities (name, entity_type, created_at) VALUES ('x-1', 'task', ?)",
                (stamp.isoformat(),),
            )
        conn.execute("COMMIT")
    finally:
        conn.close()


def _document(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text("utf-8"))
    del doc["exported_at"]
    return doc


def _assert_readers_agree(store: TaskStore) -> None:
    view = {
        row[0]: row
        for row in store.memory.connection.execute(
            f"SELECT id, {', '.join(FIELDS)}, updated_at FROM tasks"
        )
    }
    for task in store.list():
        assert store.as_of(task.id, FAR) == task
        row = view[task.id]
        from_view = {name: FIELDS[name].value(row[i + 1]) for i, name in enumerate(FIELDS)}
        assert from_view == {name: getattr(task, name) for name in FIELDS}
        assert row[-1] == task.updated_at


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(writes=st.lists(write, max_size=25), late=st.booleans())
def test_other_tools_writes_read_alike_and_survive_export_import(
    writes: list[tuple[int, str, Any, Any]], late: bool
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        store = TaskStore(tmp / "a.db")
        try:
            ids = [t.id for t in store.add_many(["one", "two", "three"], actor="me")]
            claimed = store.claim("w")
            assert claimed is not None
            store.transition(claimed.id, "review", actor="w", result={"r": 1})
            _plain_sql(tmp / "a.db", writes, ids, late)
            _assert_readers_agree(store)
            export_tasks(store, tmp / "a.json")
        finally:
            store.close()
        other = TaskStore(tmp / "b.db")
        try:
            import_tasks(other, tmp / "a.json")
            _assert_readers_agree(other)
            export_tasks(other, tmp / "b.json")
        finally:
            other.close()
        assert _document(tmp / "a.json") == _document(tmp / "b.json")


def test_a_priority_of_text_reads_the_same_everywhere(store: TaskStore, tmp_path: Path) -> None:
    """The issue's case: another tool appends priority = '2.5' with plain SQL."""
    task = store.add("x")
    store.memory.connection.execute(
        "INSERT INTO memories (entity, attribute, value, source, created_at)"
        " VALUES (?, 'priority', '2.5', 'tool', ?)",
        (task.id, datetime.now(UTC).isoformat()),
    )
    assert store.get(task.id).priority == 2
    assert store.as_of(task.id, FAR).priority == 2
    export_tasks(store, tmp_path / "x.json")
    with TaskStore(tmp_path / "y.db") as other:
        import_tasks(other, tmp_path / "x.json")
        assert other.get(task.id).priority == 2


def test_json_fields_keep_text_that_is_not_finite_json() -> None:
    assert load_json('{"a": 1}') == {"a": 1}
    for text in ("NaN", "Infinity", "1e400", "[" * 5000, "plain words"):
        assert load_json(text) == text


def test_moves_leave_owner_and_lease_implied(store: TaskStore) -> None:
    """A claim writes no owner row and a finished task no NULL owner or lease rows:
    the status row implies them, and every reader still sees them."""
    store.add("x")
    task = store.claim("w1")
    assert task is not None
    assert task.owner == "w1"
    assert task.lease_expires_at
    store.transition(task.id, "review", actor="w1", result=1)
    done = store.transition(task.id, "completed", actor="w1")
    assert done.owner is None
    assert done.lease_expires_at is None
    assert store.get(task.id) == done
    attributes = [f["attribute"] for f in store.facts(task.id)]
    assert "owner" not in attributes
    assert attributes.count("lease_expires_at") == 1


def test_a_file_written_by_0_1_migrates_keeping_every_answer(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    with sqlite3.connect(path) as conn:
        names = ", ".join(r[1] for r in conn.execute("PRAGMA table_info(task_current)"))
        before_rows = conn.execute(f"SELECT {names} FROM task_current ORDER BY seq").fetchall()
        before_memories = conn.execute("SELECT * FROM memories ORDER BY id").fetchall()
        assert conn.execute(
            "SELECT version FROM schema_components WHERE name = 'tasks'"
        ).fetchone() == (1,)
    with TaskStore(path) as store:
        conn = store.memory.connection
        rows = conn.execute(f"SELECT {names} FROM task_current ORDER BY seq").fetchall()
        assert rows == before_rows  # the columns 0.1 had keep their values
        assert conn.execute("SELECT * FROM memories ORDER BY id").fetchall() == before_memories
        version = conn.execute("SELECT version FROM schema_components WHERE name = 'tasks'")
        assert version.fetchone() == (len(TASK_MIGRATIONS),)
        _assert_readers_agree(store)
        assert {t.status for t in store.list()} == set(STATES)
        # and it keeps working under the new rule
        task = store.claim("new")
        assert task is not None
        store.transition(task.id, "review", actor="new")
        assert store.transition(task.id, "completed", actor="new").owner is None
        _assert_readers_agree(store)


def test_the_backfill_replays_rows_as_python_does(store: TaskStore) -> None:
    """A projection row that drifted is rebuilt by migration 2's backfill from the triples."""
    store.add_many(["a", "b"])
    task = store.claim("w")
    assert task is not None
    expected = store.list()
    conn = store.memory.connection
    conn.execute("UPDATE task_current SET owner = 'ghost', priority = 99, status = NULL")
    conn.execute("UPDATE schema_components SET version = 1 WHERE name = 'tasks'")
    store.close()
    with TaskStore(store.path) as reopened:
        assert reopened.list() == expected


def test_projection_columns_are_the_task_fields() -> None:
    """task_from_row builds a Task from a projection row: every stored field (the
    dependency lists are read beside it)."""
    names = {f.name for f in dataclass_fields(Task)}
    assert names - set(COLUMNS) == {"depends_on", "blocked_by"}
    assert set(COLUMNS) <= names
