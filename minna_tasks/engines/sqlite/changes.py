"""SQLite's change feed: `PRAGMA data_version` polling for waiting, and the status log
read in memory id order.

On SQLite one writer commits at a time and ids are AUTOINCREMENT (never reused), so a
memory id alone is an exact position: every row at or below the highest id a read
sees is already committed.

A waiter learns that the file changed from two sources: `PRAGMA data_version` on a
dedicated read connection (commits by any other connection, in any process: a few
microseconds per poll, every 1 to 10 ms) and the file's in-process commit signal (this
process's own commits, at once: data_version does not change for a connection's own
writes, and a poll would add its interval to the latency).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from types import TracebackType
from typing import Any, Protocol

from ...errors import StoreError
from ..feed import Batch, ChangeRow, Position

# The data_version poll backs off from the first to the second interval while idle.
POLL_FIRST = 0.001
POLL_MAX = 0.010

# The previous status of the same task is one seek on (entity, attribute, id).
STATUS_CHANGES = """
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
TOUCHED = """
SELECT m.entity FROM memories m WHERE m.id > ? AND m.id <= ?
    AND EXISTS (SELECT 1 FROM task_current t WHERE t.id = m.entity)
GROUP BY m.entity ORDER BY min(m.id)
"""


class Signal(Protocol):
    """The file's in-process commit signal (commits.py)."""

    @property
    def generation(self) -> int: ...

    def wait(self, seen: int, timeout: float) -> int: ...


class DataVersionDetector:
    """Tells whether the file changed since the detector last looked (see the module
    docstring)."""

    def __init__(self, path: str, timeout: float, signal: Signal) -> None:
        self.path = path
        self._signal = signal
        self._generation = signal.generation
        self._conn: sqlite3.Connection | None = None
        self._version = 0
        if path != ":memory:":  # a private in-memory file has no other writers
            try:
                conn = sqlite3.connect(
                    path, timeout=timeout, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA query_only=ON")
                self._conn = conn
                self._version = self._data_version()
            except sqlite3.Error as e:
                self.close()
                raise StoreError(f"{path}: cannot watch for changes ({e})", path) from e

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

    def __enter__(self) -> DataVersionDetector:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _top(conn: Any) -> int:
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM memories").fetchone()[0])


class SqliteFeed:
    """`ChangeFeed` (engines/feed.py) on a SQLite file: positions are (0, memory id)."""

    def __init__(self, path: str, timeout: float, signal: Signal) -> None:
        self.path, self.timeout, self.signal = path, timeout, signal

    def detector(self) -> DataVersionDetector:
        return DataVersionDetector(self.path, self.timeout, self.signal)

    def position(self, conn: Any, cursor: int | None) -> Position:
        return (0, _top(conn) if cursor is None else cursor)

    def status_changes(
        self, conn: Any, after: Position, time: str | None, task_id: str | None, limit: int
    ) -> Batch[ChangeRow]:
        top = _top(conn)
        args = {"after": after[1], "upto": top, "task": task_id, "time": time, "limit": limit}
        rows: list[ChangeRow] = [tuple(r) for r in conn.execute(STATUS_CHANGES, args)]
        # A full batch may have more behind it; otherwise everything up to `top` is read.
        if rows and len(rows) == limit:
            return Batch(rows, (0, int(rows[-1][0])))
        return Batch(rows, max(after, (0, top)))

    def touched(self, conn: Any, after: Position) -> Batch[str]:
        top = _top(conn)
        if after[1] >= top:
            return Batch([], after)
        rows = conn.execute(TOUCHED, (after[1], top)).fetchall()
        return Batch([row[0] for row in rows], (0, top))
