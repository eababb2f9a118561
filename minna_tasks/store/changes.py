"""The status log as a feed: every task's status changes after a cursor, live or not.

A change is a `status` row in `memories`; its memory id is the cursor. Memory ids
only grow and are never reused (AUTOINCREMENT, schema migration 2), and commits
happen one at a time, so a reader that remembers the highest id it has seen
resumes exactly: nothing skipped, nothing twice.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Generator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..memory import to_timestamp
from ..records import Transition, check_int, check_text
from .waiting import change_detector

if TYPE_CHECKING:
    from .task_store import TaskStore

Since = int | str | datetime | None

# The previous status of the same task is one seek on (entity, attribute, id).
_SELECT = """
SELECT m.id, m.entity,
    (SELECT p.value FROM memories p
     WHERE p.entity = m.entity AND p.attribute = 'status' AND p.id < m.id
     ORDER BY p.id DESC LIMIT 1),
    m.value, m.created_at, m.source, m.context
FROM memories m
WHERE m.attribute = 'status' AND m.id > :after AND m.id <= :upto
    AND (CAST(:task AS TEXT) IS NULL OR m.entity = :task)
    AND (CAST(:time AS TEXT) IS NULL OR m.created_at > :time)
    AND EXISTS (SELECT 1 FROM task_current t WHERE t.id = m.entity)
ORDER BY m.id
LIMIT :limit
"""
# How many changes one read returns at most, so a long log streams in pieces.
BATCH = 1000
# How long a watch waits for a change before it looks at `stop` again (it also polls
# it between data_version checks, every few milliseconds).
WATCH_TIMEOUT = 1.0


def parse_since(since: Since) -> tuple[int, str | None]:
    """(cursor, time) for a `since` argument: a cursor (a memory id) or a time."""
    if since is None:
        return 0, None
    if isinstance(since, int) and not isinstance(since, bool):
        return check_int("since", since, 0), None
    if isinstance(since, str | datetime):
        return 0, to_timestamp(since)
    raise TypeError(f"since must be a cursor (int) or a time, not {type(since).__name__}")


def _read(
    conn: sqlite3.Connection, after: int, time: str | None, task_id: str | None, limit: int
) -> tuple[list[Transition], int]:
    """Up to `limit` changes after the cursor, and the cursor to continue from."""
    top = int(conn.execute("SELECT coalesce(max(id), 0) FROM memories").fetchone()[0])
    args: dict[str, Any] = {"after": after, "upto": top, "task": task_id, "time": time}
    # No limit is -1 for SQLite but an error for PostgreSQL: both take a huge one.
    rows = conn.execute(_SELECT, {**args, "limit": limit if limit >= 0 else 2**62}).fetchall()
    out = [
        Transition(e, prev, to, at, actor, note, cursor=i)
        for i, e, prev, to, at, actor, note in rows
    ]
    # A full batch may have more behind it; otherwise everything up to `top` is read.
    return out, (out[-1].cursor or after) if len(out) == limit else max(top, after)


def changes(
    store: TaskStore, since: Since = None, task_id: str | None = None, limit: int | None = None
) -> list[Transition]:
    """Status changes after `since` (a cursor or a time), oldest first."""
    after, time = parse_since(since)
    if task_id is not None:
        check_text("task_id", task_id)
    cap = -1 if limit is None else check_int("limit", limit, 0)
    with store.memory.reading() as conn:
        return _read(conn, after, time, task_id, cap)[0]


def watch(
    store: TaskStore,
    since: Since = None,
    stop: threading.Event | None = None,
    task_id: str | None = None,
) -> Generator[Transition, None, None]:
    """Status changes as they happen, until `stop` is set: first those after `since`
    (none when it is None), then each new one, from any process."""
    after, time = parse_since(since)
    if task_id is not None:
        check_text("task_id", task_id)
    with change_detector(store.memory) as detector:
        if since is None:
            with store.memory.reading() as conn:
                after = int(conn.execute("SELECT coalesce(max(id), 0) FROM memories").fetchone()[0])
        while True:
            while True:
                with store.memory.reading() as conn:
                    batch, after = _read(conn, after, time, task_id, BATCH)
                yield from batch
                if len(batch) < BATCH:
                    break
            time = None  # the time only picks the starting point
            while not detector.wait(WATCH_TIMEOUT, stop):
                if stop is not None and stop.is_set():
                    return


def touched(store: TaskStore, after: int | None = None) -> tuple[list[str], int]:
    """The ids of the tasks any of whose fields changed after the cursor `after`
    (oldest change first), and the cursor to continue from. With `after=None`: none,
    and the cursor of now."""
    with store.memory.reading() as conn:
        top = int(conn.execute("SELECT coalesce(max(id), 0) FROM memories").fetchone()[0])
        if after is None or after >= top:
            return [], max(top, after or 0)
        rows = conn.execute(
            "SELECT m.entity FROM memories m WHERE m.id > ? AND m.id <= ?"
            " AND EXISTS (SELECT 1 FROM task_current t WHERE t.id = m.entity)"
            " GROUP BY m.entity ORDER BY min(m.id)",
            (after, top),
        ).fetchall()
    return [row[0] for row in rows], top
