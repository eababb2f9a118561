"""Session summaries and preferences: the memory a session hands to the next one.

The part of MinnaMemory (a subclass of this) kept apart from the fact log in api.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any

from ..engines.memories import MemoryOperations
from ..engines.sqlite.database import Database
from ..engines.sqlite.memories import SqliteMemories
from .records import SessionSummary
from .values import Value, check_name, check_value, utcnow


class SessionsAndPreferences(Database):
    """`summarize_session`/`get_context` and `set_preference`/`get_preferences`."""

    @cached_property
    def memory_ops(self) -> MemoryOperations:
        """The memory operations on this engine (engines/sqlite/memories.py; the
        PostgreSQL engine's mixin, memory/postgres.py, gives its own): all the SQL of
        MinnaMemory runs through them."""
        return SqliteMemories(self)

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
            [check_name("topic", t) for t in _listed("topics", topics)],
            [_entity_id(e) for e in _listed("entity_ids", entity_ids)],
            utcnow(),
        )
        with self.transaction():
            return self.memory_ops.add_session(*row)

    def get_context(self, limit: int = 5) -> list[SessionSummary]:
        """The newest session summaries, newest first."""
        with self.reading():
            rows = self.memory_ops.sessions(limit)
        return [SessionSummary(row) for row in rows]

    # -- preferences ----------------------------------------------------------

    def set_preference(self, category: str, key: str, value: Value = None) -> Value:
        """Set the preference (category, key) when a value is given; returns the value
        now stored (None when unset), so `set_preference(category, key)` reads it."""
        check_name("category", category)
        check_name("key", key)
        if value is None:
            return self.get_preference(category, key)
        stored = check_value(value)
        with self.transaction():
            self.memory_ops.set_preference(category, key, stored, utcnow())
        return stored

    def get_preference(self, category: str, key: str, default: Value = None) -> Value:
        """The value of the preference (category, key), or `default`."""
        with self.reading():
            row = self.memory_ops.preference(category, key)
        return default if row is None else row[0]

    def get_preferences(self, category: str | None = None) -> list[dict[str, Any]]:
        """Every preference (or one category's): {category, key, value, updated_at},
        by category then key."""
        with self.reading():
            return self.memory_ops.preferences(category)


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
