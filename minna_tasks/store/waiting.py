"""Waiting for work without holding a lock: a change detector and the waiting claim.

A waiter never holds a transaction while it waits. It learns that the file
changed from two sources: `PRAGMA data_version` on a dedicated read connection
(commits by any other connection, in any process: a few microseconds per poll,
every 1 to 10 ms) and the file's in-process commit signal (this process's own
commits, at once: data_version does not change for a connection's own writes,
and a poll would add its interval to the latency). Only when the file changed
and a task looks claimable does it run the claim, a write transaction.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, TypeAlias

from ..errors import StoreError
from ..memory import MinnaMemory, commits
from ..records import Task

if TYPE_CHECKING:
    from ..engines.postgres.listen import PostgresChangeDetector
    from .task_store import TaskStore

# The data_version poll backs off from the first to the second interval while idle.
POLL_FIRST = 0.001
POLL_MAX = 0.010
# A following loop re-reads the leases at least this often with no change to the file.
IDLE_RECHECK = 30.0


def check_wait(wait: object) -> float:
    """A wait in seconds: a finite number, zero or more."""
    if isinstance(wait, bool) or not isinstance(wait, int | float):
        raise TypeError(f"wait must be a number of seconds, not {type(wait).__name__}")
    if not math.isfinite(wait) or wait < 0:
        raise ValueError(f"wait must be zero or more seconds, not {wait:g}")
    return float(wait)


class ChangeDetector:
    """Tells whether the file changed since the detector last looked.

    Opened before the first look at the queue, so no commit between that look
    and the wait can be missed.
    """

    def __init__(self, memory: MinnaMemory) -> None:
        self.path = memory.path
        self._signal = commits.signal_for(memory.commit_key)
        self._generation = self._signal.generation
        self._conn: sqlite3.Connection | None = None
        self._version = 0
        if memory.path != ":memory:":  # a private in-memory file has no other writers
            try:
                conn = sqlite3.connect(
                    memory.path,
                    timeout=memory.timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
                conn.execute("PRAGMA query_only=ON")
                self._conn = conn
                self._version = self._data_version()
            except sqlite3.Error as e:
                self.close()
                raise StoreError(
                    f"{memory.path}: cannot watch for changes ({e})", memory.path
                ) from e

    def _data_version(self) -> int:
        assert self._conn is not None
        try:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot watch for changes ({e})", self.path) from e

    def changed(self) -> bool:
        """True once for each batch of commits since the last call (no waiting)."""
        changed = False
        generation = self._signal.generation
        if generation != self._generation:
            self._generation, changed = generation, True
        if self._conn is not None:
            version = self._data_version()
            if version != self._version:
                self._version, changed = version, True
        return changed

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """Wait up to `timeout` seconds for a change; False on timeout or once `stop` is set."""
        deadline = time.monotonic() + timeout
        interval = POLL_FIRST
        while True:
            if self.changed():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (stop is not None and stop.is_set()):
                return False
            self._signal.wait(self._generation, min(interval, remaining))
            interval = min(interval * 2, POLL_MAX)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ChangeDetector:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# What waiting code uses: changed(), wait(timeout, stop), close(), a context manager.
Detector: TypeAlias = "ChangeDetector | PostgresChangeDetector"


def change_detector(memory: MinnaMemory) -> Detector:
    """The engine's change detector: data_version polling on SQLite, LISTEN/NOTIFY on
    PostgreSQL (the same changed / wait / close)."""
    if memory.engine == "postgresql":
        from ..engines.postgres.listen import PostgresChangeDetector

        return PostgresChangeDetector(memory)
    return ChangeDetector(memory)


def claim_waiting(
    store: TaskStore,
    worker: str,
    lease_seconds: float,
    wait: float,
    stop: threading.Event | None = None,
) -> Task | None:
    """`store.claim`, retried whenever the file changes and a task looks claimable,
    for up to `wait` seconds (or until `stop` is set); None when the time is up."""
    wait = check_wait(wait)
    deadline = time.monotonic() + wait
    with change_detector(store.memory) as changes:
        while True:
            task = store.claim(worker, lease_seconds)
            if task is not None:
                return task
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (stop is not None and stop.is_set()):
                    return None
                # Peek with a read before taking the write lock for a claim.
                if changes.wait(remaining, stop) and store.queue(limit=1):
                    break


class Follower:
    """What a following loop does when the queue is empty: wait for a task to claim,
    and recover expired leases when they expire (a read first: no write until one has)."""

    def __init__(
        self, store: TaskStore, worker: str, lease_seconds: float, stop: threading.Event
    ) -> None:
        self.store, self.worker, self.lease, self.stop = store, worker, lease_seconds, stop

    def next_task(self) -> Task | None:
        """The next claimed task, or None once `stop` is set."""
        with change_detector(self.store.memory) as changes:
            ready = True
            while not self.stop.is_set():
                due = lease_due(self.store)
                if due is not None and due <= 0 and self.store.recover():
                    ready = True
                if ready:
                    task = self.store.claim(self.worker, self.lease)
                    if task is not None:
                        return task
                timeout = due if due is not None and due > 0 else IDLE_RECHECK
                changed = changes.wait(min(timeout, IDLE_RECHECK), self.stop)
                ready = changed and bool(self.store.queue(limit=1))
        return None


def lease_due(store: TaskStore) -> float | None:
    """Seconds until the earliest lease of a held task expires (zero or less: one has);
    None when no task is held."""
    held = store.machine.held
    if not held:
        return None
    with store.memory.reading() as conn:
        row = conn.execute(
            "SELECT min(coalesce(lease_expires_at, '')) FROM task_current"
            f" WHERE status IN ({', '.join('?' * len(held))})",
            tuple(held),
        ).fetchone()
    if row is None or row[0] is None:
        return None
    if not row[0]:
        return 0.0
    try:
        expires = datetime.fromisoformat(row[0])
    except ValueError:
        return 0.0  # written by another tool: let recover judge it
    return (expires - datetime.now(UTC)).total_seconds()
