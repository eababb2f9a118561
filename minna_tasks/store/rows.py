"""A task's projection row and its Task, both ways: the engine-free half of the
projection (its SQL is each engine's: engines/sqlite/projection.py,
engines/postgres/schema.py; its columns engines/task_schema.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..engines.task_schema import COLUMNS, FIELDS, JSON_FIELDS
from ..records import Task, load_json
from .fields import replay_records


def row_values(task: Task, payload_json: str | None) -> tuple[Any, ...]:
    """A new task's projection row, in COLUMNS order."""
    return tuple(payload_json if name == "payload" else getattr(task, name) for name in COLUMNS)


def replayed_row(
    task_id: str, created_at: str, facts: Iterable[Mapping[str, Any]]
) -> tuple[Any, ...]:
    """The projection row the triggers would build from these facts, in COLUMNS order."""
    stored, updated = replay_records(facts)
    return row_from_stored(task_id, stored, created_at, updated or created_at)


def row_from_stored(
    task_id: str, stored: Mapping[str, Any], created_at: str, updated_at: str
) -> tuple[Any, ...]:
    """A projection row, in COLUMNS order, from stored field values."""
    return (task_id, *(stored[name] for name in FIELDS), created_at, updated_at)


def task_from_row(row: Sequence[Any]) -> Task:
    """A Task from a projection row selected with SELECT_TASK."""
    values = dict(zip(COLUMNS, row[: len(COLUMNS)], strict=True))
    for name in JSON_FIELDS:
        values[name] = load_json(values[name])
    if values["description"] is None:
        values["description"] = ""
    return make_task(values)


def make_task(values: dict[str, Any]) -> Task:
    """A Task from a complete dict of its fields, which it keeps as its own attributes.

    Skips the frozen dataclass's __init__ (one object.__setattr__ per field): the
    moves build two Tasks each, and this is a tenth of their Python time.
    """
    task = object.__new__(Task)
    object.__setattr__(task, "__dict__", values)
    return task
