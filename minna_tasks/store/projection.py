"""The task projection: `task_current`, one row of current values per task.

Kept by triggers on `memories`, so claims, lists and views never scan history
and stay right when another tool appends triples with plain SQL. The DDL is
built from the constant TASK_ATTRIBUTES below, never from input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..records import JSON_ATTRIBUTES, Task, as_integer, load_json
from ..states import TaskState
from . import dependencies
from .machines import MACHINE_DDL

ENTITY_TYPE = "task"

# attribute -> (column type in the projection, default for a task that lacks it)
TASK_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "title": ("TEXT", "NULL"),
    "description": ("TEXT", "''"),
    "status": ("TEXT", "NULL"),
    "priority": ("INTEGER", "0"),
    "attempts": ("INTEGER", "0"),
    "max_attempts": ("INTEGER", "3"),
    "payload": ("TEXT", "NULL"),
    "result": ("TEXT", "NULL"),
    "error": ("TEXT", "NULL"),
    "owner": ("TEXT", "NULL"),
    "lease_expires_at": ("TEXT", "NULL"),
}
# The fields of 0.1, which the first migration's DDL is built from (later ones add theirs).
BASE_ATTRIBUTES = dict(TASK_ATTRIBUTES)
# The claim's fencing token: the memory id of the status row that claimed the task, set
# while a worker holds it (see fencing.py). Added by migration 3.
TASK_ATTRIBUTES["claim_token"] = ("INTEGER", "NULL")


def default_value(name: str) -> Any:
    """The value of a field its task has no triple for (an int, a str or None)."""
    kind, default = TASK_ATTRIBUTES[name]
    if default == "NULL":
        return None
    return int(default) if kind == "INTEGER" else default.strip("'")


# The claim index's columns, and the state it covers (the default machine's queue).
QUEUE_COLUMNS = ("status", "priority")
QUEUE_STATE = TaskState.PENDING.value


def _column_value(attribute: str, expr: str) -> str:
    kind, default = TASK_ATTRIBUTES[attribute]
    if kind == "INTEGER":
        return f"coalesce(CAST({expr} AS INTEGER), {default})"
    return expr


def _projection_ddl(attributes: Mapping[str, tuple[str, str]] = BASE_ATTRIBUTES) -> str:
    """The task projection, its triggers and a backfill from any existing triples.

    Built from the constant attribute tables above, never from input.
    """
    columns = ",\n".join(
        f"        {name} {kind} NOT NULL DEFAULT {default}"
        if kind == "INTEGER"
        else f"        {name} {kind} DEFAULT {default}"
        for name, (kind, default) in attributes.items()
    )
    parts = [
        f"""
    CREATE TABLE IF NOT EXISTS task_current (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
{columns},
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    -- Claim order: highest priority first, then oldest (insertion order). Partial, so
    -- that moves between the other states never touch it (fewer pages per commit).
    CREATE INDEX IF NOT EXISTS task_current_queue ON task_current (priority DESC, seq)
    WHERE status = '{QUEUE_STATE}';
    CREATE TRIGGER IF NOT EXISTS task_current_add AFTER INSERT ON entities
    WHEN new.entity_type = '{ENTITY_TYPE}' BEGIN
        INSERT OR IGNORE INTO task_current (id, created_at, updated_at)
        VALUES (new.name, new.created_at, new.created_at);
    END;
    CREATE TRIGGER IF NOT EXISTS task_current_remove AFTER DELETE ON entities
    WHEN old.entity_type = '{ENTITY_TYPE}' BEGIN
        DELETE FROM task_current WHERE id = old.name;
    END;
"""
    ]
    # Three triggers: status and priority (the claim index's columns) each update only
    # their own column; every other field shares one trigger, so an insert evaluates
    # three WHEN clauses, not eleven, and a title change never touches the claim index.
    for name in QUEUE_COLUMNS:
        parts.append(
            f"""
    CREATE TRIGGER IF NOT EXISTS task_current_{name} AFTER INSERT ON memories
    WHEN new.attribute = '{name}' BEGIN
        UPDATE task_current SET {name} = {_column_value(name, "new.value")},
            updated_at = new.created_at
        WHERE id = new.entity;
    END;
"""
        )
    parts.append(_fields_trigger(attributes))
    sets = ",\n        ".join(f"{a} = {_latest(a)}" for a in attributes)
    parts.append(
        f"""
    INSERT OR IGNORE INTO task_current (id, created_at, updated_at)
    SELECT name, created_at, created_at FROM entities
    WHERE entity_type = '{ENTITY_TYPE}' ORDER BY id;
    UPDATE task_current SET
        {sets},
        updated_at = coalesce((SELECT max(created_at) FROM memories m
                               WHERE m.entity = task_current.id), created_at);
"""
    )
    return "".join(parts)


def _fields_trigger(attributes: Mapping[str, tuple[str, str]]) -> str:
    """The trigger that keeps every field but the claim index's columns."""
    others = [name for name in attributes if name not in QUEUE_COLUMNS]
    cases = ",\n            ".join(
        f"{name} = CASE WHEN new.attribute = '{name}'"
        f" THEN {_column_value(name, 'new.value')} ELSE {name} END"
        for name in others
    )
    listed = ", ".join(f"'{name}'" for name in others)
    return f"""
    CREATE TRIGGER IF NOT EXISTS task_current_fields AFTER INSERT ON memories
    WHEN new.attribute IN ({listed}) BEGIN
        UPDATE task_current SET
            {cases},
            updated_at = new.created_at
        WHERE id = new.entity;
    END;
"""


def _latest(a: str) -> str:
    """The backfill's value of field `a`: its newest triple, as the triggers store it."""
    k, d = TASK_ATTRIBUTES[a]
    latest = (
        "(SELECT value FROM memories m WHERE m.entity = task_current.id"
        f" AND m.attribute = '{a}' ORDER BY m.id DESC LIMIT 1)"
    )
    if k == "INTEGER":
        return f"coalesce(CAST({latest} AS INTEGER), {d})"
    return latest if d == "NULL" else f"coalesce({latest}, {d})"


# Migration 3: the claim's fencing token, a nullable column kept by the fields trigger
# (rebuilt with it) and backfilled from any claim_token triples already written.
CLAIM_TOKEN_DDL = f"""
    ALTER TABLE task_current ADD COLUMN claim_token INTEGER DEFAULT NULL;
    DROP TRIGGER IF EXISTS task_current_fields;
    {_fields_trigger(TASK_ATTRIBUTES)}
    UPDATE task_current SET claim_token = {_latest("claim_token")};
"""

# 2: the state machine the file holds (see machines.py). 3: the claim token.
# 4: dependency counts, their triggers and the ready-only claim index (dependencies.py).
TASK_MIGRATIONS: tuple[str, ...] = (
    _projection_ddl(),
    MACHINE_DDL,
    CLAIM_TOKEN_DDL,
    dependencies.MIGRATION,
)

COLUMNS = ("id", *TASK_ATTRIBUTES, "created_at", "updated_at")
# After the task's columns, its dependency count (read by TaskStore, not by task_from_row).
SELECT_TASK = f"SELECT {', '.join(COLUMNS)}, {dependencies.COUNT_COLUMN} FROM task_current"
INSERT_TASK_ROW = (
    f"INSERT INTO task_current ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
)
QUEUE_SQL = (
    SELECT_TASK + f" WHERE status = '{QUEUE_STATE}'{dependencies.READY} ORDER BY priority DESC, seq"
)


def row_values(task: Task, payload_json: str | None) -> tuple[Any, ...]:
    """A new task's projection row, in COLUMNS order."""
    return tuple(payload_json if name == "payload" else getattr(task, name) for name in COLUMNS)


def replayed_row(
    task_id: str, created_at: str, facts: Iterable[Mapping[str, Any]]
) -> tuple[Any, ...]:
    """The projection row the triggers would build from these facts, in COLUMNS order."""
    values: dict[str, Any] = {"id": task_id, "created_at": created_at, "updated_at": created_at}
    for name in TASK_ATTRIBUTES:
        values[name] = default_value(name)
    for fact in facts:
        name = fact["attribute"]
        if name in TASK_ATTRIBUTES:
            value = fact["value"]
            if TASK_ATTRIBUTES[name][0] == "INTEGER":
                value = as_integer(value, default_value(name))
            values[name] = value
            values["updated_at"] = fact["created_at"]
    return tuple(values[name] for name in COLUMNS)


def task_from_row(row: Sequence[Any]) -> Task:
    """A Task from a projection row selected with SELECT_TASK."""
    values = dict(zip(COLUMNS, row[: len(COLUMNS)], strict=True))
    for name in JSON_ATTRIBUTES:
        values[name] = load_json(values[name])
    if values["description"] is None:
        values["description"] = ""
    return Task(**values)
