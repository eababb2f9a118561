"""Taking the write lock: wait for another writer, and say so once the wait is noticeable."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

# After this many seconds of waiting for the lock, `on_wait` is called (once).
NOTICE_AFTER = 1.0

OnWait = Callable[[float], None]


def _busy(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", sqlite3.SQLITE_BUSY)
    return isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def enter_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """`PRAGMA journal_mode=WAL`, retried for up to `timeout` seconds while another
    connection holds the lock: SQLite upgrades its read lock to make the change and
    answers SQLITE_BUSY at once, without the busy handler, when that fails."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL").fetchall()
            return
        except sqlite3.OperationalError as e:
            if not _busy(e) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def begin_immediate(conn: sqlite3.Connection, timeout: float, on_wait: OnWait | None) -> None:
    """`BEGIN IMMEDIATE`, waiting up to `timeout` seconds for the lock; calls
    `on_wait(timeout)` once after NOTICE_AFTER seconds of waiting."""
    if on_wait is None or timeout <= NOTICE_AFTER:
        conn.execute("BEGIN IMMEDIATE")
        return
    # sqlite3 has no busy handler hook: wait in two steps by changing the busy timeout.
    conn.execute(f"PRAGMA busy_timeout = {int(NOTICE_AFTER * 1000)}")
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if not _busy(e):
                raise
            on_wait(timeout)
            conn.execute(f"PRAGMA busy_timeout = {int((timeout - NOTICE_AFTER) * 1000)}")
            conn.execute("BEGIN IMMEDIATE")
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
