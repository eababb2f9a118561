"""PostgreSQL's memory operations: SQLite's (the shared SQL, translated by dialect.py),
but for full-text search (PostgreSQL's own text search) and how a conflict tells one
value from another (a JSONB value's text, which keeps 1, 1.0 and "1" apart)."""

from __future__ import annotations

from typing import Any

from ..memories import MemoryRecord
from ..sqlite.memories import SqliteMemories
from . import fulltext


class PostgresMemories(SqliteMemories):
    """The memory's storage operations on a PostgreSQL connection (see MemoryOperations)."""

    # SQLite's quote() does not exist here; NULL is counted as a value, as quote() does.
    DISTINCT_VALUE = "coalesce(m.value::text, 'NULL')"

    def search(self, conn: Any, query: str, limit: int) -> list[MemoryRecord]:
        return fulltext.search(conn, query, limit)
