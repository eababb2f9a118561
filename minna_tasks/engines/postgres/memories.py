"""PostgreSQL's memory operations: SQLite's (the shared SQL, translated by dialect.py),
but for full-text search (PostgreSQL's own text search) and three spellings: how a
conflict tells one value from another, a match that ignores case, and bytewise order."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ..memories import ROW_COLUMNS, MemoryRecord, MemoryRow
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
        found = self.db.connection.execute(_claim_sql(len(rows), token), row_params(rows))
        found = found.fetchall()
        return min(int(row[0]) for row in found)

    def search(self, query: str, limit: int) -> list[MemoryRecord]:
        return fulltext.search(self.db.connection, query, limit)


# A memories row in a numbered VALUES list, as the one-statement appends send it: the
# columns after `n`, each with the type the first row casts it to (the others follow).
_ROW_TYPES = ("text", "text", "jsonb", "text", "float8", "text", "text")


@lru_cache(maxsize=64)
def rows_values(count: int, entity: bool = True) -> str:
    """`(VALUES ...) AS v (n, ...)` for `count` memories rows (without the entity column
    when the statement takes it from a row it locked); `n` numbers them from 0."""
    skip = 0 if entity else 1
    types = _ROW_TYPES[skip:]
    first = "(0, " + ", ".join(f"?::{t}" for t in types) + ")"
    others = [f"({n}, {', '.join('?' * len(types))})" for n in range(1, count)]
    return f"(VALUES {', '.join([first, *others])}) AS v (n, {', '.join(ROW_COLUMNS[skip:])})"


def row_params(rows: Sequence[Sequence[Any]], entity: bool = True) -> list[Any]:
    """rows_values' parameters: the rows' columns in order (the entity left out when
    `entity` is False), each value as JSONB (None stays SQL NULL)."""
    from psycopg.types.json import Jsonb

    value = ROW_COLUMNS.index("value")
    skip = 0 if entity else 1
    return [
        v if i != value or v is None else Jsonb(v)
        for row in rows
        for i, v in enumerate(row)
        if i >= skip
    ]


def token_insert(count: int, token: int, entity: str, sources: str) -> str:
    """INSERT ... SELECT of a claim's `count` rows (rows_values, `v`): the first (the status
    row) gets the id `token.id` drew before the others' (which follow in row order, as the
    column default would draw them), row `token` holds that id as its value; `entity` is
    the rows' entity, `sources` what the SELECT reads besides `v`."""
    values = rows_values(count, entity=entity == "v.entity")
    return (
        f"INSERT INTO memories (id, {', '.join(ROW_COLUMNS)})"
        " SELECT CASE WHEN v.n = 0 THEN token.id ELSE nextval('memories_id_seq') END,"
        f" {entity}, v.attribute, CASE WHEN v.n = {token} THEN to_jsonb(token.id)"
        " ELSE v.value END, v.source, v.confidence, v.context, v.created_at"
        f" FROM {sources}, {values}"
    )


@lru_cache(maxsize=16)
def _claim_sql(count: int, token: int) -> str:
    """One INSERT of a claim's `count` rows, row `token` holding the status row's id."""
    return (
        "WITH token AS MATERIALIZED (SELECT nextval('memories_id_seq') AS id) "
        + token_insert(count, token, "v.entity", "token")
        + " RETURNING id"
    )
