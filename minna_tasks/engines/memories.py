"""The memory's storage operations: what `MinnaMemory` asks of an engine.

`MinnaMemory` (memory/api.py, memory/context.py) keeps the documented API, the checks
and the rules (decay, which relations are the task layer's, what is a conflict); the
SQL sits behind this interface, one implementation per engine
(engines/sqlite/memories.py, engines/postgres/memories.py), which each engine object
exposes as `memory_ops` (as `task_ops` for the store). Each operation runs on the
engine's connection, inside the transaction or read snapshot `MinnaMemory` opened
(which operations form one atomic step is a rule, so it stays above the seam).

Rows go in and out as plain tuples and dicts, with lists (aliases, topics, entity ids)
already decoded from the text they are stored as.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

# A memory's value: what both engines store exactly (memory/values.py checks it).
Value = str | int | float | None
# One row to append: (entity, attribute, value, source, confidence, context, created_at).
MemoryRow = tuple[str, str, Value, str | None, float, str | None, str]
# One stored memory, as MEMORY_COLUMNS lists it.
MemoryRecord = tuple[int, str, str, Value, str | None, float, str | None, str, str | None]
MEMORY_COLUMNS = (
    "id",
    "entity",
    "attribute",
    "value",
    "source",
    "confidence",
    "context",
    "created_at",
    "verified_at",
)
# One stored entity, as find_entities and the entity lookups read it.
ENTITY_COLUMNS = ("id", "name", "entity_type", "aliases", "created_at")
# A row to append's columns (MemoryRow's order): a stored memory's, but its id and
# verified_at, which the database gives.
ROW_COLUMNS = MEMORY_COLUMNS[1:-1]
# The tables stats() counts, in the order it reports them.
COUNTED_TABLES = ("memories", "entities", "relations", "sessions", "preferences")
# Which end(s) of a relation get_related looks at, by direction.
RELATION_SIDES: dict[str, tuple[str, ...]] = {
    "out": ("from_entity",),
    "in": ("to_entity",),
    "both": ("from_entity", "to_entity"),
}


@runtime_checkable
class MemoryOperations(Protocol):
    """The memory's storage, one operation per method: writes inside the caller's open
    transaction, reads inside its transaction or read snapshot."""

    # -- the fact log -------------------------------------------------------

    def append(self, row: MemoryRow) -> int:
        """Append one memory; returns its id."""

    def append_many(self, rows: Iterable[MemoryRow]) -> None:
        """Append many memories in one go (a task move's triples)."""

    def append_claim(self, rows: Sequence[MemoryRow], status: int, token: int) -> int:
        """Append `rows` in order, rows[token]'s value replaced by the id rows[status]
        gets (status < token: a claim's fencing token, store/fencing.py); returns that id."""

    def current(self, entity: str, attribute: str) -> Value:
        """The newest value of (entity, attribute), or None."""

    def recall(self, entity: str | None, attribute: str | None) -> Iterator[MemoryRecord]:
        """Memories of this entity and/or attribute (None: any), newest first, lazily."""

    def search(self, query: str, limit: int) -> list[MemoryRecord]:
        """Full-text search over entity, attribute and value, best first: memories
        holding every word of `query`, else those holding any of its words."""

    def verify(self, memory_id: int, stamp: str) -> bool:
        """Set a memory's verified_at; False when there is no such memory."""

    def conflicting(
        self, entity: str | None, attribute: str | None, skip_type: str
    ) -> list[tuple[str, str]]:
        """(entity, attribute) pairs holding more than one distinct value (a value's type
        counts: 1 and "1" differ), by entity then attribute; entities of `skip_type` left out."""

    def values(self, entity: str, attribute: str) -> list[tuple[int, Value]]:
        """(id, value) of every memory of (entity, attribute), oldest first."""

    def counts(self) -> dict[str, int]:
        """The number of rows of each of COUNTED_TABLES."""

    def entity_types(self) -> dict[str, int]:
        """{entity type: number of entities}, by type."""

    # -- entities and relations ----------------------------------------------

    def entity(self, name: str, by_alias: bool = True) -> dict[str, Any] | None:
        """The entity with this name, or else (`by_alias`) this alias: id, name,
        entity_type, aliases, created_at."""

    def add_entity(
        self, name: str, entity_type: str, aliases: Sequence[str], created_at: str
    ) -> int:
        """Insert an entity row (its aliases not yet claimed: see claim_alias); its id."""

    def set_aliases(self, entity_id: int, aliases: Sequence[str]) -> None:
        """Replace the alias list kept on the entity's row."""

    def alias_owner(self, alias: str) -> int | None:
        """The id of the entity holding this alias, or None."""

    def claim_alias(self, alias: str, entity_id: int) -> None:
        """Record that the entity holds this alias (nothing if it already does)."""

    def find_entities(
        self, pattern: str | None, entity_type: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """Entities whose name or an alias contains `pattern` (any case; LIKE's wildcards
        in it are literal), of `entity_type` if given; by name."""

    def of_type(self, names: Sequence[str], entity_type: str) -> list[str]:
        """Which of `names` are entities of `entity_type`, sorted."""

    def relate(self, from_entity: str, to_entity: str, rel_type: str, at: str) -> int:
        """Insert a relation; its id."""

    def relations(
        self, names: Sequence[str], direction: str, rel_type: str | None
    ) -> list[dict[str, Any]]:
        """Relations with one of `names` at the end(s) RELATION_SIDES[direction] names (of
        `rel_type` if given), oldest first, as stored (id, from_entity, to_entity,
        rel_type, created_at)."""

    # -- sessions and preferences ----------------------------------------------

    def add_session(
        self,
        session_id: str,
        summary: str,
        topics: Sequence[str],
        entity_ids: Sequence[int | str],
        created_at: str,
    ) -> int:
        """Keep a session summary; its id."""

    def sessions(self, limit: int) -> list[dict[str, Any]]:
        """The newest session summaries, newest first (topics and entity_ids as lists)."""

    def set_preference(self, category: str, key: str, value: Value, updated_at: str) -> None:
        """Insert or replace the preference (category, key)."""

    def preference(self, category: str, key: str) -> tuple[Value] | None:
        """(value,) of the preference (category, key), or None when it is not set."""

    def preferences(self, category: str | None) -> list[dict[str, Any]]:
        """Every preference (or one category's): category, key, value, updated_at; by
        category then key."""
