"""The sqlite-utils views: right against TaskStore, right after plain-SQL writes,
write-free when current, and safe when several processes open the file at once."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minna_tasks import MinnaTasksError, Task, TaskStore, Transition, state_machine_loop
from minna_tasks.views import VIEWS, _stale, ensure_views, view_sql

DESIGN_TASK_COLUMNS = [
    "id",
    "title",
    "status",
    "priority",
    "attempts",
    "max_attempts",
    "owner",
    "lease_expires_at",
    "created_at",
    "updated_at",
]
TRANSITION_COLUMNS = [
    "memory_id",
    "task_id",
    "from_state",
    "to_state",
    "at",
    "actor",
    "reason",
    "seconds_in_previous_state",
]


def build_demo(path: Path) -> TaskStore:
    """A small file like `minna-tasks demo` makes: every state and an expired lease.

    Returns the open store; the caller closes it.
    """
    store = TaskStore(path)
    fetch = store.add("Fetch the report", priority=2, payload={"url": "https://example.org/r"})
    store.add("Summarise it", priority=1, depends_on=[fetch.id])
    store.add("Flaky check", description="fails verification once")
    store.add("Doomed", max_attempts=2, payload={"boom": True})
    seen: set[str] = set()

    def execute(task: Task) -> dict[str, Any]:
        time.sleep(0.02)  # so the timeline has visible spans
        if task.payload and task.payload.get("boom"):
            raise RuntimeError(f"cannot do {task.title}")
        return {"done": task.title}

    def verify(task: Task) -> bool:
        if task.title == "Flaky check" and task.id not in seen:
            seen.add(task.id)
            return False
        return True

    state_machine_loop(store, execute, verify, worker="worker-1")
    stale = store.add("Held by a dead worker", priority=9)
    store.claim("ghost", lease_seconds=0.05)
    store.add("Waiting in the queue")
    time.sleep(0.1)  # the ghost's lease runs out
    assert store.get(stale.id).status == "in_progress"
    return store


def view_rows(path: Path | str, view: str, where: str = "") -> list[dict[str, Any]]:
    """Rows of a view read with plain sqlite3 (no minna_tasks code involved)."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {view} {where}")]
    finally:
        conn.close()


def task_from_row(row: dict[str, Any], deps: list[dict[str, Any]] | None = None) -> Task:
    """A `tasks` row (and its `task_dependencies` rows) as the Task TaskStore.get would
    return (JSON columns decoded)."""
    values = dict(row)
    for name in ("payload", "result"):
        if values[name] is not None:
            values[name] = json.loads(values[name])
    mine = [d for d in deps or [] if d["task_id"] == row["id"]]
    values["depends_on"] = [d["depends_on"] for d in mine]
    values["blocked_by"] = [d["depends_on"] for d in mine if d["depends_on_status"] != "completed"]
    assert values.pop("blocked_by_count") == len(values["blocked_by"])
    return Task.from_dict(values)


def transition_from_row(row: dict[str, Any]) -> Transition:
    return Transition(
        row["task_id"], row["from_state"], row["to_state"], row["at"], row["actor"], row["reason"]
    )


def status_history(store: TaskStore, task_id: str) -> list[Transition]:
    """history() less its dependency changes (the steps of the task's depends_on triples)."""
    changes = store.memory.recall(entity=task_id, attribute="depends_on", limit=None)
    dependency_steps = {(m["created_at"], m["source"], m["context"]) for m in changes}
    return [h for h in store.history(task_id) if (h.at, h.actor, h.note) not in dependency_steps]


def seconds_between(earlier: str, later: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


def assert_views_match(store: TaskStore, conn: sqlite3.Connection) -> None:
    """Every `tasks` row equals TaskStore.get; every task's transitions equal history."""
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM tasks")]
    deps = [dict(r) for r in conn.execute("SELECT * FROM task_dependencies")]
    assert [task_from_row(r, deps) for r in rows] == store.list()
    for task in store.list():
        assert task_from_row(
            dict(conn.execute("SELECT * FROM tasks WHERE id = ?", (task.id,)).fetchone()), deps
        ) == store.get(task.id)
    transitions = [dict(r) for r in conn.execute("SELECT * FROM task_transitions")]
    for task in store.list():
        mine = [r for r in transitions if r["task_id"] == task.id]
        history = status_history(store, task.id)
        assert [transition_from_row(r) for r in mine] == history
        assert mine[0]["seconds_in_previous_state"] is None
        for row, before, after in zip(mine[1:], history[:-1], history[1:], strict=True):
            assert row["seconds_in_previous_state"] == pytest.approx(
                seconds_between(before.at, after.at), abs=2e-3
            )
    assert len(transitions) == sum(len(status_history(store, t.id)) for t in store.list())
    counts = dict(conn.execute("SELECT status, count FROM task_status_counts").fetchall())
    assert counts == {s: n for s, n in store.stats().items() if n}


def test_views_have_the_design_columns(store: TaskStore) -> None:
    store.add("one")
    db = sqlite_utils.Database(store.path)
    assert set(VIEWS) <= set(db.view_names())
    columns = [c.name for c in db["tasks"].columns]
    assert set(DESIGN_TASK_COLUMNS) <= set(columns)
    assert columns[0] == "id"
    assert [c.name for c in db["task_transitions"].columns] == TRANSITION_COLUMNS
    assert [c.name for c in db["task_status_counts"].columns] == ["status", "count"]
    assert {"id", "owner", "lease_expires_at", "seconds_overdue"} <= {
        c.name for c in db["task_expired_leases"].columns
    }
    db.close()


def test_views_equal_the_store_on_a_demo_file(tmp_path: Path) -> None:
    path = tmp_path / "minna.db"
    store = build_demo(path)
    try:
        conn = sqlite3.connect(path)
        assert_views_match(store, conn)
        conn.close()
        statuses = {t.title: t.status for t in store.list()}
        assert statuses == {
            "Fetch the report": "completed",
            "Summarise it": "completed",
            "Flaky check": "completed",
            "Doomed": "failed",
            "Held by a dead worker": "in_progress",
            "Waiting in the queue": "pending",
        }
        expired = view_rows(path, "task_expired_leases")
        assert [(r["title"], r["owner"]) for r in expired] == [("Held by a dead worker", "ghost")]
        assert expired[0]["seconds_overdue"] > 0
    finally:
        store.close()


def test_a_live_lease_is_not_expired(store: TaskStore) -> None:
    store.add("busy")
    store.claim("w", lease_seconds=300)
    assert view_rows(store.path, "task_expired_leases") == []
    assert view_rows(store.path, "tasks")[0]["owner"] == "w"


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(-2, 2), st.integers(1, 3)),
        st.tuples(st.just("claim"), st.sampled_from(["w1", "w2"])),
        st.tuples(
            st.just("move"),
            st.integers(0, 5),
            st.sampled_from(["pending", "in_progress", "review", "completed", "failed"]),
        ),
        st.tuples(st.just("fail"), st.integers(0, 5)),
        st.tuples(st.just("release"), st.integers(0, 5)),
        st.tuples(st.just("heartbeat"), st.integers(0, 5)),
        st.tuples(st.just("retry"), st.integers(0, 5)),
        st.tuples(st.just("recover"), st.booleans()),
        # Another program appending a triple with plain SQL, bypassing the store.
        st.tuples(
            st.just("sql"),
            st.integers(0, 5),
            st.sampled_from(["status", "owner", "attempts", "title"]),
            st.sampled_from(["pending", "completed", "7", "by hand"]),
        ),
    ),
    max_size=30,
)


def _apply(store: TaskStore, op: tuple[Any, ...]) -> None:
    ids = [t.id for t in store.list()]
    kind = op[0]
    if kind == "add":
        store.add(f"task {len(ids)}", priority=op[1], max_attempts=op[2], payload={"n": len(ids)})
        return
    if kind == "claim":
        store.claim(op[1], lease_seconds=60)
        return
    if kind == "recover":
        later = datetime.now(UTC) + timedelta(hours=1)
        store.recover(now=later if op[1] else None)
        return
    if not ids:
        return
    task = store.get(ids[op[1] % len(ids)])
    if kind == "sql":
        store.memory.connection.execute(
            "INSERT INTO memories (entity, attribute, value, source, created_at)"
            " VALUES (?, ?, ?, 'other-tool', strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now'))",
            (task.id, op[2], op[3]),
        )
        return
    try:
        if kind == "move":
            store.transition(
                task.id,
                op[2],
                actor=task.owner or "someone",
                note=f"to {op[2]}",
                result={"ok": True} if op[2] == "review" else None,
            )
        elif kind == "fail":
            store.fail(task.id, task.owner, error="it broke")
        elif kind == "release":
            store.release(task.id, task.owner or "nobody")
        elif kind == "heartbeat":
            store.heartbeat(task.id, task.owner or "nobody", lease_seconds=60)
        elif kind == "retry":
            store.retry(task.id)
    except MinnaTasksError:
        pass  # a refused move writes nothing; the views must still agree


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_views_equal_the_store_on_random_histories(ops: list[tuple[Any, ...]]) -> None:
    with TaskStore(":memory:") as store:
        for op in ops:
            _apply(store, op)
        assert_views_match(store, store.memory.connection)


def test_rows_appended_with_plain_sqlite3_show_up(tmp_path: Path) -> None:
    path = tmp_path / "minna.db"
    with TaskStore(path) as store:
        first = store.add("first").id
        store.add("second")
    # Another program, knowing only the documented tables, writes plain SQL.
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO memories (entity, attribute, value, source, context, created_at)"
            " VALUES (?, 'status', 'in_progress', 'other-tool', 'picked by hand',"
            " '2999-01-01T00:00:00.000000+00:00')",
            (first,),
        )
        conn.execute(
            "INSERT INTO entities (name, entity_type, created_at)"
            " VALUES ('x-1', 'task', '2999-01-01T00:00:01.000000+00:00')"
        )
        conn.executemany(
            "INSERT INTO memories (entity, attribute, value, source, created_at)"
            " VALUES ('x-1', ?, ?, 'other-tool', '2999-01-01T00:00:01.000000+00:00')",
            [("title", "added by hand"), ("priority", 7), ("status", "pending")],
        )
    conn.close()
    tasks = {r["id"]: r for r in view_rows(path, "tasks")}
    assert tasks[first]["status"] == "in_progress"
    assert tasks[first]["updated_at"] == "2999-01-01T00:00:00.000000+00:00"
    assert tasks["x-1"]["title"] == "added by hand"
    assert tasks["x-1"]["priority"] == 7
    counts = {r["status"]: r["count"] for r in view_rows(path, "task_status_counts")}
    assert counts == {"in_progress": 1, "pending": 2}
    last = view_rows(path, "task_transitions", f"WHERE task_id = '{first}'")[-1]
    assert (last["from_state"], last["to_state"], last["actor"], last["reason"]) == (
        "pending",
        "in_progress",
        "other-tool",
        "picked by hand",
    )
    with TaskStore(path) as store:
        assert store.get(first).status == "in_progress"
        assert [t.to_state for t in store.history(first)] == ["pending", "in_progress"]


def test_sqlite_utils_rows_returns_the_tasks(tmp_path: Path) -> None:
    path = tmp_path / "minna.db"
    with TaskStore(path) as store:
        store.add_many(["a", {"title": "b", "priority": 3}])
        store.claim("w")
    out = subprocess.run(
        [Path(sys.executable).with_name("sqlite-utils"), "rows", path, "tasks"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    rows = json.loads(out)
    assert [(r["id"], r["title"], r["status"], r["owner"]) for r in rows] == [
        ("t-1", "a", "pending", None),
        ("t-2", "b", "in_progress", "w"),
    ]


def _is_stale(path: Path) -> bool:
    conn = sqlite3.connect(path)
    try:
        return _stale(conn)
    finally:
        conn.close()


def _schema_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA schema_version").fetchone()[0])
    finally:
        conn.close()


def test_ensure_views_writes_nothing_when_current(tmp_path: Path) -> None:
    path = tmp_path / "minna.db"
    keep = TaskStore(path)  # holds the file open so that no close checkpoints the WAL
    try:
        keep.add("one")
        version = _schema_version(path)
        before = [p.read_bytes() for p in (path, path.with_name("minna.db-wal"))]
        TaskStore(path).close()
        ensure_views(keep.memory)
        after = [p.read_bytes() for p in (path, path.with_name("minna.db-wal"))]
        assert _schema_version(path) == version
        assert after == before
    finally:
        keep.close()


def test_stale_or_missing_views_are_replaced(tmp_path: Path) -> None:
    path = tmp_path / "minna.db"
    with TaskStore(path) as store:
        store.add("one")
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DROP VIEW tasks")
        conn.execute("CREATE VIEW tasks AS SELECT id FROM task_current")  # an older version
        conn.execute("DROP VIEW task_status_counts")
    conn.close()
    assert _is_stale(path)
    version = _schema_version(path)
    with TaskStore(path) as store:
        assert not _stale(store.memory.connection)
        assert view_rows(path, "tasks")[0]["title"] == "one"
        assert view_rows(path, "task_status_counts") == [{"status": "pending", "count": 1}]
    assert _schema_version(path) > version
    conn = sqlite3.connect(path)
    found = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view'"))
    conn.close()
    assert {name: found[name] for name in VIEWS} == {name: view_sql(name) for name in VIEWS}


OPENER = textwrap.dedent(
    """
    import os, sys, time
    from minna_tasks import TaskStore
    path, go, name = sys.argv[1], sys.argv[2], sys.argv[3]
    while not os.path.exists(go):
        time.sleep(0.001)
    with TaskStore(path) as store:
        store.add(name)
        n = store.memory.connection.execute("SELECT count(*) FROM tasks").fetchone()[0]
    print(n)
    """
)


def _open_at_once(path: Path, go: Path, names: list[str]) -> list[int]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, str(path), str(go), name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    time.sleep(0.5)  # let every interpreter start and wait at the gate
    go.touch()
    seen = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        seen.append(int(out))
    return seen


def test_several_processes_open_a_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "minna.db"
    # A fresh file: schema, projection and views created by whoever comes first.
    seen = _open_at_once(path, tmp_path / "go1", [f"p{i}" for i in range(6)])
    assert max(seen) == 6  # the last process to add counts every task
    # Stale views: every process finds them stale before any has replaced them.
    conn = sqlite3.connect(path)
    with conn:
        for name in VIEWS:
            conn.execute(f"DROP VIEW {name}")
        conn.execute("CREATE VIEW tasks AS SELECT id FROM task_current")
    conn.close()
    seen = _open_at_once(path, tmp_path / "go2", [f"q{i}" for i in range(6)])
    assert max(seen) == 12
    assert not _is_stale(path)
    titles = sorted(r["title"] for r in view_rows(path, "tasks"))
    assert titles == sorted([f"p{i}" for i in range(6)] + [f"q{i}" for i in range(6)])
