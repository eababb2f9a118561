"""The one rule from a task's triples to its current fields, in Python.

Every reader derives a task's fields from this rule: the projection's triggers
and backfill (their SQL is each engine's, built from the same tables,
engines/task_schema.py, where the rule is spelled out), `replayed_row`, `as_of`,
the values a write returns, and the JSON import's check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..engines.task_schema import FIELDS, IMPLIED, SOURCE

DEFAULTS: dict[str, Any] = {name: f.default for name, f in FIELDS.items()}


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
