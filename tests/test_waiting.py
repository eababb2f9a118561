"""Waiting for work and watching changes: claim(wait=...), follow loops, changes(), watch().

Real processes on a real file; every wait polls with a generous deadline, and no
test asserts how fast anything was (the speed is in benchmarks/waiting.py).
"""

from __future__ import annotations

import ast
import json
import math
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minna_tasks import MinnaMemory, Task, TaskStore, Transition, state_machine_loop
from minna_tasks.memory import SCHEMA_VERSION

from .conftest import file_digest, unchanged
from .test_seam import code_strings

ROOT = Path(__file__).resolve().parent.parent
OLD_FILE = Path(__file__).with_name("data") / "minna-0.1-tasks.sqlite"
DEADLINE = 60.0
TRIGGERS = "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"


def until(check: Callable[[], Any], timeout: float = DEADLINE, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail after a generous deadline."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def python(code: str, *args: str) -> subprocess.Popen[str]:
    """A real Python process running `code` (sys.argv[1:] = args)."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    return out


WAITING_CLAIM = """
    import json, sys
    from pathlib import Path
    from minna_tasks import TaskStore
    with TaskStore(sys.argv[1]) as store:
        Path(sys.argv[3]).touch()  # waiting now
        task = store.claim(sys.argv[2], wait=float(sys.argv[4]))
    print(json.dumps(None if task is None else task.id))
"""


# -- claim(wait=...) ------------------------------------------------------------


def test_a_waiting_claim_gets_a_task_another_process_adds_later(
    db_path: Path, tmp_path: Path
) -> None:
    TaskStore(db_path).close()
    ready = tmp_path / "waiting"
    waiter = python(WAITING_CLAIM, str(db_path), "w1", str(ready), "60")
    until(ready.exists, what="the waiter to start")
    adder = python(
        """
        import sys, time
        from minna_tasks import TaskStore
        time.sleep(0.3)
        with TaskStore(sys.argv[1]) as store:
            print(store.add("late work").id)
        """,
        str(db_path),
    )
    added = finish(adder).strip()
    assert json.loads(finish(waiter)) == added
    with TaskStore(db_path) as store:
        task = store.get(added)
    assert (task.status, task.owner) == ("in_progress", "w1")


def test_two_waiting_workers_one_task(db_path: Path, tmp_path: Path) -> None:
    TaskStore(db_path).close()
    marks = [tmp_path / "a", tmp_path / "b"]
    # The second waits long enough to be sure to see the task, short enough to time out.
    waiters = [
        python(WAITING_CLAIM, str(db_path), f"w{i}", str(mark), "8") for i, mark in enumerate(marks)
    ]
    for mark in marks:
        until(mark.exists, what="both waiters to start")
    with TaskStore(db_path) as store:
        task = store.add("only one")
    results = sorted(map(json.loads, map(finish, waiters)), key=str)
    assert results == [None, task.id]
    with TaskStore(db_path) as store:
        assert [t.id for t in store.list(status="in_progress")] == [task.id]
        assert len([h for h in store.history(task.id) if h.to_state == "in_progress"]) == 1


def test_a_waiting_claim_wakes_for_this_process_own_commit(store: TaskStore, db_path: Path) -> None:
    """data_version does not change for a connection's own commits: the in-process signal
    must wake the waiter when a thread of this process adds through the same store."""
    got: list[Task | None] = []
    waiter = threading.Thread(target=lambda: got.append(store.claim("w", wait=60)))
    waiter.start()
    time.sleep(0.05)
    task = store.add("from this process")
    waiter.join(DEADLINE)
    assert not waiter.is_alive()
    assert got[0] is not None
    assert got[0].id == task.id


def test_a_waiting_claim_on_a_private_in_memory_file(memory_store: TaskStore) -> None:
    got: list[Task | None] = []
    waiter = threading.Thread(target=lambda: got.append(memory_store.claim("w", wait=60)))
    waiter.start()
    task = memory_store.add("in memory")
    waiter.join(DEADLINE)
    assert got[0] is not None
    assert got[0].id == task.id


def test_a_task_released_by_another_worker_is_picked_up(store: TaskStore) -> None:
    task = store.add("passed around")
    store.claim("first")
    got: list[Task | None] = []
    waiter = threading.Thread(target=lambda: got.append(store.claim("second", wait=60)))
    waiter.start()
    store.release(task.id, "first")
    waiter.join(DEADLINE)
    assert got[0] is not None
    assert (got[0].id, got[0].owner) == (task.id, "second")


@pytest.mark.sqlite_only
def test_waiting_writes_nothing_and_times_out_with_none(store: TaskStore, db_path: Path) -> None:
    store.add("held elsewhere")
    store.claim("someone")
    before = file_digest(db_path)
    assert store.claim("w", wait=0.3) is None
    assert file_digest(db_path) == before  # no write while idle: file and WAL unchanged


def test_stop_ends_a_wait(store: TaskStore) -> None:
    stop = threading.Event()
    got: list[Task | None] = [store.add("x")]
    store.claim("holder")
    waiter = threading.Thread(target=lambda: got.append(store.claim("w", wait=600, stop=stop)))
    waiter.start()
    stop.set()
    waiter.join(DEADLINE)
    assert not waiter.is_alive()
    assert got[-1] is None


@pytest.mark.parametrize(
    ("wait", "error", "message"),
    [
        (-1, ValueError, "wait must be zero or more seconds, not -1"),
        (math.nan, ValueError, "wait must be zero or more seconds, not nan"),
        (math.inf, ValueError, "wait must be zero or more seconds, not inf"),
        ("5", TypeError, "wait must be a number of seconds, not str"),
        (True, TypeError, "wait must be a number of seconds, not bool"),
    ],
)
def test_bad_waits_are_refused_and_write_nothing(
    store: TaskStore, db_path: Path, wait: Any, error: type[Exception], message: str
) -> None:
    store.add("still pending")
    with unchanged(db_path), pytest.raises(error, match=f"^{message}$"):
        store.claim("w", wait=wait)
    assert store.get("t-1").status == "pending"


def test_zero_wait_is_one_attempt(store: TaskStore) -> None:
    assert store.claim("w", wait=0) is None
    task = store.add("x")
    claimed = store.claim("w", wait=0)
    assert claimed is not None
    assert claimed.id == task.id


# -- state_machine_loop(follow=True) --------------------------------------------


def test_a_following_loop_runs_tasks_added_later_until_stopped(
    store: TaskStore, db_path: Path
) -> None:
    stop = threading.Event()
    done: list[str] = []

    def execute(task: Task) -> str:
        done.append(task.id)
        return "ok"

    summary: list[Any] = []
    loop = threading.Thread(
        target=lambda: summary.append(
            state_machine_loop(store, execute, worker="w", follow=True, stop=stop)
        )
    )
    loop.start()
    adder = python(
        """
        import sys
        from minna_tasks import TaskStore
        with TaskStore(sys.argv[1]) as store:
            for i in range(3):
                store.add(f"task {i}")
        """,
        str(db_path),
    )
    finish(adder)
    until(lambda: len(done) == 3, what="three tasks executed")
    assert loop.is_alive()  # an empty queue does not end a following loop
    stop.set()
    loop.join(DEADLINE)
    assert not loop.is_alive()
    assert (summary[0]["completed"], summary[0]["released"]) == (3, 0)
    assert store.stats()["completed"] == 3
    assert sorted(done) == ["t-1", "t-2", "t-3"]


def test_a_following_loop_recovers_a_dead_workers_task_when_its_lease_expires(
    store: TaskStore,
) -> None:
    task = store.add("the dead worker's")
    store.claim("dead", lease_seconds=0.5)
    stop = threading.Event()
    done: list[Task] = []

    def execute(t: Task) -> str:
        done.append(t)
        stop.set()
        return "ok"

    state_machine_loop(store, execute, worker="alive", follow=True, stop=stop)
    assert [t.id for t in done] == [task.id]
    assert done[0].attempts == 1  # the expired attempt counted
    notes = [h.note or "" for h in store.history(task.id)]
    assert any(n.startswith("lease of dead expired") for n in notes)


def test_a_stop_while_idle_leaves_nothing_held(store: TaskStore) -> None:
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    state_machine_loop(store, lambda t: None, worker="w", follow=True, stop=stop)
    timer.join()
    store.add("after the stop")
    assert store.list(status="in_progress") == []


# -- changes() and watch() -------------------------------------------------------


def test_changes_are_the_status_log_with_cursors(store: TaskStore) -> None:
    a = store.add("a")
    store.memory.store("alice", "status", "busy")  # not a task: not a change
    b = store.add("b")
    store.claim("w")
    log = store.changes()
    assert [(c.task_id, c.from_state, c.to_state) for c in log] == [
        (a.id, None, "pending"),
        (b.id, None, "pending"),
        (a.id, "pending", "in_progress"),
    ]
    cursors = [c.cursor for c in log]
    assert all(isinstance(c, int) for c in cursors)
    assert cursors == sorted(set(cursors))
    # Resume exactly after any change: nothing skipped, nothing twice.
    for i, change in enumerate(log):
        assert store.changes(since=change.cursor) == log[i + 1 :]
    assert store.changes(task_id=a.id) == [log[0], log[2]]
    # The history holds the same records, cursors included.
    assert [h.cursor for h in store.history(a.id)] == [log[0].cursor, log[2].cursor]


def test_the_cursor_is_left_out_of_equality() -> None:
    one = Transition("t-1", None, "pending", "2026-01-01T00:00:00+00:00", None, "created", 5)
    other = Transition("t-1", None, "pending", "2026-01-01T00:00:00+00:00", None, "created", 9)
    assert one == other
    assert one.cursor != other.cursor
    assert Transition.from_dict(one.to_dict()).cursor == 5


def test_changes_since_a_time(store: TaskStore) -> None:
    store.add("before")
    middle = datetime.now(UTC)
    until(lambda: datetime.now(UTC) > middle, what="the clock to move")
    later = store.add("after")
    assert [c.task_id for c in store.changes(since=middle)] == [later.id]
    assert [c.task_id for c in store.changes(since=middle.isoformat())] == [later.id]
    future = datetime.now(UTC) + timedelta(days=1)
    assert store.changes(since=future) == []


@pytest.mark.parametrize(
    ("since", "error", "message"),
    [
        ("yesterday", ValueError, "not an ISO-8601 time: 'yesterday'"),
        (-1, ValueError, "since must be at least 0, not -1"),
        (1.5, TypeError, "since must be a cursor \\(int\\) or a time, not float"),
    ],
)
def test_bad_since_is_refused(
    store: TaskStore, since: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        store.changes(since=since)
    with pytest.raises(error, match=message):
        next(store.watch(since=since))


def test_memory_ids_are_never_reused_after_a_delete(store: TaskStore) -> None:
    store.add("x")
    top = store.memory.store("scratch", "note", "newest")
    store.memory.connection.execute("DELETE FROM memories WHERE id = ?", (top,))
    assert store.memory.store("scratch", "note", "again") > top
    cursor = store.changes()[-1].cursor
    store.claim("w")
    assert [c.to_state for c in store.changes(since=cursor)] == ["in_progress"]


def test_watch_yields_changes_from_other_processes_live(db_path: Path) -> None:
    with TaskStore(db_path) as store:
        store.add("old")
        after = store.changes()[-1].cursor
        stop = threading.Event()
        seen: list[Transition] = []
        reader = threading.Thread(target=lambda: seen.extend(store.watch(since=after, stop=stop)))
        reader.start()
        finish(
            python(
                """
                import sys
                from minna_tasks import TaskStore
                with TaskStore(sys.argv[1]) as store:
                    store.add("new")
                    store.claim("other")
                """,
                str(db_path),
            )
        )
        until(lambda: len(seen) >= 2, what="two changes")
        stop.set()
        reader.join(DEADLINE)
        assert not reader.is_alive()
    assert [(c.task_id, c.to_state) for c in seen] == [("t-2", "pending"), ("t-1", "in_progress")]


def test_watch_since_replays_then_follows(store: TaskStore) -> None:
    store.add("a")
    first = store.changes()[0].cursor
    store.add("b")
    stop = threading.Event()
    changes = store.watch(since=first, stop=stop)
    assert next(changes).task_id == "t-2"
    store.claim("w")
    assert (next(changes).task_id, stop.set()) == ("t-1", None)
    assert list(changes) == []


def test_watch_one_task(store: TaskStore) -> None:
    store.add("a")
    store.add("b")
    stop = threading.Event()
    changes = store.watch(since=0, stop=stop, task_id="t-2")
    assert next(changes).task_id == "t-2"
    store.claim("w")  # t-1
    store.claim("w")  # t-2
    change = next(changes)
    assert (change.task_id, change.to_state) == ("t-2", "in_progress")
    stop.set()
    assert list(changes) == []


# -- the memory id migration -------------------------------------------------------


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    path = tmp_path / "old.db"
    shutil.copyfile(OLD_FILE, path)
    return path


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_01_file_migrates_keeping_all_its_data(old_file: Path) -> None:
    memories = _rows(old_file, "SELECT * FROM memories ORDER BY id")
    entities = _rows(old_file, "SELECT * FROM entities ORDER BY id")
    relations = _rows(old_file, "SELECT * FROM relations ORDER BY id")
    assert _rows(old_file, "PRAGMA user_version") == [(1,)]
    with TaskStore(old_file) as store:
        assert store.memory.connection.execute("PRAGMA user_version").fetchone()[0] == (
            SCHEMA_VERSION
        )
        history = store.history("t-1")
        stats = store.stats()
        hits = store.memory.search("report")
    assert _rows(old_file, "SELECT * FROM memories ORDER BY id") == memories
    assert _rows(old_file, "SELECT * FROM entities ORDER BY id") == entities
    assert _rows(old_file, "SELECT * FROM relations ORDER BY id") == relations
    assert [h.to_state for h in history] == ["pending", "in_progress", "review", "completed"]
    assert stats == {"pending": 1, "in_progress": 1, "review": 0, "failed": 0, "completed": 1}
    assert [m["value"] for m in hits] == ["write the report"]
    sql = _rows(old_file, "SELECT sql FROM sqlite_master WHERE name = 'memories'")[0][0]
    assert "AUTOINCREMENT" in sql


def test_a_migrated_file_keeps_its_triggers_and_ids_only_grow(old_file: Path) -> None:
    triggers = {name for name, _ in _rows(old_file, TRIGGERS)}
    top = _rows(old_file, "SELECT max(id) FROM memories")[0][0]
    with TaskStore(old_file) as store:
        # None lost (a later task migration may redefine one: compare the names).
        assert triggers <= {name for name, _ in _rows(old_file, TRIGGERS)}
        # The projection's triggers work: a plain SQL status row moves the task.
        store.memory.connection.execute(
            "INSERT INTO memories (entity, attribute, value, created_at)"
            " VALUES ('t-3', 'status', 'failed', '2026-01-01T00:00:00+00:00')"
        )
        assert store.get("t-3").status == "failed"
        newest = store.memory.store("x", "y", "z")
        assert newest > top
        store.memory.connection.execute("DELETE FROM memories WHERE id = ?", (newest,))
        assert store.memory.store("x", "y", "again") > newest
        for i in range(200):  # enough to fill the full-text index in a batch
            store.memory.store("bulk", "n", f"word{i}")
        assert [m["value"] for m in store.memory.search("word7")] == ["word7"]


def test_a_migration_in_another_process_is_seen_by_a_plain_memory(old_file: Path) -> None:
    """MinnaMemory alone (no TaskStore) migrates too, and keeps the task triggers."""
    triggers = {name for name, _ in _rows(old_file, TRIGGERS)}
    with MinnaMemory(old_file) as memory:
        assert {name for name, _ in _rows(old_file, TRIGGERS)} == triggers
        memory.connection.execute(
            "INSERT INTO memories (entity, attribute, value, created_at)"
            " VALUES ('t-3', 'title', 'renamed', '2026-01-01T00:00:00+00:00')"
        )
    with TaskStore(old_file) as store:
        assert store.get("t-3").title == "renamed"


OPS = st.lists(
    st.sampled_from(["add", "claim", "release", "remember", "forget", "complete"]),
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(OPS)
def test_any_cursor_resumes_exactly(ops: list[str]) -> None:
    """Whatever happened (deletes of the newest memories included), the changes after a
    change's cursor are exactly the ones that follow it, and they are every task's history
    merged in commit order."""
    with TaskStore(":memory:") as store:
        marks: list[tuple[int, int]] = []  # (the newest memory id, changes so far) after each op
        for op in ops:
            held = store.list(status="in_progress")
            if op == "add":
                store.add("t")
            elif op == "claim":
                store.claim("w")
            elif op == "release" and held:
                store.release(held[0].id, "w")
            elif op == "complete" and held:
                store.transition(held[0].id, "review", actor="w")
            elif op == "remember":  # enough rows that a task's next status could reuse an id
                with store.memory.transaction():
                    for i in range(8):
                        store.memory.store("someone", "status", f"busy {i}")
            elif op == "forget":
                store.memory.connection.execute("DELETE FROM memories WHERE entity = 'someone'")
            top = store.memory.connection.execute("SELECT max(id) FROM memories").fetchone()[0]
            marks.append((top or 0, len(store.changes())))
        log = store.changes()
        merged = sorted(
            (h for t in store.list() for h in store.history(t.id)), key=lambda h: h.cursor or 0
        )
        assert log == merged
        assert [c.cursor for c in log] == [h.cursor for h in merged]
        assert store.changes(since=0) == log
        for i, change in enumerate(log):
            assert store.changes(since=change.cursor) == log[i + 1 :]
        # A reader that stopped at the newest id it saw misses nothing written later,
        # even when that newest row was deleted meanwhile (ids are never reused).
        for top, count in marks:
            assert store.changes(since=top) == log[count:]


@pytest.mark.parametrize(
    "path",
    ["minna_tasks/store/changes.py", "minna_tasks/store/waiting.py", "minna_tasks/mcp_notify.py"],
)
def test_waiting_and_the_feed_never_ask_which_engine(path: str) -> None:
    """Change detection and the feed's SQL are the engine's (engines/feed.py): these
    modules neither branch on the engine nor hold the feed's SQL (docstrings may name
    the engines)."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    code = code_strings(ROOT / path)
    code += [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)]
    code += [n.id for n in ast.walk(tree) if isinstance(n, ast.Name)]
    code += [a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names]
    code += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    found = [c for c in code if re.search(r"postgres|sqlite|data_version|FROM memories", c, re.I)]
    assert "engine" not in code
    assert found == []


def test_each_engine_provides_change_detection_and_the_feed(store: TaskStore) -> None:
    feed = store.memory.change_feed()
    with feed.detector() as detector, store.memory.reading() as conn:
        start = feed.position(conn, None)
        assert not detector.changed()
    store.add("a")
    with feed.detector() as detector:
        assert detector.wait(0) is False
        store.add("b")
        assert detector.wait(DEADLINE)
    with store.memory.reading() as conn:
        batch = feed.status_changes(conn, start, None, None, -1)
        touched = feed.touched(conn, start)
    assert [(row[1], row[3]) for row in batch.rows] == [("t-1", "pending"), ("t-2", "pending")]
    assert batch.position > start
    assert touched.rows == ["t-1", "t-2"]
