"""PostgreSQL's memory operations: SQLite's (the shared SQL, translated by dialect.py),
but for full-text search (PostgreSQL's own text search) and three spellings: how a
conflict tells one value from another, a match that ignores case, and bytewise order."""

from __future__ import annotations

from ..memories import MemoryRecord
from ..sqlite.memories import SqliteMemories
from . import fulltext


class PostgresMemories(SqliteMemories):
    """The memory's storage operations on a PostgreSQL connection (see MemoryOperations)."""

    # No quote() here: a JSONB value's text keeps 1, 1.0 and "1" apart, and NULL counts
    # as a value (as quote() counts it).
    DISTINCT_VALUE = "coalesce(m.value::text, 'NULL')"
    # PostgreSQL's LIKE minds case; SQLite's does not.
    LIKE = "ILIKE"
    # Text ordered as SQLite orders it (by bytes), not by the database's locale.
    BYTEWISE = ' COLLATE "C"'

    def search(self, query: str, limit: int) -> list[MemoryRecord]:
        return fulltext.search(self.db.connection, query, limit)
