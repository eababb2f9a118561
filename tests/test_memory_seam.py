"""The memory's side of the storage seam: each engine's memory operations behind one
interface (engines/memories.py), MinnaMemory free of SQL, the engines agreeing where
their SQL differs (conflicts, case, order), and the task views defined once."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from minna_tasks import MinnaMemory, TaskStore
from minna_tasks.engines import is_postgres_url
from minna_tasks.engines.memories import MemoryOperations
from minna_tasks.engines.postgres.memories import PostgresMemories
from minna_tasks.engines.sqlite.memories import SqliteMemories
from minna_tasks.engines.task_views import VIEW_TEMPLATES, spelled
from minna_tasks.views import SQLITE_SPELLING, VIEWS

from .pg import Cluster
from .test_seam import code_strings
from .test_views import TRANSITION_COLUMNS, build_demo

ROOT = Path(__file__).resolve().parent.parent
# The memory API's modules: the rules and the documented surface, no SQL.
API_MODULES = ("minna_tasks/memory/api.py", "minna_tasks/memory/context.py")
SQL_WORDS = ("SELECT ", "INSERT ", "UPDATE ", "DELETE ", "CREATE ", " FROM ", " WHERE ")


def test_each_engine_exposes_its_memory_operations(memory: MinnaMemory, backend: str) -> None:
    assert isinstance(memory.memory_ops, MemoryOperations)
    expected = PostgresMemories if backend == "postgresql" else SqliteMemories
    assert type(memory.memory_ops) is expected
    assert memory.memory_ops.db is memory  # bound to this engine object, made once
    assert memory.memory_ops is memory.memory_ops


def test_both_implementations_have_every_operation() -> None:
    """The protocol's methods, each implemented (not inherited from the Protocol)."""
    wanted = {
        name
        for name, value in vars(MemoryOperations).items()
        if callable(value) and not name.startswith("_")
    }
    assert len(wanted) >= 20
    for ops in (SqliteMemories, PostgresMemories):
        assert {name for name in wanted if getattr(ops, name, None) is not None} == wanted
        assert MemoryOperations not in ops.__mro__


def test_the_memory_api_holds_no_sql_and_never_names_an_engine() -> None:
    for module in API_MODULES:
        texts = code_strings(ROOT / module)
        assert texts, module  # the scan reads something
        assert [t for t in texts if any(w in t.upper() for w in SQL_WORDS)] == [], module
        assert [t for t in texts if t in ("sqlite", "postgresql")] == [], module
        source = (ROOT / module).read_text(encoding="utf-8")
        assert ".execute(" not in source, module
        assert "sqlite3" not in source, module


def test_the_scan_finds_sql_in_a_string() -> None:
    """The check above can fail: a statement in a string is found."""
    assert any(w in "SELECT value FROM memories WHERE id = ?".upper() for w in SQL_WORDS)


def test_conflicts_tell_values_apart_by_type(memory: MinnaMemory) -> None:
    """1, 1.0, "1" and None are four different values on every engine; the same value
    stored twice is no conflict."""
    ids = [memory.store("x", "a", v) for v in (1, 1.0, "1", None, 1)]
    memory.store("y", "b", 7)
    memory.store("y", "b", 7)
    memory.store("z", "c", None)
    memory.store("z", "c", None)
    assert memory.detect_conflicts() == {
        "conflicts": [
            {"entity": "x", "attribute": "a", "values": [1, 1.0, "1", None], "memory_ids": ids}
        ]
    }
    (found,) = memory.detect_conflicts(entity="x")["conflicts"]
    assert [type(v) for v in found["values"]] == [int, float, str, type(None)]
    assert memory.detect_conflicts(attribute="b") == {"conflicts": []}


def test_lists_order_text_by_bytes_and_match_any_case(memory: MinnaMemory) -> None:
    """Entities, conflicts, preferences and entity types come back in the same order on
    every engine: by the bytes of the text (as SQLite compares), not a locale's order."""
    names = ["beta", "Beta", "alpha", "_under", "Zed", "élan", "10", "9"]
    for name in names:
        memory.add_entity(name, f"type-{name}")
        memory.store(name, "k", 1)
        memory.store(name, "k", 2)
        memory.set_preference(name, "key", 1)
    by_bytes = sorted(names, key=lambda n: n.encode("utf-8"))
    assert [e.name for e in memory.find_entities(limit=50)] == by_bytes
    assert [c["entity"] for c in memory.detect_conflicts()["conflicts"]] == by_bytes
    assert [p["category"] for p in memory.get_preferences()] == by_bytes
    assert list(memory.stats()["entity_types"]) == [f"type-{n}" for n in by_bytes]
    assert [e.name for e in memory.find_entities("BET")] == ["Beta", "beta"]
    assert [e.name for e in memory.find_entities("_")] == ["_under"]  # literal, not a wildcard


@pytest.mark.postgres
def test_postgresql_orders_by_bytes_in_a_database_with_a_locale(pg_cluster: Cluster) -> None:
    """A database whose collation sorts by language (ICU en-US: 'alpha' < 'Beta' < 'beta')
    still lists entities, conflicts and preferences as SQLite does."""
    name = f"icu_{uuid.uuid4().hex}"
    try:
        pg_cluster.admin(
            f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu'
            " ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        )
    except Exception as e:  # noqa: BLE001 - a server built without ICU
        pytest.skip(f"this PostgreSQL cannot make an ICU database: {e}")
    try:
        with MinnaMemory(pg_cluster.url(name)) as memory:
            test_lists_order_text_by_bytes_and_match_any_case(memory)
            # The database itself orders by language: the check above can fail.
            locale = memory.connection.execute(
                "SELECT name FROM entities ORDER BY name LIMIT 3"
            ).fetchall()
            assert [r[0] for r in locale] != sorted(r[0] for r in locale)
    finally:
        pg_cluster.drop_database(name)


def test_every_view_is_defined_once() -> None:
    assert set(VIEWS) == set(VIEW_TEMPLATES)
    assert "julianday" in VIEWS["task_transitions"]  # SQLite's spelling filled in
    with pytest.raises(ValueError, match="status_text"):
        spelled({k: v for k, v in SQLITE_SPELLING.items() if k != "status_text"})


VIEW_COLUMNS = {
    "tasks": [
        "id",
        "title",
        "description",
        "status",
        "priority",
        "attempts",
        "max_attempts",
        "owner",
        "lease_expires_at",
        "error",
        "payload",
        "result",
        "created_at",
        "updated_at",
        "claim_token",
        "blocked_by_count",
    ],
    "task_transitions": TRANSITION_COLUMNS,
    "task_status_counts": ["status", "count"],
    "task_dependencies": ["task_id", "task_status", "depends_on", "depends_on_status", "since"],
    "task_expired_leases": [
        "id",
        "title",
        "status",
        "owner",
        "lease_expires_at",
        "seconds_overdue",
    ],
}


@contextmanager
def plain(location: Any) -> Iterator[Any]:
    """A connection of the engine's own driver (no minna_tasks code)."""
    if is_postgres_url(str(location)):
        import psycopg

        with psycopg.connect(str(location), autocommit=True) as conn:
            yield conn
    else:
        conn = sqlite3.connect(location)
        try:
            yield conn
        finally:
            conn.close()


def test_the_views_read_alike_on_every_engine(db_path: Any) -> None:
    """The same columns on both engines, and rows that say what the store says."""
    store = build_demo(db_path)
    try:
        tasks = {t.id: t for t in store.list(limit=None)}
        history = [(t, step) for t in tasks for step in store.history(t)]
        stats = {s: n for s, n in store.stats().items() if n}
    finally:
        store.close()
    with plain(db_path) as conn:
        rows = {}
        for view, columns in VIEW_COLUMNS.items():
            cursor = conn.execute(f"SELECT * FROM {view}")  # constant view names
            assert [d[0] for d in cursor.description] == columns, view
            rows[view] = [dict(zip(columns, r, strict=True)) for r in cursor.fetchall()]
    assert {r["id"]: r["status"] for r in rows["tasks"]} == {i: t.status for i, t in tasks.items()}
    assert {r["status"]: r["count"] for r in rows["task_status_counts"]} == stats
    moves = [(r["task_id"], r["from_state"], r["to_state"]) for r in rows["task_transitions"]]
    assert sorted(moves, key=str) == sorted(
        [(t, s.from_state, s.to_state) for t, s in history if s.from_state != s.to_state],
        key=str,
    )
    spans = [r["seconds_in_previous_state"] for r in rows["task_transitions"]]
    assert all(s is None or (isinstance(s, float) and s >= 0) for s in spans)
    assert any(isinstance(s, float) and s > 0 for s in spans)
    (dep,) = rows["task_dependencies"]
    assert tasks[dep["task_id"]].title == "Summarise it"
    assert tasks[dep["depends_on"]].title == "Fetch the report"
    (expired,) = rows["task_expired_leases"]
    assert expired["owner"] == "ghost"
    assert isinstance(expired["seconds_overdue"], float)
    assert expired["seconds_overdue"] > 0


def test_a_store_opens_with_the_engine_s_memory_operations(db_path: Any) -> None:
    with TaskStore(db_path) as store:
        task = store.add("seam")
        assert store.memory.current(task.id, "title") == "seam"
        assert [m.entity for m in store.memory.search("seam")] == [task.id]


def test_a_01_file_is_searched_counted_and_listed_through_the_seam(tmp_path: Path) -> None:
    """tests/data/minna-0.1.sqlite (written by 0.1.0, whose trigger indexed every row)."""
    path = tmp_path / "minna.db"
    path.write_bytes((ROOT / "tests" / "data" / "minna-0.1.sqlite").read_bytes())
    with MinnaMemory(path) as memory:
        assert [(m.entity, m.attribute) for m in memory.search("summarise report")] == [
            ("t-1", "title")
        ]
        stats = memory.stats()
        assert (stats["entities"], stats["relations"], stats["sessions"]) == (3, 1, 1)
        assert stats["entity_types"] == {"person": 1, "task": 2}
        assert [e.name for e in memory.find_entities("J")] == ["Jack"]
        assert memory.get_entity("jj") == memory.get_entity("Jack")
