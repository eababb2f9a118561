"""SQLite's own CAST, the fields rule's answer for a raw value of another type (on every
engine: the rule is SQLite's, engines/task_schema.py). A private in-memory connection,
a calculator, no store."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

_cast_lock = threading.Lock()
_cast_conn: sqlite3.Connection | None = None


def _sqlite_cast(raw: Any, column_type: str) -> Any:
    """SQLite's own CAST, so Python and the triggers can never disagree on odd values
    ('2.5' as an integer, 1e300 as text): only values of another type come here."""
    global _cast_conn
    # column_type is a Field.column_type: "INTEGER" or "TEXT" (task_schema.py)
    sql = "SELECT CAST(? AS INTEGER)" if column_type == "INTEGER" else "SELECT CAST(? AS TEXT)"
    with _cast_lock:
        if _cast_conn is None:
            _cast_conn = sqlite3.connect(":memory:", check_same_thread=False)
        return _cast_conn.execute(sql, (raw,)).fetchone()[0]
