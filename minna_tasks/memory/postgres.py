"""MinnaMemory on PostgreSQL: `MinnaMemory("postgresql://...")` builds one of these.

Every memory method is MinnaMemory's own, over the PostgreSQL connection and
transactions of engines/postgres; only full-text search differs (PostgreSQL's text
search instead of FTS5).
"""

from __future__ import annotations

from typing import Any

from ..engines.postgres.database import PostgresDatabase
from ..engines.postgres.schema import SEARCH_VECTOR


class PostgresMemory(PostgresDatabase):
    """Mixed in before a MinnaMemory class (see `postgres_class`)."""

    def search(self, query: str, limit: int = 10) -> list[dict[str, Any]]:
        """Full-text search over entity, attribute and value, best match first: every
        word must occur (as FTS5's quoted words), the closest matches ranked first."""
        words = " ".join(query.split())
        if not words:
            return []
        with self.reading() as conn:
            cursor = conn.execute(
                "SELECT m.* FROM memories m, plainto_tsquery('simple', ?) q"
                f" WHERE {SEARCH_VECTOR} @@ q"
                f" ORDER BY ts_rank({SEARCH_VECTOR}, q) DESC, m.id DESC LIMIT ?",
                (words, limit),
            )
            names = [d[0] for d in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor]


_CLASSES: dict[type, type] = {}


def postgres_class(base: type) -> type:
    """`base` (MinnaMemory or a subclass) on PostgreSQL: the same name, the engine mixed in."""
    if base not in _CLASSES:
        _CLASSES[base] = type(
            base.__name__, (PostgresMemory, base), {"__module__": base.__module__}
        )
    return _CLASSES[base]
