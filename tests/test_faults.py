"""Storage faults: a full database and a write lock held past the busy timeout.

Each gives a clear MinnaTasksError (StoreFull / StoreBusy) in the library and
one `Error: ...` line from the command line, writes nothing (the logical dump
is unchanged), and the same store works again once the cause is gone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from minna_tasks import (
    MinnaTasksError,
    StoreBusy,
    StoreFull,
    TaskStore,
    jsonio,
    state_machine_loop,
)

from .conftest import dump
from .reliability_workers import ROOT, integrity, start, wait_for

FULL = "is full (database or disk is full); nothing was written"
BUSY = "is busy: another process held the write lock too long; nothing was written"


def limit_growth(store: TaskStore, spare_pages: int = 0) -> None:
    """Let this store's connection grow the file by `spare_pages` pages at most."""
    conn = store.memory.connection
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + spare_pages}")


def lift_limit(store: TaskStore) -> None:
    store.memory.connection.execute("PRAGMA max_page_count = 1073741823")


def big_document(count: int) -> dict[str, Any]:
    stamp = "2026-01-01T00:00:00.000000+00:00"
    return {
        "format": "minna-tasks",
        "version": 1,
        "tasks": [
            {
                "id": f"imp-{i}",
                "created_at": stamp,
                "history": [
                    {"attribute": "title", "value": "x" * 2000, "created_at": stamp},
                    {"attribute": "status", "value": "pending", "created_at": stamp},
                ],
            }
            for i in range(count)
        ],
    }


@pytest.fixture
def full_store(db_path: Path) -> Iterator[TaskStore]:
    """A store holding t-1 pending and t-2 in_progress (by w1), whose file cannot grow."""
    with TaskStore(db_path) as store:
        store.add_many(["one", "two"])
        store.transition("t-2", "in_progress", actor="w1")
        limit_growth(store)
        yield store


def test_a_full_database_refuses_every_write_and_changes_nothing(
    full_store: TaskStore, db_path: Path, tmp_path: Path
) -> None:
    store = full_store
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps(big_document(100)))
    writes: list[Callable[[], object]] = [
        lambda: store.add_many([{"title": "x" * 1000} for _ in range(200)]),
        lambda: store.add("big", payload={"blob": "y" * 100_000}),
        lambda: store.transition("t-2", "review", actor="w1", result="z" * 100_000),
        lambda: store.memory.store("notes", "text", "n" * 100_000),
        lambda: jsonio.import_tasks(store, doc),  # nested savepoints inside one transaction
    ]
    before = dump(db_path)
    for write in writes:
        with pytest.raises(StoreFull) as caught:
            write()
        assert str(caught.value) == f"{db_path} {FULL}"
        assert dump(db_path) == before
    assert store.get("t-2").status == "in_progress"
    assert integrity(db_path) == "ok"
    # The cause gone, the same store works again.
    lift_limit(store)
    assert len(store.add_many([{"title": "x" * 1000} for _ in range(200)])) == 200
    assert store.transition("t-2", "review", actor="w1", result="z" * 100_000).status == "review"
    assert jsonio.import_tasks(store, doc).imported == 100
    assert integrity(db_path) == "ok"


def test_the_loop_stops_on_a_full_file_and_loses_nothing(
    full_store: TaskStore, db_path: Path
) -> None:
    """The result cannot be stored: the loop raises StoreFull, the task stays claimed."""
    store = full_store
    with pytest.raises(StoreFull):
        state_machine_loop(store, lambda t: "r" * 200_000, worker="w2", lease_seconds=60)
    # t-1 was claimed (a small write fits) and its result refused: held by w2, not lost.
    held = {t.id: t.owner for t in store.list(status="in_progress")}
    assert held == {"t-1": "w2", "t-2": "w1"}
    lift_limit(store)
    # Its lease runs out like a crashed worker's; recover hands it back.
    back = store.recover(now=datetime.now(UTC) + timedelta(hours=1))
    assert [(t.id, t.status, t.attempts) for t in back] == [
        ("t-1", "pending", 1),
        ("t-2", "pending", 1),
    ]
    summary = state_machine_loop(store, lambda t: "r" * 200_000, worker="w2")
    assert summary["completed"] == 2


def fault_cli(
    db: Path, *args: str, spare: int | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if spare is not None:
        env["MINNA_FAULT_SPARE_PAGES"] = str(spare)
    if timeout is not None:
        env["MINNA_FAULT_TIMEOUT"] = str(timeout)
    return subprocess.run(
        [sys.executable, "-m", "tests.fault_cli", "--db", str(db), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_one_error_line(done: subprocess.CompletedProcess[str], text: str) -> None:
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("Error: ")
    assert text in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_on_a_full_file_prints_one_error_line(db_path: Path, tmp_path: Path) -> None:
    with TaskStore(db_path) as store:
        store.add("one")
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps(big_document(100)))
    before = dump(db_path)
    payload = json.dumps({"blob": "y" * 100_000})
    for args in (("add", "big", "--payload", payload), ("import", str(doc))):
        done = fault_cli(db_path, *args, spare=0)
        assert_one_error_line(done, f"Error: {db_path} {FULL}")
        assert dump(db_path) == before
    # Without the limit, the same commands work.
    done = fault_cli(db_path, "add", "big", "--payload", payload)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "t-2"


class LockHolder:
    """Another process holding the file's write lock (`BEGIN IMMEDIATE`) until let go."""

    def __init__(self, db_path: Path, tmp_path: Path) -> None:
        ready, self.release = tmp_path / "locked", tmp_path / "release"
        self.proc = start("hold_lock", str(db_path), str(ready), str(self.release))
        wait_for(ready, self.proc)

    def let_go(self) -> None:
        self.release.touch()
        _, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, err


@pytest.fixture
def lock_holder(db_path: Path, tmp_path: Path) -> Iterator[LockHolder]:
    """t-1 pending, t-2 in_progress (w1), and another process holding the write lock."""
    with TaskStore(db_path) as store:
        store.add_many(["one", "two"])
        store.transition("t-2", "in_progress", actor="w1")
    holder = LockHolder(db_path, tmp_path)
    yield holder
    if holder.proc.poll() is None:
        holder.let_go()


def test_a_writer_busy_past_the_timeout_gives_store_busy_and_writes_nothing(
    lock_holder: LockHolder, db_path: Path
) -> None:
    before = dump(db_path)  # readers are never blocked in WAL mode
    with TaskStore(db_path, timeout=0.2) as store:
        writes: list[Callable[[], object]] = [
            lambda: store.add("three"),
            lambda: store.claim("w2"),
            lambda: store.transition("t-2", "review", actor="w1", result=1),
            lambda: store.heartbeat("t-2", "w1"),
            lambda: store.recover(),
            lambda: store.memory.store("notes", "text", "hello"),
        ]
        for write in writes:
            with pytest.raises(StoreBusy) as caught:
                write()
            assert str(caught.value) == f"{db_path} {BUSY}"
            assert isinstance(caught.value, MinnaTasksError)
        assert dump(db_path) == before
        assert store.get("t-1").status == "pending"  # reads still work
        lock_holder.let_go()
        assert store.add("three").id == "t-3"
        assert store.claim("w2") is not None
    assert integrity(db_path) == "ok"


def test_cli_with_a_busy_writer_prints_one_error_line(
    lock_holder: LockHolder, db_path: Path
) -> None:
    before = dump(db_path)
    for args in (("add", "three"), ("claim", "--worker", "w2"), ("move", "t-2", "review")):
        done = fault_cli(db_path, *args, timeout=0.2)
        assert_one_error_line(done, f"Error: {db_path} {BUSY}")
    assert dump(db_path) == before
    lock_holder.let_go()
    done = fault_cli(db_path, "add", "three", timeout=0.2)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "t-3"
