"""The records MinnaMemory returns: `Memory`, `Entity`, `SessionSummary`.

The documented examples read them both ways, `memories[0]["value"]` (the concept
page) and `m.value` (lab 12). Each record is a read-only `dict` with attribute
access: it compares equal to the plain dict of its fields and `json.dumps`
serialises it as that dict, so the MCP server and the CLI print it unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, NoReturn, Self

from .values import Value


class Record(dict[str, Any]):
    """A read-only dict whose fields also read as attributes (`r.name == r["name"]`)."""

    FIELDS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, data: Mapping[str, Any] | Iterable[tuple[str, Any]] = (), **fields: Any):
        super().__init__(data, **fields)
        missing = [f for f in self.FIELDS if f not in self]
        if missing:
            raise TypeError(f"{type(self).__name__} is missing {', '.join(missing)}")

    @classmethod
    def trusted(cls, **fields: Any) -> Self:
        """A record from fields the store has just read, all present (no check)."""
        record = dict.__new__(cls)
        dict.__init__(record, fields)
        return record

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}") from None

    def _read_only(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(f"a {type(self).__name__} is read-only")

    __setattr__ = __delattr__ = __setitem__ = __delitem__ = _read_only
    clear = pop = popitem = setdefault = update = __ior__ = _read_only

    def __reduce__(self) -> tuple[type[Self], tuple[dict[str, Any]]]:
        # pickle and copy rebuild through __init__ (the default would call __setitem__).
        return type(self), (dict(self),)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"


class Memory(Record):
    """One remembered fact (a row of `memories`), with its decayed confidence."""

    FIELDS = (
        "id",
        "entity",
        "attribute",
        "value",
        "source",
        "confidence",
        "effective_confidence",
        "context",
        "created_at",
        "verified_at",
    )
    id: int
    entity: str
    attribute: str
    value: Value
    source: str | None
    confidence: float
    effective_confidence: float
    context: str | None
    created_at: str
    verified_at: str | None


class Entity(Record):
    """A named entity (person, project, concept, topic, preference, or a task)."""

    FIELDS = ("id", "name", "entity_type", "aliases", "created_at")
    id: int
    name: str
    entity_type: str
    aliases: list[str]
    created_at: str


class SessionSummary(Record):
    """A session's summary, kept for the next session's context."""

    FIELDS = ("id", "session_id", "summary", "topics", "entity_ids", "created_at")
    id: int
    session_id: str
    summary: str
    topics: list[str]
    entity_ids: list[int | str]
    created_at: str
