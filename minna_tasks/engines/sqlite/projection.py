"""The task projection on SQLite: `task_current`, one row of current values per task.

Kept by triggers on `memories`, so claims, lists and views never scan history
and stay right when another tool appends triples with plain SQL. The DDL is
built from the constant tables of engines/task_schema.py (the fields rule), never
from input; so are the statements that read and write the projection, in the SQL
subset SQLite and PostgreSQL share (engines/postgres/tasks.py runs them too).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from ..task_schema import (
    COLUMNS,
    ENTITY_TYPE,
    FIELDS,
    IMPLIED,
    QUEUE_COLUMNS,
    QUEUE_STATE,
    SOURCE,
    Field,
    sql_text,
)
from . import dependencies as dependency_ddl
from .machines import MACHINE_DDL

# Every trigger this module has ever made (a later migration drops and remakes them).
TRIGGERS = ("task_current_add", "task_current_remove", "task_current_fields") + tuple(
    f"task_current_{name}" for name in QUEUE_COLUMNS
)


def _implying(name: str) -> dict[str, str | None]:
    """Status value -> what it implies for field `name` (SOURCE or a constant)."""
    return {status: found[name] for status, found in IMPLIED.items() if name in found}


def _status_case(name: str) -> str:
    """SQL for the status trigger: the stored value of field `name` after the new row."""
    field = FIELDS[name]
    whens = " ".join(
        f"WHEN '{status}' THEN {field.sql('new.source' if given == SOURCE else 'NULL')}"
        for status, given in _implying(name).items()
    )
    return f"CASE CAST(new.value AS TEXT) {whens} ELSE {name} END"


def _latest(field: Field, entity: str, until: str = "") -> str:
    """SQL: the stored value of `field` from the entity's triples (the backfill's replay),
    of those written by `until` when given."""
    implying = _implying(field.name)
    until = f" AND m.created_at <= {until}" if until else ""
    if not implying:
        raw = (
            f"(SELECT value FROM memories m WHERE m.entity = {entity}"
            f" AND m.attribute = '{field.name}'{until} ORDER BY m.id DESC LIMIT 1)"
        )
        return field.sql(raw)
    statuses = ", ".join(f"'{s}'" for s in implying)
    case = (
        "CASE CAST(m.value AS TEXT) "
        + " ".join(
            f"WHEN '{status}' THEN {'m.source' if given == SOURCE else 'NULL'}"
            for status, given in implying.items()
        )
        + " END"
    )
    raw = (
        f"(SELECT CASE WHEN m.attribute = '{field.name}' THEN m.value ELSE {case} END"
        f" FROM memories m WHERE m.entity = {entity} AND (m.attribute = '{field.name}'"
        f" OR (m.attribute = 'status' AND CAST(m.value AS TEXT) IN ({statuses}))){until}"
        " ORDER BY m.id DESC LIMIT 1)"
    )
    return field.sql(raw)


def _as_of_sql() -> str:
    """The Datasette canned query `tasks_as_of`: every task as it stood at `:when`."""
    when = "(strftime('%Y-%m-%dT%H:%M:%f', :when) || '000+00:00')"
    columns: tuple[str, ...] = ("title", "status", "priority", "attempts", "max_attempts")
    columns += ("owner", "lease_expires_at", "error")
    selected = ",\n  ".join(
        f"{_latest(FIELDS[name], 'e.name', when)} AS {name}" for name in columns
    )
    nulls = ", ".join(f"NULL AS {name}" for name in columns)
    return (
        f"SELECT * FROM (\nSELECT\n  e.name AS id,\n  {selected}\nFROM entities e\n"
        f"WHERE e.entity_type = '{ENTITY_TYPE}'\nORDER BY e.id\n) WHERE status IS NOT NULL\n"
        "UNION ALL\nSELECT 'cannot read ' || quote(:when) || ' as a time: give e.g."
        f" 2026-01-31 12:00, 2026-01-31T12:00:00+02:00 or now' AS id, {nulls}\n"
        "WHERE strftime('%Y-%m-%dT%H:%M:%f', :when) IS NULL"
    )


def _table_ddl() -> str:
    columns = ",\n".join(
        f"        {name} {f.column_type}"
        + (" NOT NULL" if f.column_type == "INTEGER" and f.default is not None else "")
        + f" DEFAULT {f.sql_default}"
        for name, f in FIELDS.items()
    )
    return f"""
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
"""


def _rules_ddl() -> str:
    """The triggers that keep task_current by the fields rule (task_schema.py), and a backfill.

    Built from the constant FIELDS and IMPLIED, never from input.
    """
    listed = ", ".join(f"'{name}'" for name in FIELDS)
    latest_at = (
        "(SELECT created_at FROM memories m WHERE m.entity = {e}"
        f" AND m.attribute IN ({listed}) ORDER BY m.id DESC LIMIT 1)"
    )
    names = ", ".join(FIELDS)
    replayed = ", ".join(_latest(f, "new.name") for f in FIELDS.values())
    parts = [
        f"""
    -- A task whose triples came first (another tool's plain SQL) is replayed from them.
    CREATE TRIGGER IF NOT EXISTS task_current_add AFTER INSERT ON entities
    WHEN new.entity_type = '{ENTITY_TYPE}' BEGIN
        INSERT INTO task_current (id, {names}, created_at, updated_at)
        SELECT new.name, {replayed}, new.created_at,
            coalesce({latest_at.format(e="new.name")}, new.created_at)
        WHERE NOT EXISTS (SELECT 1 FROM task_current WHERE id = new.name);
    END;
    CREATE TRIGGER IF NOT EXISTS task_current_remove AFTER DELETE ON entities
    WHEN old.entity_type = '{ENTITY_TYPE}' BEGIN
        DELETE FROM task_current WHERE id = old.name;
    END;
"""
    ]
    # Three triggers: status and priority (the claim index's columns) each update only
    # their columns; every other field shares one trigger, so an insert evaluates
    # three WHEN clauses, not eleven, and a title change never touches the claim index.
    status_sets = ",\n            ".join(
        f"{name} = {_status_case(name)}" for name in FIELDS if _implying(name)
    )
    parts.append(
        f"""
    CREATE TRIGGER IF NOT EXISTS task_current_status AFTER INSERT ON memories
    WHEN new.attribute = 'status' BEGIN
        UPDATE task_current SET status = {FIELDS["status"].sql("new.value")},
            {status_sets},
            updated_at = new.created_at
        WHERE id = new.entity;
    END;
    CREATE TRIGGER IF NOT EXISTS task_current_priority AFTER INSERT ON memories
    WHEN new.attribute = 'priority' BEGIN
        UPDATE task_current SET priority = {FIELDS["priority"].sql("new.value")},
            updated_at = new.created_at
        WHERE id = new.entity;
    END;
"""
    )
    parts.append(_fields_trigger(FIELDS))
    sets = ",\n        ".join(
        f"{f.name} = {_latest(f, 'task_current.id')}" for f in FIELDS.values()
    )
    parts.append(
        f"""
    INSERT OR IGNORE INTO task_current (id, created_at, updated_at)
    SELECT name, created_at, created_at FROM entities
    WHERE entity_type = '{ENTITY_TYPE}' ORDER BY id;
    UPDATE task_current SET
        {sets},
        updated_at = coalesce({latest_at.format(e="task_current.id")}, created_at);
"""
    )
    return "".join(parts)


def _fields_trigger(names: Iterable[str]) -> str:
    """The trigger that keeps every field of `names` but the claim index's columns."""
    others = [name for name in names if name not in QUEUE_COLUMNS]
    cases = ",\n            ".join(
        f"{name} = CASE WHEN new.attribute = '{name}'"
        f" THEN {FIELDS[name].sql('new.value')} ELSE {name} END"
        for name in others
    )
    return f"""
    CREATE TRIGGER IF NOT EXISTS task_current_fields AFTER INSERT ON memories
    WHEN new.attribute IN ({", ".join(f"'{name}'" for name in others)}) BEGIN
        UPDATE task_current SET
            {cases},
            updated_at = new.created_at
        WHERE id = new.entity;
    END;
"""


# Migration 3: the claim's fencing token, a nullable column (migration 4 remakes the
# triggers with it and replays it from any claim_token triples already written).
CLAIM_TOKEN_DDL = """
    ALTER TABLE task_current ADD COLUMN claim_token INTEGER DEFAULT NULL;
"""

# 1: the projection table, its claim index, triggers and backfill.
# 2: the state machine the file holds (machines.py; its rules are store/machines.py).
# 3: the claim token (see store/fencing.py).
# 4: dependency counts, their triggers and the ready-only claim index (dependencies.py).
# 5: one rule for the fields (task_schema.py): values cast as the column's type, a status
#    row implies owner, lease and claim token; the triggers are remade and every row
#    replayed.
TASK_MIGRATIONS: tuple[str, ...] = (
    _table_ddl() + _rules_ddl(),
    MACHINE_DDL,
    CLAIM_TOKEN_DDL,
    dependency_ddl.MIGRATION,
    "".join(f"DROP TRIGGER IF EXISTS {name};\n" for name in TRIGGERS) + _rules_ddl(),
)

AS_OF_SQL = _as_of_sql()
# After the task's columns, its dependency count (read by TaskStore, not by task_from_row).
SELECT_TASK = f"SELECT {', '.join(COLUMNS)}, deps FROM task_current"
INSERT_TASK_ROW = (
    f"INSERT INTO task_current ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
)
SELECT_BY_ID = SELECT_TASK + " WHERE id = ?"


def queue_where(state: str) -> str:
    """The claim index's WHERE for a machine whose queue (initial) state is `state`."""
    return f"status = {sql_text(state)} AND open_deps = 0"


@lru_cache(maxsize=16)
def queue_sql(initial: str) -> str:
    """The claim-order query of the ready tasks in state `initial`. The state is a literal,
    not a parameter: a planner uses the partial claim index (which covers the machine's
    queue state, see TaskOperations.index_queue) only when the query visibly implies
    the index's WHERE."""
    return f"{SELECT_TASK} WHERE {queue_where(initial)} ORDER BY priority DESC, seq"


QUEUE_SQL = queue_sql(QUEUE_STATE)
