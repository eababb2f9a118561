"""Session summaries and preferences: the memory a session hands to the next one.

The part of MinnaMemory (a subclass of this) kept apart from the fact log in api.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from .database import Database
from .fulltext import dict_rows
from .records import SessionSummary
from .values import Value, check_name, check_value, utcnow


class SessionsAndPreferences(Database):
    """`summarize_session`/`get_context` and `set_preference`/`get_preferences`."""

    # -- sessions -------------------------------------------------------------

    def summarize_session(
        self,
        session_id: str,
        summary: str,
        topics: Sequence[str] | None = None,
        entity_ids: Sequence[int | str] | None = None,
    ) -> int:
        """Keep a session's summary (with its topics and the ids of the entities it
        was about) for later context; returns its id."""
        row = (
            check_name("session_id", session_id),
            _text("summary", summary),
            json.dumps([check_name("topic", t) for t in _listed("topics", topics)]),
            json.dumps([_entity_id(e) for e in _listed("entity_ids", entity_ids)]),
            utcnow(),
        )
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO sessions (session_id, summary, topics, entity_ids, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                row,
            )
            return int(cursor.lastrowid or 0)

    def get_context(self, limit: int = 5) -> list[SessionSummary]:
        """The newest session summaries, newest first."""
        with self.reading() as conn:
            cursor = conn.execute(
                "SELECT id, session_id, summary, topics, entity_ids, created_at FROM sessions"
                " ORDER BY id DESC LIMIT ?",
                (limit,),
            )
            rows = list(dict_rows(cursor))
        for row in rows:
            row["topics"] = json.loads(row["topics"])
            row["entity_ids"] = json.loads(row["entity_ids"])
        return [SessionSummary(row) for row in rows]

    # -- preferences ----------------------------------------------------------

    def set_preference(self, category: str, key: str, value: Value = None) -> Value:
        """Set the preference (category, key) when a value is given; returns the value
        now stored (None when unset), so `set_preference(category, key)` reads it."""
        check_name("category", category)
        check_name("key", key)
        if value is None:
            return self.get_preference(category, key)
        row = (category, key, check_value(value), utcnow())
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO preferences (category, key, value, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (category, key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                row,
            )
        return row[2]

    def get_preference(self, category: str, key: str, default: Value = None) -> Value:
        """The value of the preference (category, key), or `default`."""
        with self.reading() as conn:
            row = conn.execute(
                "SELECT value FROM preferences WHERE category = ? AND key = ?", (category, key)
            ).fetchone()
        return default if row is None else row[0]

    def get_preferences(self, category: str | None = None) -> list[dict[str, Any]]:
        """Every preference (or one category's): {category, key, value, updated_at},
        by category then key."""
        sql, args = "SELECT category, key, value, updated_at FROM preferences", []
        if category is not None:
            sql, args = sql + " WHERE category = ?", [category]
        with self.reading() as conn:
            return list(dict_rows(conn.execute(sql + " ORDER BY category, key", args)))


def _listed(name: str, items: Sequence[Any] | None) -> Iterator[Any]:
    if items is None:
        return iter(())
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise TypeError(f"{name} must be a list, not {type(items).__name__}")
    return iter(items)


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}")
    return value


def _entity_id(value: object) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"an entity id must be an integer or a name, not {type(value).__name__}")
    return check_name("entity id", value) if isinstance(value, str) else value
