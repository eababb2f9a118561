"""Full-text search over memories with PostgreSQL's own text search (a GIN index on
the `simple` configuration: words lowercased, no stemming, as FTS5's default)."""

from __future__ import annotations

import re
from typing import Any

from ..memories import MEMORY_COLUMNS
from .schema import SEARCH_VECTOR

# A search result's columns (a MemoryRecord).
_COLUMNS = ", ".join(f"m.{c}" for c in MEMORY_COLUMNS)


def search(conn: Any, query: str, limit: int) -> list[Any]:
    """Memories holding every word of the query, best first; if there are none, those
    holding any of its words (ranked, so the ones holding more come first), as on
    SQLite. User text only ever reaches the server as a parameter of plainto_tsquery."""
    words = re.findall(r"\w+", query)
    if not words:
        return []
    rows = _search(conn, "plainto_tsquery('simple', ?)", [" ".join(words)], limit)
    if rows or len(words) < 2:
        return rows
    unique = list(dict.fromkeys(words))
    any_word = " || ".join("plainto_tsquery('simple', ?)" for _ in unique)
    return _search(conn, f"({any_word})", unique, limit)


def _search(conn: Any, tsquery: str, args: list[Any], limit: int) -> list[Any]:
    rows: list[Any] = conn.execute(
        f"SELECT {_COLUMNS} FROM memories m, (SELECT {tsquery} AS q) AS t"
        f" WHERE {SEARCH_VECTOR} @@ t.q"
        f" ORDER BY ts_rank({SEARCH_VECTOR}, t.q) DESC, m.id DESC LIMIT ?",
        [*args, limit],
    ).fetchall()
    return rows
