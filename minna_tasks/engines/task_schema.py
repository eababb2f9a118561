"""The engine-free description of the task projection every engine builds.

The fields rule's tables (each field's kind and default, what a status row
implies), the entity type and relation of tasks, the projection's columns and
its claim queue. SQLite's DDL (engines/sqlite/projection.py) and PostgreSQL's
(engines/postgres/schema.py) are built from these constants, and store/fields.py
applies the same rule in Python, so it lives here, below store/ and memory/.

The rule: a field's stored value is SQLite's `CAST(value AS <its type>)` of its
newest triple (coalesced with its default); payload and result are JSON text read
back as JSON where they parse. A status row also implies fields (IMPLIED): a
claim's owner is the status row's actor, and a task entering pending, completed or
failed holds no owner, lease or claim token. A triple written after the status row
overrides what it implies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ..json_text import load_json
from ..states import TaskState
from .sqlite.cast import _sqlite_cast

# Tasks are Minna entities of this type. Entities whose facts are a log of their life
# (a task's status, owner, ...), not statements that could contradict each other:
# detect_conflicts leaves them out.
TASK_TYPE = "task"
ENTITY_TYPE = TASK_TYPE
# The relation (and log attribute) a task waits for another by; the task layer's one name.
DEPENDS_ON = "depends_on"

TEXT: Final = "TEXT"
INTEGER: Final = "INTEGER"
JSON: Final = "JSON"  # a TEXT column holding JSON, read back as the JSON value


def sql_text(value: str) -> str:
    """`value` as an SQL string literal (quotes doubled), for the few places where a
    machine's state must be part of the statement's text rather than a parameter."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Field:
    """One task field: its kind (TEXT, INTEGER or JSON) and its value when unset."""

    name: str
    kind: str
    default: int | str | None = None

    @property
    def column_type(self) -> str:
        return INTEGER if self.kind == INTEGER else TEXT

    @property
    def sql_default(self) -> str:
        """The default as an SQL literal."""
        if self.default is None:
            return "NULL"
        if isinstance(self.default, int):
            return str(self.default)
        return sql_text(self.default)

    def sql(self, expr: str) -> str:
        """The stored value of raw value `expr`, in SQL (the triggers and backfill)."""
        cast = f"CAST({expr} AS {self.column_type})"
        return cast if self.default is None else f"coalesce({cast}, {self.sql_default})"

    def stored(self, raw: Any) -> Any:
        """The stored value of a raw triple value: the Python twin of `sql`."""
        if raw is None:
            return self.default
        if self.kind == INTEGER:
            if type(raw) is int:
                return raw
        elif type(raw) is str:
            return raw
        return _sqlite_cast(raw, self.column_type)

    def value(self, stored: Any) -> Any:
        """The Task field value of a stored value."""
        return load_json(stored) if self.kind == JSON else stored


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("title", TEXT),
        Field("description", TEXT, ""),
        Field("status", TEXT),
        Field("priority", INTEGER, 0),
        Field("attempts", INTEGER, 0),
        Field("max_attempts", INTEGER, 3),
        Field("payload", JSON),
        Field("result", JSON),
        Field("error", TEXT),
        Field("owner", TEXT),
        Field("lease_expires_at", TEXT),
        # The claim's fencing token: the memory id of the status row that claimed the
        # task, while a worker holds it (see store/fencing.py).
        Field("claim_token", INTEGER),
    )
}

# What a status row implies, by its (stored) value: SOURCE means the row's source.
SOURCE: Final = "<source>"
_UNHELD: dict[str, str | None] = {"owner": None, "lease_expires_at": None, "claim_token": None}
IMPLIED: dict[str, dict[str, str | None]] = {
    "in_progress": {"owner": SOURCE},
    "pending": _UNHELD,
    "completed": _UNHELD,
    "failed": _UNHELD,
}

# attribute -> (column type in the projection, default for a task that lacks it), as SQL
TASK_ATTRIBUTES: dict[str, tuple[str, str]] = {
    name: (f.column_type, f.sql_default) for name, f in FIELDS.items()
}

# The claim index's columns, and the state it covers (the default machine's queue).
QUEUE_COLUMNS = ("status", "priority")
QUEUE_STATE = TaskState.PENDING.value

# A projection row's columns (SELECT_TASK adds the dependency count after them).
COLUMNS = ("id", *FIELDS, "created_at", "updated_at")
JSON_FIELDS = tuple(name for name, f in FIELDS.items() if f.kind == JSON)
