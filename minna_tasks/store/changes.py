"""The status log as a feed: every task's status changes after a cursor, live or not.

A change is a `status` row in `memories`; its cursor is its memory id. The engine
(engines/feed.py) keeps the order exact: on SQLite, whose writers commit one at a
time, memory id order; on PostgreSQL, whose ids are drawn before commit, the order in
which the writing transactions became final. Either way a reader that resumes from
the last cursor it saw gets every later change once: nothing skipped, nothing twice.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from datetime import datetime
from time import monotonic, sleep
from typing import TYPE_CHECKING

from ..engines.feed import Batch, ChangeFeed, ChangeRow, Position
from ..memory import to_timestamp
from ..records import Transition, check_int, check_text

if TYPE_CHECKING:
    from .task_store import TaskStore

Since = int | str | datetime | None

# How many changes one read returns at most, so a long log streams in pieces.
BATCH = 1000
# How long a watch waits for a change before it looks at `stop` again (it also polls
# it between data_version checks, every few milliseconds).
WATCH_TIMEOUT = 1.0
# How soon a watch reads again while an open transaction holds committed changes back
# (its end may come with no notification of its own).
HELD_RECHECK = 0.02
# How long a one-shot read waits for transactions still open to end when they hold
# back changes committed before it (PostgreSQL), so that a reader sees what it (or
# anyone) committed before it asked; after that it returns what is readable.
HOLD_WAIT = 2.0


def parse_since(since: Since) -> tuple[int, str | None]:
    """(cursor, time) for a `since` argument: a cursor (a memory id) or a time."""
    if since is None:
        return 0, None
    if isinstance(since, int) and not isinstance(since, bool):
        return check_int("since", since, 0), None
    if isinstance(since, str | datetime):
        return 0, to_timestamp(since)
    raise TypeError(f"since must be a cursor (int) or a time, not {type(since).__name__}")


def _transitions(rows: list[ChangeRow]) -> list[Transition]:
    return [
        Transition(e, prev, to, at, actor, note, cursor=i)
        for i, e, prev, to, at, actor, note in rows
    ]


def _read(
    store: TaskStore,
    feed: ChangeFeed,
    after: Position,
    time: str | None,
    task_id: str | None,
    limit: int,
) -> Batch[ChangeRow]:
    with store.memory.reading() as conn:
        return feed.status_changes(conn, after, time, task_id, limit)


def changes(
    store: TaskStore, since: Since = None, task_id: str | None = None, limit: int | None = None
) -> list[Transition]:
    """Status changes after `since` (a cursor or a time), oldest first."""
    cursor, time = parse_since(since)
    if task_id is not None:
        check_text("task_id", task_id)
    cap = -1 if limit is None else check_int("limit", limit, 0)
    feed = store.memory.change_feed()
    with store.memory.reading() as conn:
        after = feed.position(conn, cursor)
    first = batch = _read(store, feed, after, time, task_id, cap)
    deadline, pause = monotonic() + HOLD_WAIT, 0.001
    # Wait (briefly) until every change committed before the first read is readable.
    while first.held and len(batch.rows) != cap and batch.horizon <= first.held:
        if monotonic() > deadline:
            break
        sleep(pause)
        pause = min(pause * 2, 0.05)
        batch = _read(store, feed, after, time, task_id, cap)
    return _transitions(batch.rows)


def watch(
    store: TaskStore,
    since: Since = None,
    stop: threading.Event | None = None,
    task_id: str | None = None,
) -> Generator[Transition, None, None]:
    """Status changes as they happen, until `stop` is set: first those after `since`
    (none when it is None), then each new one, from any process."""
    cursor, time = parse_since(since)
    if task_id is not None:
        check_text("task_id", task_id)
    feed = store.memory.change_feed()
    with feed.detector() as detector:
        with store.memory.reading() as conn:
            after = feed.position(conn, None if since is None else cursor)
        while True:
            while True:
                batch = _read(store, feed, after, time, task_id, BATCH)
                after = batch.position
                yield from _transitions(batch.rows)
                if len(batch.rows) < BATCH:
                    break
            time = None  # the time only picks the starting point
            timeout = HELD_RECHECK if batch.held else WATCH_TIMEOUT
            while not detector.wait(timeout, stop):
                if stop is not None and stop.is_set():
                    return
                if batch.held:
                    break


def touched(store: TaskStore, after: Position | None = None) -> Batch[str]:
    """The ids of the tasks any of whose fields changed after the position `after`
    (oldest change first), and the position to continue from. With `after=None`: none,
    and the position of now."""
    feed = store.memory.change_feed()
    with store.memory.reading() as conn:
        if after is None:
            return Batch([], feed.position(conn, None))
        return feed.touched(conn, after)
