"""MinnaMemory: the documented Minna memory API (store, recall, search, entities, ...)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from ..engines import is_postgres_url
from ..engines.memories import RELATION_SIDES, MemoryRow
from ..engines.task_schema import DEPENDS_ON, TASK_TYPE  # the task layer's names
from ..errors import (
    AliasTaken,
    DependencyError,
    EntityTypeConflict,
    MemoryNotFound,
    UnknownEntityType,
)
from .context import SessionsAndPreferences
from .records import Entity, Memory
from .values import Value, check_name, check_value, decayed, utcnow

# Relations between tasks that the task layer keeps (with counts and a log): `relate`
# refuses them, as TaskStore.remember refuses a task's own fields.
TASK_RELATIONS = frozenset({DEPENDS_ON})


# The entity types the documented Minna MCP server accepts. The library itself takes
# any type (TaskStore's tasks are entities of type "task"); the fronts (MCP, CLI)
# offer only these, through check_entity_type, so tasks are made by the task tools.
ENTITY_TYPES = ("person", "project", "concept", "topic", "preference")
# Tasks (TASK_TYPE) are entities whose facts are a log of their life (a task's status,
# owner, ...), not statements that could contradict each other: detect_conflicts leaves
# them out.
DEFAULT_HALF_LIFE_DAYS = 90.0


def check_entity_type(entity_type: str) -> str:
    """The entity type if it is one of the five documented ones; else UnknownEntityType."""
    if entity_type not in ENTITY_TYPES:
        raise UnknownEntityType(entity_type, ENTITY_TYPES, TASK_TYPE)
    return entity_type


def to_memory(row: Sequence[Any], half_life_days: float, now: datetime, decay: bool) -> Memory:
    """A `memories` row (MEMORY_COLUMNS) as a Memory with its effective confidence.

    Rounded to 4 places (decay is a matter of days: at the default half-life the 4th
    place moves after ~13 minutes), so a memory stored a moment ago has its full
    confidence and `min_confidence=1.0` keeps it.
    """
    memory_id, entity, attribute, value, source, confidence, context, created_at, verified = row
    effective = round(decayed(confidence, verified or created_at, half_life_days, now), 4)
    return Memory.trusted(
        id=memory_id,
        entity=entity,
        attribute=attribute,
        value=value,
        source=source,
        confidence=effective if decay else confidence,
        effective_confidence=effective,
        context=context,
        created_at=created_at,
        verified_at=verified,
    )


class MinnaMemory(SessionsAndPreferences):
    """An entity/attribute/value memory on SQLite, shared safely with other tools.

    Facts are triples in an append-only `memories` table: a new value is a new
    row, recall is newest first, and history is never lost. Sessions and
    preferences come from `SessionsAndPreferences` (memory/context.py).
    `MinnaMemory("postgresql://...")` is the same memory on a PostgreSQL database.
    """

    def __new__(cls, path: Any = None, *args: Any, **kwargs: Any) -> MinnaMemory:
        # A postgresql:// URL selects the PostgreSQL engine: the same class, with the
        # engine's connection and transactions mixed in (see memory/postgres.py).
        if is_postgres_url(path):
            from .postgres import PostgresMemory, postgres_class

            if issubclass(cls, PostgresMemory):
                return super().__new__(cls)
            return super().__new__(postgres_class(cls))
        return super().__new__(cls)

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
        with self.transaction():
            return self.memory_ops.append(row)

    def append(
        self,
        facts: Iterable[tuple[str, str, Value, str | None, str | None]],
        created_at: str,
        confidence: float = 1.0,
    ) -> None:
        """Append pre-checked (entity, attribute, value, source, context) facts, all
        stamped `created_at`, inside the caller's open transaction."""
        self.append_rows((e, a, v, s, confidence, c, created_at) for e, a, v, s, c in facts)

    def append_claim(self, rows: Sequence[MemoryRow], status: int, token: int) -> int:
        """Append whole pre-checked rows inside the caller's open transaction, rows[token]'s
        value being the id rows[status] gets (a claim's fencing token); returns that id."""
        self._require_transaction()
        return self.memory_ops.append_claim(rows, status, token)

    def append_rows(self, rows: Iterable[MemoryRow]) -> None:
        """Append whole pre-checked rows (entity, attribute, value, source, confidence,
        context, created_at) inside the caller's open transaction (no savepoint)."""
        self._require_transaction()
        self.memory_ops.append_many(rows)

    def _require_transaction(self) -> None:
        if not self._depth:
            raise RuntimeError("MinnaMemory.append needs an open transaction()")

    def current(self, entity: str, attribute: str) -> Value:
        """The newest value of (entity, attribute), or None: one index seek."""
        return self.memory_ops.current(entity, attribute)

    def recall(
        self,
        entity: str | None = None,
        attribute: str | None = None,
        limit: int | None = 10,
        include_decay: bool = False,
        half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
        min_confidence: float = 0.0,
    ) -> list[Memory]:
        """Memories matching entity and/or attribute, newest first.

        Every memory carries `effective_confidence`: its confidence halved every
        `half_life_days` since it was verified (or made). `min_confidence` filters on
        it; `include_decay` reports `confidence` decayed too. `limit=None` returns all.
        """
        if half_life_days <= 0:
            raise ValueError("half_life_days must be positive")
        now = datetime.now(UTC)
        out: list[Memory] = []
        with self.reading():
            for row in self.memory_ops.recall(entity, attribute):
                memory = to_memory(row, half_life_days, now, include_decay)
                if memory.effective_confidence < min_confidence:
                    continue
                out.append(memory)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def search(self, query: str, limit: int = 10) -> list[Memory]:
        """Full-text search over entity, attribute and value (FTS5), best match first.

        Every memory is searched: the index is filled in batches at commit, and the
        few newest memories not in it yet are searched from a temporary index. When
        no memory holds every word, memories holding any of them are returned.
        """
        now = datetime.now(UTC)
        with self.reading():
            rows = self.memory_ops.search(query, limit)
        return [to_memory(row, DEFAULT_HALF_LIFE_DAYS, now, False) for row in rows]

    def verify(self, memory_id: int) -> str:
        """Mark a memory as verified now, which resets its decay; returns that time."""
        stamp = utcnow()
        with self.transaction():
            if not self.memory_ops.verify(memory_id, stamp):
                raise MemoryNotFound(memory_id)
        return stamp

    def who(self, name: str) -> dict[str, Any] | None:
        """Everything known about an entity (by name or alias), or None if nothing is:
        `name, entity_type, aliases, facts` ({attribute: newest value}), `memories`
        (newest first) and `related`. Facts stored under a name with no entity row
        count too (entity_type None)."""
        with self.reading():
            entity = self.get_entity(name)
            canonical = name if entity is None else entity.name
            memories = self.recall(entity=canonical, limit=None)
            if entity is None and not memories:
                return None
            facts: dict[str, Value] = {}
            for memory in memories:
                facts.setdefault(memory.attribute, memory.value)
            return {
                "name": canonical,
                "entity_type": None if entity is None else entity.entity_type,
                "aliases": [] if entity is None else entity.aliases,
                "facts": facts,
                "memories": memories,
                "related": self.get_related(canonical),
            }

    def detect_conflicts(
        self, entity: str | None = None, attribute: str | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """Each (entity, attribute) whose memories hold more than one distinct value:
        `{"conflicts": [{"entity", "attribute", "values", "memory_ids"}]}`, values in
        the order they were first stored, ids oldest first. A task's fields are a log
        of its life, not contradicting statements: entities of type task are skipped."""
        with self.reading():
            if entity is not None:
                found = self.get_entity(entity)
                entity = entity if found is None else found.name
            conflicts = []
            for name, attr in self.memory_ops.conflicting(entity, attribute, TASK_TYPE):
                rows = self.memory_ops.values(name, attr)
                values = list({(type(v).__name__, v): v for _, v in rows}.values())
                conflicts.append(
                    {
                        "entity": name,
                        "attribute": attr,
                        "values": values,
                        "memory_ids": [memory_id for memory_id, _ in rows],
                    }
                )
        return {"conflicts": conflicts}

    def stats(self) -> dict[str, Any]:
        """Counts of memories, entities, relations, sessions and preferences, and
        `entity_types` ({type: number of entities})."""
        with self.reading():
            counts: dict[str, Any] = self.memory_ops.counts()
            counts["entity_types"] = self.memory_ops.entity_types()
        return counts

    # -- entities and relations ---------------------------------------------

    def add_entity(self, name: str, entity_type: str, aliases: Sequence[str] | None = None) -> int:
        """Register an entity (or add aliases to an existing one); returns its id."""
        check_name("entity name", name)
        check_name("entity type", entity_type)
        new_aliases = [check_name("alias", a) for a in aliases or ()]
        with self.transaction():
            row = self.memory_ops.entity(name, by_alias=False)
            if row is None:
                entity_id = self.memory_ops.add_entity(name, entity_type, new_aliases, utcnow())
            else:
                entity_id = int(row["id"])
                if row["entity_type"] != entity_type:
                    raise EntityTypeConflict(name, row["entity_type"], entity_type)
                merged = list(dict.fromkeys([*row["aliases"], *new_aliases]))
                self.memory_ops.set_aliases(entity_id, merged)
            for alias in new_aliases:
                owner = self.memory_ops.alias_owner(alias)
                if owner is not None and owner != entity_id:
                    raise AliasTaken(alias)
                self.memory_ops.claim_alias(alias, entity_id)
        return entity_id

    def get_entity(self, name: str) -> Entity | None:
        """The entity with this name or alias, or None."""
        with self.reading():
            row = self.memory_ops.entity(name)
        return None if row is None else Entity(row)

    def find_entities(
        self, query: str | None = None, entity_type: str | None = None, limit: int = 20
    ) -> list[Entity]:
        """Entities whose name or an alias contains `query` (any case), of `entity_type`
        if given; by name."""
        with self.reading():
            rows = self.memory_ops.find_entities(query, entity_type, limit)
        return [Entity(row) for row in rows]

    def relate(self, from_entity: str, to_entity: str, rel_type: str) -> int:
        """Record a typed relation between two entities; returns its id."""
        row = (
            check_name("from_entity", from_entity),
            check_name("to_entity", to_entity),
            check_name("rel_type", rel_type),
            utcnow(),
        )
        with self.transaction():
            tasks = []
            if rel_type in TASK_RELATIONS:  # a task relation touching a task would block it
                tasks = self.memory_ops.of_type([from_entity, to_entity], TASK_TYPE)
            if tasks:
                which = " and ".join(tasks) + (" are tasks" if len(tasks) > 1 else " is a task")
                raise DependencyError(
                    f"{which}: their {rel_type} relations change only through the task"
                    " commands (add --after, depend, undepend)"
                )
            return self.memory_ops.relate(*row)

    def get_related(
        self, entity: str, rel_type: str | None = None, direction: str = "both"
    ) -> list[dict[str, Any]]:
        """Relations touching `entity` (a name or an alias), oldest first: each with
        `entity` (the other end), `rel_type`, `direction` ("out" or "in"), `id`,
        `created_at`, and `from_entity`/`to_entity` as stored."""
        if direction not in RELATION_SIDES:
            raise ValueError("direction must be 'out', 'in' or 'both'")
        with self.reading():
            found = self.get_entity(entity)
            names = {entity} if found is None else {entity, found.name}
            rows = self.memory_ops.relations(sorted(names), direction, rel_type)
        related = []
        for row in rows:
            out = row["from_entity"] in names and direction != "in"
            related.append(
                {
                    "id": row["id"],
                    "entity": row["to_entity"] if out else row["from_entity"],
                    "rel_type": row["rel_type"],
                    "direction": "out" if out else "in",
                    "from_entity": row["from_entity"],
                    "to_entity": row["to_entity"],
                    "created_at": row["created_at"],
                }
            )
        return related

    get_relations = get_related  # the 0.1 name
