"""Waiting for work without holding a lock: the waiting claim and the following loop.

A waiter never holds a transaction while it waits. The engine's change detector
(engines/feed.py: `PRAGMA data_version` polling plus the in-process commit signal on
SQLite, LISTEN/NOTIFY on PostgreSQL) tells it that the store changed; only then, and
only when a task looks claimable (a read), does it run the claim, a write transaction.
"""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..engines.feed import ChangeDetector
from ..memory import MinnaMemory
from ..records import Task

if TYPE_CHECKING:
    from .task_store import TaskStore

# A following loop re-reads the leases at least this often with no change to the file.
IDLE_RECHECK = 30.0


def check_wait(wait: object) -> float:
    """A wait in seconds: a finite number, zero or more."""
    if isinstance(wait, bool) or not isinstance(wait, int | float):
        raise TypeError(f"wait must be a number of seconds, not {type(wait).__name__}")
    if not math.isfinite(wait) or wait < 0:
        raise ValueError(f"wait must be zero or more seconds, not {wait:g}")
    return float(wait)


def change_detector(memory: MinnaMemory) -> ChangeDetector:
    """The engine's change detector (the same changed / wait / close on every engine)."""
    return memory.change_feed().detector()


def next_task(
    store: TaskStore,
    worker: str,
    lease_seconds: float,
    wait: float | None,
    stop: threading.Event | None = None,
    recover: bool = False,
) -> Task | None:
    """Claim the next task, waiting for one for up to `wait` seconds (None: until `stop`
    is set); None when the time is up or `stop` is set. Claims again only when the store
    changed and a task looks claimable. With `recover`, expired leases are recovered as
    they expire (a read first: no write until one has)."""
    deadline = None if wait is None else time.monotonic() + check_wait(wait)
    with change_detector(store.memory) as changes:
        ready = True
        while stop is None or not stop.is_set():
            due = lease_due(store) if recover else None
            if due is not None and due <= 0 and store.recover():
                ready = True
            if ready:
                task = store.claim(worker, lease_seconds)
                if task is not None:
                    return task
            timeout = IDLE_RECHECK if deadline is None else deadline - time.monotonic()
            if timeout <= 0:
                return None
            if due is not None and due > 0:
                timeout = min(timeout, due)
            ready = changes.wait(timeout, stop) and bool(store.queue(limit=1))
    return None


def lease_due(store: TaskStore) -> float | None:
    """Seconds until the earliest lease of a held task expires (zero or less: one has);
    None when no task is held."""
    held = store.machine.held
    if not held:
        return None
    with store.memory.reading():
        earliest = store.memory.task_ops.earliest_lease(held)
    if earliest is None:
        return None
    if not earliest:
        return 0.0
    try:
        expires = datetime.fromisoformat(earliest)
    except ValueError:
        return 0.0  # written by another tool: let recover judge it
    return (expires - datetime.now(UTC)).total_seconds()
