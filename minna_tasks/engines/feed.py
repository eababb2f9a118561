"""The change feed's seam: how each engine tells a reader what changed, and when.

Every engine provides a `ChangeFeed` (its `change_feed()`): a change detector for
waiting (SQLite polls `PRAGMA data_version`; PostgreSQL LISTENs for a NOTIFY) and the
SQL that reads the status log as a feed after a position. A position is an engine's
order key for memory rows (on SQLite the memory id alone; on PostgreSQL the writing
transaction, then the id), so a reader resumes exactly: nothing skipped, nothing twice.
The public cursor stays a memory id; `position()` turns one into the engine's key.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Generic, NamedTuple, Protocol, Self, TypeVar

# An engine's order key for memory rows: compare as tuples, oldest first.
Position = tuple[int, int]
T = TypeVar("T")
# One status change: (memory id, task id, previous status, status, at, actor, note).
ChangeRow = tuple[int, str, Any, Any, str, str | None, str | None]


class Batch(NamedTuple, Generic[T]):
    """What one read of the feed found, and where the next read starts."""

    rows: list[T]
    position: Position
    # PostgreSQL: the newest transaction among committed rows that an older one, still
    # open, keeps back (0: none), and the oldest transaction the read found open (rows
    # of transactions below it were all readable). Held rows: read again soon, since
    # the open transaction's end may bring no notification.
    held: int = 0
    horizon: int = 0


class ChangeDetector(Protocol):
    """Tells whether the store changed since it last looked. Opened before the first
    look at the queue, so no commit between that look and the wait is missed."""

    def changed(self) -> bool:
        """True once for each batch of commits since the last call (no waiting)."""

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """Wait up to `timeout` seconds for a change; False on timeout or once `stop` is set."""

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class ChangeFeed(Protocol):
    """One engine's change detection and status feed. Reads run inside the caller's
    read snapshot (`conn` from `reading()`)."""

    def detector(self) -> ChangeDetector:
        """A new change detector (close it, or use it as a context manager)."""

    def position(self, conn: Any, cursor: int | None) -> Position:
        """The position just after memory id `cursor` (0: the start); None: now."""

    def status_changes(
        self, conn: Any, after: Position, time: str | None, task_id: str | None, limit: int
    ) -> Batch[ChangeRow]:
        """Up to `limit` (-1: all) status changes of tasks after `after`, created after
        `time` when given, of one task when given."""

    def touched(self, conn: Any, after: Position) -> Batch[str]:
        """The ids of the tasks with any row after `after` (oldest first, each once)."""
