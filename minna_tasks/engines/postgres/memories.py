"""PostgreSQL's memory operations: SQLite's (the shared SQL, translated by dialect.py),
but for full-text search (PostgreSQL's own text search) and three spellings: how a
conflict tells one value from another, a match that ignores case, and bytewise order."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from ..memories import MemoryRecord, MemoryRow
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

    def append_claim(self, rows: Sequence[MemoryRow], status: int, token: int) -> int:
        if status:  # no claim of the standard events writes a row before its status
            return super().append_claim(rows, status, token)
        from psycopg.types.json import Jsonb

        params = [v if i != 2 or v is None else Jsonb(v) for row in rows for i, v in enumerate(row)]
        found = self.db.connection.execute(_claim_sql(len(rows), token), params).fetchall()
        return min(int(row[0]) for row in found)

    def search(self, query: str, limit: int) -> list[MemoryRecord]:
        return fulltext.search(self.db.connection, query, limit)


@lru_cache(maxsize=16)
def _claim_sql(count: int, token: int) -> str:
    """One INSERT of a claim's `count` rows: the first (the status row) gets an id drawn
    before the others', which row `token` holds as its value (the others' ids follow in
    row order, as the column default would draw them)."""
    first = "(0, ?::text, ?::text, ?::jsonb, ?::text, ?::float8, ?::text, ?::text)"
    values = ", ".join([first] + [f"({n}, ?, ?, ?, ?, ?, ?, ?)" for n in range(1, count)])
    return (
        "WITH token AS MATERIALIZED (SELECT nextval('memories_id_seq') AS id)"
        " INSERT INTO memories"
        " (id, entity, attribute, value, source, confidence, context, created_at)"
        " SELECT CASE WHEN v.n = 0 THEN token.id ELSE nextval('memories_id_seq') END,"
        f" v.entity, v.attribute, CASE WHEN v.n = {token} THEN to_jsonb(token.id)"
        " ELSE v.value END, v.source, v.confidence, v.context, v.created_at"
        f" FROM token, (VALUES {values})"
        " AS v (n, entity, attribute, value, source, confidence, context, created_at)"
        " RETURNING id"
    )
