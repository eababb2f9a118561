"""Waiting for work on PostgreSQL: LISTEN on the channel a trigger NOTIFYs at every
committed write to the memories (any process, any host), instead of polling.

The same surface as the SQLite change detector: `changed()` (no waiting), `wait(timeout,
stop)` and `close()`. The LISTEN is in place before the first look at the queue, so a
commit between that look and the wait is never missed: its notification is queued on
this connection until read.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

from ...errors import StoreError
from .database import _message, _psycopg

# How often a wait looks at its stop event (a NOTIFY ends the wait at once).
STOP_CHECK = 0.05


class PostgresChangeDetector:
    """Tells whether the store changed since it last looked (see the module docstring)."""

    def __init__(self, memory: Any) -> None:
        from .schema import CHANNEL

        psycopg = _psycopg()
        self.path = memory.path
        try:
            self._conn: Any = psycopg.connect(
                memory.url, autocommit=True, application_name="minna-tasks listen"
            )
            self._conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as e:
            raise StoreError(
                f"{self.path}: cannot listen for changes ({_message(e, memory.url)})", self.path
            ) from None

    def _drain(self, timeout: float) -> bool:
        psycopg = _psycopg()
        if self._conn is None:
            return False
        try:
            got = False
            for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                got = True
            if got:  # a burst of commits is one change: take the rest without waiting
                for _ in self._conn.notifies(timeout=0):
                    pass
            return got
        except psycopg.Error as e:
            raise StoreError(f"{self.path}: lost the change listener ({e})", self.path) from None

    def changed(self) -> bool:
        """True once for each batch of changes since the last call (no waiting)."""
        return self._drain(0)

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """Wait up to `timeout` seconds for a change; False on timeout or once `stop` is set."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (stop is not None and stop.is_set()):
                return self.changed()
            slice_ = remaining if stop is None else min(remaining, STOP_CHECK)
            if self._drain(slice_):
                return True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> PostgresChangeDetector:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
