"""The one rule from a task's triples to its current fields.

Every reader derives a task's fields from this table: the projection's triggers
and backfill (SQL generated here), `replayed_row`, `as_of`, the values a write
returns, and the JSON import's check. A field's stored value is SQLite's
`CAST(value AS <its type>)` of its newest triple (coalesced with its default);
payload and result are JSON text read back as JSON where they parse. A status
row also implies fields (IMPLIED): a claim's owner is the status row's actor,
and a task entering pending, completed or failed holds no owner, lease or
claim token. A triple written after the status row overrides what it implies.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..records import load_json

TEXT: Final = "TEXT"
INTEGER: Final = "INTEGER"
JSON: Final = "JSON"  # a TEXT column holding JSON, read back as the JSON value


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
        return "'" + self.default.replace("'", "''") + "'"

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
        # task, while a worker holds it (see fencing.py).
        Field("claim_token", INTEGER),
    )
}
DEFAULTS: dict[str, Any] = {name: f.default for name, f in FIELDS.items()}

# What a status row implies, by its (stored) value: SOURCE means the row's source.
SOURCE: Final = "<source>"
_UNHELD: dict[str, str | None] = {"owner": None, "lease_expires_at": None, "claim_token": None}
IMPLIED: dict[str, dict[str, str | None]] = {
    "in_progress": {"owner": SOURCE},
    "pending": _UNHELD,
    "completed": _UNHELD,
    "failed": _UNHELD,
}


_CONSTANT: dict[str, dict[str, Any]] = {
    s: {n: v for n, v in f.items() if v != SOURCE} for s, f in IMPLIED.items()
}
_SOURCED = {s: tuple(n for n, v in f.items() if v == SOURCE) for s, f in IMPLIED.items()}
_NOTHING: dict[str, Any] = {}


def implied(status: Any, source: str | None) -> Mapping[str, Any]:
    """The stored values a status row with this (stored) value and source implies."""
    sourced = _SOURCED.get(status)
    if not sourced:
        constant: Mapping[str, Any] = _CONSTANT.get(status, _NOTHING)
        return constant
    values = dict(_CONSTANT[status])
    for name in sourced:
        values[name] = FIELDS[name].stored(source)
    return values


def apply(stored: dict[str, Any], attribute: str, raw: Any, source: str | None) -> bool:
    """Apply one triple to `stored` (field -> stored value); False if it names no field."""
    field = FIELDS.get(attribute)
    if field is None:
        return False
    value = field.stored(raw)
    stored[attribute] = value
    if attribute == "status":
        stored.update(implied(value, source))
    return True


def replay(
    facts: Iterable[tuple[str, Any, str | None, str]],
) -> tuple[dict[str, Any], str | None]:
    """Stored values from (attribute, value, source, created_at) triples in log order,
    and the time of the newest one that set a field (None when none did)."""
    stored = dict(DEFAULTS)
    updated = None
    for attribute, raw, source, at in facts:
        if apply(stored, attribute, raw, source):
            updated = at
    return stored, updated


def replay_records(facts: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Any], str | None]:
    """`replay` for facts as export/import dicts (attribute, value, source, created_at)."""
    return replay((f["attribute"], f["value"], f.get("source"), f["created_at"]) for f in facts)


def values(stored: Mapping[str, Any]) -> dict[str, Any]:
    """Task field values from stored values (JSON fields decoded)."""
    return {name: field.value(stored[name]) for name, field in FIELDS.items()}


# -- SQLite's CAST, for the rare raw value of another type ----------------------

_cast_lock = threading.Lock()
_cast_conn: sqlite3.Connection | None = None


def _sqlite_cast(raw: Any, column_type: str) -> Any:
    """SQLite's own CAST, so Python and the triggers can never disagree on odd values
    ('2.5' as an integer, 1e300 as text): only values of another type come here."""
    global _cast_conn
    sql = "SELECT CAST(? AS INTEGER)" if column_type == INTEGER else "SELECT CAST(? AS TEXT)"
    with _cast_lock:
        if _cast_conn is None:
            _cast_conn = sqlite3.connect(":memory:", check_same_thread=False)
        return _cast_conn.execute(sql, (raw,)).fetchone()[0]
