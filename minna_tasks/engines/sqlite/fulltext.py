"""Full-text search over memories (FTS5), filled in batches rather than per insert.

A per-insert FTS5 trigger wrote one index segment per commit, more than half
the cost of a task transition. Instead a committing write transaction indexes
every memory above a stored mark once FTS_BATCH are waiting (rows written by
other processes or by plain SQL included), and search() covers the few newest
rows from a temporary index, so results are always complete.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from ..memories import MEMORY_COLUMNS

# A search result's columns (a MemoryRecord), from `memories m`.
_COLUMNS = ", ".join(f"m.{c}" for c in MEMORY_COLUMNS)

# Unindexed memories at which a committing write transaction brings the full-text index
# up to date: the index lags by fewer rows than this, and search() covers the lag.
FTS_BATCH = 128


def fts_query(query: str) -> str:
    """Quote every word so user text never reaches FTS5 as query syntax."""
    words = query.split()
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def any_word_query(query: str) -> str:
    """Every token of the query (as FTS5 splits text), any of them may match."""
    return " OR ".join(f'"{token}"' for token in dict.fromkeys(re.findall(r"\w+", query)))


def search(conn: sqlite3.Connection, query: str, limit: int) -> list[Any]:
    """Best matches first, inside the caller's read transaction (a pure read).

    Memories holding every word of the query; if there are none, those holding any of
    its words (ranked, so the ones holding more come first): an error message or a
    question finds the memories that share its words.
    """
    rows = _search(conn, fts_query(query), limit)
    if rows or len(re.findall(r"\w+", query)) < 2:
        return rows
    return _search(conn, any_word_query(query), limit)


def _search(conn: sqlite3.Connection, match: str, limit: int) -> list[Any]:
    if not match:
        return []
    upto, top = indexed_range(conn)
    if top <= upto:
        return conn.execute(
            f"SELECT {_COLUMNS} FROM memories_fts JOIN memories m ON m.id = memories_fts.rowid"
            " WHERE memories_fts MATCH ? ORDER BY rank, m.id DESC LIMIT ?",
            (match, limit),
        ).fetchall()
    # The newest memories are not in the index yet: search them from a temporary
    # one (temp tables are writable even on a read-only file).
    conn.execute("DROP TABLE IF EXISTS temp.memories_fts_tail")
    conn.execute(
        "CREATE VIRTUAL TABLE temp.memories_fts_tail USING fts5 (entity, attribute, value)"
    )
    try:
        conn.execute(
            "INSERT INTO temp.memories_fts_tail (rowid, entity, attribute, value)"
            " SELECT id, entity, attribute, value FROM memories WHERE id > ?",
            (upto,),
        )
        # SELECT * (then the rank dropped here): naming the columns outside the union
        # keeps SQLite from merging the two ordered halves (~35% slower).
        rows = conn.execute(
            "SELECT * FROM ("
            f" SELECT {_COLUMNS}, f.rank AS fts_rank FROM memories_fts f"
            " JOIN memories m ON m.id = f.rowid WHERE memories_fts MATCH ?1"
            " UNION ALL"
            f" SELECT {_COLUMNS}, t.rank FROM temp.memories_fts_tail t"
            " JOIN memories m ON m.id = t.rowid WHERE memories_fts_tail MATCH ?1"
            ") ORDER BY fts_rank, id DESC LIMIT ?2",
            (match, limit),
        ).fetchall()
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.memories_fts_tail")
    return [row[:-1] for row in rows]


def indexed_range(conn: sqlite3.Connection) -> tuple[int, int]:
    """(the highest memory id in the full-text index, the highest memory id)."""
    top = int(conn.execute("SELECT coalesce(max(id), 0) FROM memories").fetchone()[0])
    try:
        row = conn.execute("SELECT indexed_upto FROM memories_fts_state WHERE id = 1").fetchone()
    except sqlite3.OperationalError:
        # A read-only file from before batched indexing: its trigger indexed every row.
        return top, top
    return (0 if row is None else int(row[0])), top


def index_backlog(conn: sqlite3.Connection, least: int = 1) -> None:
    """Inside a write transaction: add the memories above the mark to the index once
    there are `least` of them (one FTS5 segment for many rows)."""
    upto, top = indexed_range(conn)
    if top - upto >= least:
        conn.execute(
            "INSERT INTO memories_fts (rowid, entity, attribute, value)"
            " SELECT id, entity, attribute, value FROM memories WHERE id > ? ORDER BY id",
            (upto,),
        )
        conn.execute("UPDATE memories_fts_state SET indexed_upto = ? WHERE id = 1", (top,))
