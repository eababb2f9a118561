"""MinnaMemory: the documented Minna memory API (store, recall, search, entities, ...)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from ..errors import AliasTaken, EntityTypeConflict, MemoryNotFound
from . import fulltext
from .database import Database
from .fulltext import dict_rows
from .values import Value, check_name, check_value, decayed, utcnow

INSERT_MEMORY = (
    "INSERT INTO memories (entity, attribute, value, source, confidence, context, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
MemoryRow = tuple[str, str, Value, str | None, float, str | None, str]


class MinnaMemory(Database):
    """An entity/attribute/value memory on SQLite, shared safely with other tools.

    Facts are triples in an append-only `memories` table: a new value is a new
    row, recall is newest first, and history is never lost.
    """

    # -- memories -----------------------------------------------------------

    def store(
        self,
        entity: str,
        attribute: str,
        value: Value,
        source: str | None = "user",
        confidence: float = 1.0,
        context: str | None = None,
    ) -> int:
        """Append one fact; returns its memory id. Older values stay in the log."""
        if not 0.0 <= float(confidence) <= 1.0:
            raise ValueError("confidence must be between 0 and 1")
        row = (
            check_name("entity", entity),
            check_name("attribute", attribute),
            check_value(value),
            source,
            float(confidence),
            context,
            utcnow(),
        )
        with self.transaction() as conn:
            return int(conn.execute(INSERT_MEMORY, row).lastrowid or 0)

    def append(
        self,
        facts: Iterable[tuple[str, str, Value, str | None, str | None]],
        created_at: str,
        confidence: float = 1.0,
    ) -> None:
        """Append pre-checked (entity, attribute, value, source, context) facts, all
        stamped `created_at`, inside the caller's open transaction."""
        self.append_rows((e, a, v, s, confidence, c, created_at) for e, a, v, s, c in facts)

    def append_rows(self, rows: Iterable[MemoryRow]) -> None:
        """Append whole pre-checked rows (entity, attribute, value, source, confidence,
        context, created_at) inside the caller's open transaction (no savepoint)."""
        if not self._depth:
            raise RuntimeError("MinnaMemory.append needs an open transaction()")
        self.connection.executemany(INSERT_MEMORY, rows)

    def current(self, entity: str, attribute: str) -> Value:
        """The newest value of (entity, attribute), or None: one index seek."""
        row = self.connection.execute(
            "SELECT value FROM memories WHERE entity = ? AND attribute = ?"
            " ORDER BY id DESC LIMIT 1",
            (entity, attribute),
        ).fetchone()
        return None if row is None else row[0]

    def recall(
        self,
        entity: str | None = None,
        attribute: str | None = None,
        limit: int | None = 10,
        include_decay: bool = False,
        half_life_days: float = 90,
        min_confidence: float = 0.0,
    ) -> list[dict[str, Any]]:
        """Memories matching entity and/or attribute, newest first.

        With `include_decay`, confidence halves every `half_life_days` since the
        memory was verified (or created). `limit=None` returns all.
        """
        if half_life_days <= 0:
            raise ValueError("half_life_days must be positive")
        where, args = [], []
        if entity is not None:
            where.append("entity = ?")
            args.append(entity)
        if attribute is not None:
            where.append("attribute = ?")
            args.append(attribute)
        sql = "SELECT * FROM memories"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        now = datetime.now(UTC)
        out: list[dict[str, Any]] = []
        with self.reading() as conn:
            for row in dict_rows(conn.execute(sql, args)):
                if include_decay:
                    row["confidence"] = decayed(
                        row["confidence"],
                        row["verified_at"] or row["created_at"],
                        half_life_days,
                        now,
                    )
                if row["confidence"] < min_confidence:
                    continue
                out.append(row)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def search(self, query: str, limit: int = 10) -> list[dict[str, Any]]:
        """Full-text search over entity, attribute and value (FTS5), best match first.

        Every memory is searched: the index is filled in batches at commit, and the
        few newest memories not in it yet are searched from a temporary index.
        """
        with self.reading() as conn:
            return fulltext.search(conn, query, limit)

    def verify(self, memory_id: int) -> None:
        """Mark a memory as verified now, which resets its decay."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE memories SET verified_at = ? WHERE id = ?", (utcnow(), memory_id)
            )
            if cursor.rowcount == 0:
                raise MemoryNotFound(memory_id)

    # -- entities and relations ---------------------------------------------

    def add_entity(self, name: str, entity_type: str, aliases: Sequence[str] | None = None) -> int:
        """Register an entity (or add aliases to an existing one); returns its id."""
        check_name("entity name", name)
        check_name("entity type", entity_type)
        new_aliases = [check_name("alias", a) for a in aliases or ()]
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT id, entity_type, aliases FROM entities WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                cursor = conn.execute(
                    "INSERT INTO entities (name, entity_type, aliases, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (name, entity_type, json.dumps(new_aliases), utcnow()),
                )
                entity_id = int(cursor.lastrowid or 0)
            else:
                entity_id = int(row[0])
                if row[1] != entity_type:
                    raise EntityTypeConflict(name, row[1], entity_type)
                merged = list(dict.fromkeys([*json.loads(row[2]), *new_aliases]))
                conn.execute(
                    "UPDATE entities SET aliases = ? WHERE id = ?", (json.dumps(merged), entity_id)
                )
            for alias in new_aliases:
                owner = conn.execute(
                    "SELECT entity_id FROM entity_aliases WHERE alias = ?", (alias,)
                ).fetchone()
                if owner is not None and owner[0] != entity_id:
                    raise AliasTaken(alias)
                conn.execute(
                    "INSERT OR IGNORE INTO entity_aliases (alias, entity_id) VALUES (?, ?)",
                    (alias, entity_id),
                )
        return entity_id

    def get_entity(self, name_or_alias: str) -> dict[str, Any] | None:
        """The entity with this name or alias: {id, name, entity_type, aliases, created_at}."""
        row = self.connection.execute(
            "SELECT * FROM entities WHERE name = ? UNION ALL "
            "SELECT e.* FROM entities e JOIN entity_aliases a ON a.entity_id = e.id"
            " WHERE a.alias = ? LIMIT 1",
            (name_or_alias, name_or_alias),
        ).fetchone()
        if row is None:
            return None
        entity = dict(zip(("id", "name", "entity_type", "aliases", "created_at"), row, strict=True))
        entity["aliases"] = json.loads(entity["aliases"])
        return entity

    def relate(self, from_entity: str, to_entity: str, rel_type: str) -> int:
        """Record a typed relation between two entities; returns its id."""
        row = (
            check_name("from_entity", from_entity),
            check_name("to_entity", to_entity),
            check_name("rel_type", rel_type),
            utcnow(),
        )
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO relations (from_entity, to_entity, rel_type, created_at)"
                " VALUES (?, ?, ?, ?)",
                row,
            )
            return int(cursor.lastrowid or 0)

    def get_relations(
        self, entity: str, rel_type: str | None = None, direction: str = "both"
    ) -> list[dict[str, Any]]:
        """Relations touching `entity` (`direction` 'out', 'in' or 'both'), oldest first."""
        if direction not in ("out", "in", "both"):
            raise ValueError("direction must be 'out', 'in' or 'both'")
        sides = {"out": ["from_entity"], "in": ["to_entity"], "both": ["from_entity", "to_entity"]}[
            direction
        ]
        where = "(" + " OR ".join(f"{side} = :entity" for side in sides) + ")"
        if rel_type is not None:
            where += " AND rel_type = :rel_type"
        cursor = self.connection.execute(
            f"SELECT * FROM relations WHERE {where} ORDER BY id",
            {"entity": entity, "rel_type": rel_type},
        )
        return list(dict_rows(cursor))

    # -- sessions and preferences -------------------------------------------

    def summarize_session(
        self, session_id: str, summary: str, topics: Sequence[str] | None = None
    ) -> int:
        """Keep a session's summary for later context; returns its id."""
        row = (
            check_name("session_id", session_id),
            str(summary),
            json.dumps(list(topics or [])),
            utcnow(),
        )
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO sessions (session_id, summary, topics, created_at)"
                " VALUES (?, ?, ?, ?)",
                row,
            )
            return int(cursor.lastrowid or 0)

    def get_context(self, limit: int = 5) -> list[dict[str, Any]]:
        """The newest session summaries: {session_id, summary, topics, created_at}."""
        cursor = self.connection.execute(
            "SELECT session_id, summary, topics, created_at FROM sessions ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        rows = list(dict_rows(cursor))
        for row in rows:
            row["topics"] = json.loads(row["topics"])
        return rows

    def set_preference(self, key: str, value: Value, category: str = "general") -> None:
        """Set a user preference (the newest value wins)."""
        row = (check_name("key", key), check_value(value), category, utcnow())
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO preferences (key, value, category, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " category = excluded.category, updated_at = excluded.updated_at",
                row,
            )

    def get_preference(self, key: str, default: Value = None) -> Value:
        row = self.connection.execute(
            "SELECT value FROM preferences WHERE key = ?", (key,)
        ).fetchone()
        return default if row is None else row[0]

    def get_preferences(self, category: str | None = None) -> dict[str, Value]:
        sql, args = "SELECT key, value FROM preferences", []
        if category is not None:
            sql, args = sql + " WHERE category = ?", [category]
        return dict(self.connection.execute(sql + " ORDER BY key", args).fetchall())
