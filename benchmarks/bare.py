"""The baselines written by hand in bare SQL: the commit limit and the same data shape.

The bare table has the columns of `memories` and its one index
`(entity, attribute, id)`, and nothing else: no full-text index, no projection,
no triggers. A bare cycle writes the 8 triples of the explicit EAV shape, the
ones minna-tasks 0.1 wrote (claim: owner, lease, status; review: result,
status; completed: owner, lease, status), each step in its own `BEGIN
IMMEDIATE` that first reads the current status through the index. `TaskStore`
now writes 5 of them: its status rows imply a claim's owner and a finished
task's empty owner and lease (minna_tasks/engines/task_schema.py). The caller already
knows the task id, so the bare claim has no queue lookup: it is a lower bound on
the cost, not a rival design.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

BARE_SCHEMA = """
CREATE TABLE memories (
    id INTEGER PRIMARY KEY,
    entity TEXT NOT NULL,
    attribute TEXT NOT NULL,
    value,
    source TEXT,
    confidence REAL NOT NULL DEFAULT 1.0,
    context TEXT,
    created_at TEXT NOT NULL,
    verified_at TEXT
);
CREATE INDEX memories_entity_attribute ON memories (entity, attribute, id);
"""
INSERT = (
    "INSERT INTO memories (entity, attribute, value, source, confidence, context, created_at)"
    " VALUES (?, ?, ?, ?, 1.0, ?, ?)"
)
CURRENT = (
    "SELECT value FROM memories WHERE entity = ? AND attribute = 'status' ORDER BY id DESC LIMIT 1"
)
STAMP = "2026-01-01T00:00:00.000000+00:00"
LEASE = "2026-01-01T00:05:00.000000+00:00"


def connect(path: Path, synchronous: str = "NORMAL") -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


def commit_rate(path: Path, synchronous: str, n: int) -> float:
    """Single-row commits per second: BEGIN IMMEDIATE, one INSERT, COMMIT."""
    conn = connect(path, synchronous)
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
        start = time.perf_counter()
        for i in range(n):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (v) VALUES (?)", (str(i),))
            conn.execute("COMMIT")
        return n / (time.perf_counter() - start)
    finally:
        conn.close()


def create(path: Path, tasks: int, prefix: str = "t-") -> sqlite3.Connection:
    """A bare EAV file holding `tasks` pending tasks with the 7 creation triples each."""
    conn = connect(path)
    conn.executescript(BARE_SCHEMA)
    add_tasks(conn, [f"{prefix}{i}" for i in range(tasks)])
    return conn


def creation_triples(task_id: str) -> list[tuple[str, str, object, str, str | None, str]]:
    return [
        (task_id, "title", f"task {task_id}", "bench", None, STAMP),
        (task_id, "description", "", "bench", None, STAMP),
        (task_id, "priority", 0, "bench", None, STAMP),
        (task_id, "attempts", 0, "bench", None, STAMP),
        (task_id, "max_attempts", 3, "bench", None, STAMP),
        (task_id, "payload", '{"n": 1}', "bench", None, STAMP),
        (task_id, "status", "pending", "bench", "created", STAMP),
    ]


def add_tasks(conn: sqlite3.Connection, ids: list[str]) -> None:
    """The bare equivalent of add_many: every creation triple in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(INSERT, [row for task_id in ids for row in creation_triples(task_id)])
    conn.execute("COMMIT")


def _step(
    conn: sqlite3.Connection,
    task_id: str,
    expected: str,
    to: str,
    companions: list[tuple[str, object]],
) -> None:
    conn.execute("BEGIN IMMEDIATE")
    current = conn.execute(CURRENT, (task_id,)).fetchone()[0]
    if current != expected:
        conn.execute("ROLLBACK")
        raise RuntimeError(f"{task_id} is {current}, not {expected}")
    rows = [(task_id, a, v, "w", None, STAMP) for a, v in companions]
    rows.append((task_id, "status", to, "w", "note", STAMP))
    conn.executemany(INSERT, rows)
    conn.execute("COMMIT")


def claim(conn: sqlite3.Connection, task_id: str) -> None:
    _step(conn, task_id, "pending", "in_progress", [("owner", "w"), ("lease_expires_at", LEASE)])


def review(conn: sqlite3.Connection, task_id: str) -> None:
    _step(conn, task_id, "in_progress", "review", [("result", '{"ok": true}')])


def complete(conn: sqlite3.Connection, task_id: str) -> None:
    _step(conn, task_id, "review", "completed", [("owner", None), ("lease_expires_at", None)])


def cycle(conn: sqlite3.Connection, task_id: str) -> None:
    claim(conn, task_id)
    review(conn, task_id)
    complete(conn, task_id)


def current_status(conn: sqlite3.Connection, task_id: str) -> str:
    return conn.execute(CURRENT, (task_id,)).fetchone()[0]
