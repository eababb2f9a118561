"""Errors by SQLite's result codes, never by the words of a message, and a type of our own
for every condition, all importable from `minna_tasks`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import minna_tasks
from minna_tasks import (
    AliasTaken,
    EntityTypeConflict,
    IdTaken,
    MemoryNotFound,
    MinnaMemory,
    MinnaTasksError,
    MissingRole,
    StateMachine,
    StoreBusy,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreReadOnly,
    TaskFieldProtected,
    TaskStore,
)

from .conftest import unchanged


def another_tool(db: Path, sql: str) -> None:
    conn = sqlite3.connect(db)
    conn.executescript(sql)
    conn.close()


def test_a_write_lock_held_by_another_connection_is_store_busy(db_path: Path) -> None:
    TaskStore(db_path).close()
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with TaskStore(db_path, timeout=0.05) as store, pytest.raises(StoreBusy) as info:
            store.add("x")
        assert str(info.value) == (
            f"{db_path} is busy: another process held the write lock too long; nothing was written"
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_connection_sqlite_makes_read_only_is_store_read_only(db_path: Path) -> None:
    with TaskStore(db_path) as store:
        store.memory.connection.execute("PRAGMA query_only = 1")  # SQLITE_READONLY on writes
        with unchanged(db_path), pytest.raises(StoreReadOnly) as info:
            store.add("x")
        assert str(info.value) == f"{db_path} is read-only; nothing was written"


def test_a_full_database_is_store_full(db_path: Path) -> None:
    with TaskStore(db_path) as store:
        conn = store.memory.connection
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 1}")
        with pytest.raises(StoreFull, match="is full"):
            store.add_many([{"title": "x" * 2000} for _ in range(200)])
        assert store.list() == []


def test_a_damaged_file_is_store_corrupt(db_path: Path) -> None:
    TaskStore(db_path).close()
    data = db_path.read_bytes()
    db_path.write_bytes(data[:100] + b"\xff" * (len(data) - 100))
    with pytest.raises(StoreCorrupt, match="is not a usable SQLite database"):
        TaskStore(db_path)


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        # Another tool's trigger names a table with "locked" in it: not a busy file.
        (
            "CREATE TRIGGER t AFTER INSERT ON memories BEGIN"
            " INSERT INTO locked_jobs VALUES (new.id); END;",
            "no such table: main.locked_jobs",
        ),
        # ... a column named readonly_flag: not a read-only file.
        (
            "CREATE TABLE flags (readonly_flag INTEGER CHECK (readonly_flag < 0));"
            "CREATE TRIGGER t AFTER INSERT ON memories BEGIN"
            " INSERT INTO flags VALUES (1); END;",
            "CHECK constraint failed: readonly_flag < 0",
        ),
        # ... a message saying "full" or "busy": not a full disk, not a lock.
        (
            "CREATE TRIGGER t AFTER INSERT ON memories BEGIN"
            " SELECT RAISE(ABORT, 'inbox full, worker busy, database locked'); END;",
            "inbox full, worker busy, database locked",
        ),
    ],
)
def test_errors_are_classified_by_code_not_by_words(db_path: Path, sql: str, words: str) -> None:
    TaskStore(db_path).close()
    another_tool(db_path, sql)
    with TaskStore(db_path) as store, pytest.raises(StoreError) as info:
        store.add("x")
    assert type(info.value) is StoreError
    assert str(info.value) == f"{db_path}: {words}"


def test_each_condition_has_a_type_of_its_own(memory_store: TaskStore) -> None:
    memory = memory_store.memory
    memory.add_entity("Ada", "person", aliases=["ada"])
    with pytest.raises(IdTaken, match="id 'Ada' is already used by a 'person' entity"):
        memory_store.add("x", task_id="Ada")
    with pytest.raises(AliasTaken, match="alias 'ada' already names another entity"):
        memory.add_entity("Other", "person", aliases=["ada"])
    with pytest.raises(EntityTypeConflict, match="exists with type 'person', not 'project'"):
        memory.add_entity("Ada", "project")
    with pytest.raises(MemoryNotFound, match="memory 999 not found"):
        memory.verify(999)
    task = memory_store.add("x")
    with pytest.raises(TaskFieldProtected, match="its status changes only through"):
        memory_store.remember(task.id, "status", "completed")


def test_retry_on_a_machine_without_a_failed_state(tmp_path: Path) -> None:
    machine = StateMachine(
        {"todo": ["doing"], "doing": ["done", "todo"], "done": []}, initial="todo"
    )
    with TaskStore(tmp_path / "m.db", machine=machine) as store:
        store.add("x")
        with pytest.raises(MissingRole) as info:
            store.retry("t-1")
    assert str(info.value) == "this state machine has no failed state; retry needs one"


def test_every_error_is_exported_and_derives_from_the_base() -> None:
    names = [n for n in minna_tasks.__all__ if n.endswith(("Error", "Busy", "Full", "Taken"))]
    names += ["TaskNotFound", "InvalidTransition", "TransitionConflict", "MachineMismatch"]
    names += ["MachineInUse", "StoreReadOnly", "StoreCorrupt", "MemoryNotFound", "MissingRole"]
    names += ["EntityTypeConflict", "TaskFieldProtected", "UnknownState", "TaskExists"]
    assert "ImportFormatError" in names
    for name in names:
        assert name in minna_tasks.__all__
        assert issubclass(getattr(minna_tasks, name), MinnaTasksError), name


def test_memory_errors_work_on_a_bare_memory() -> None:
    with MinnaMemory(":memory:") as memory, pytest.raises(MemoryNotFound):
        memory.verify(1)
