"""The real `minna-tasks` command line with a storage fault injected (for test_faults.py).

Usage: python -m tests.fault_cli [CLI ARGS...], with
MINNA_FAULT_SPARE_PAGES=N: every connection may grow the file by N pages only
(`PRAGMA max_page_count`, which is per connection, so it is set here);
MINNA_FAULT_TIMEOUT=SECONDS: the busy timeout of every store (default 30 s).
Only the fault is injected; the command, the store and the error handling are real.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from minna_tasks_cli.main import main

from minna_tasks import memory

original_open = memory.MinnaMemory._open
original_init = memory.MinnaMemory.__init__


def open_with_limit(self: memory.MinnaMemory) -> None:
    original_open(self)
    spare = os.environ.get("MINNA_FAULT_SPARE_PAGES")
    if spare is not None and self._conn is not None:
        conn: sqlite3.Connection = self._conn
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + int(spare)}")


def init_with_timeout(self: memory.MinnaMemory, *args: Any, **kwargs: Any) -> None:
    timeout = os.environ.get("MINNA_FAULT_TIMEOUT")
    if timeout is not None:
        kwargs["timeout"] = float(timeout)
    original_init(self, *args, **kwargs)


memory.MinnaMemory._open = open_with_limit  # type: ignore[method-assign]
memory.MinnaMemory.__init__ = init_with_timeout  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
