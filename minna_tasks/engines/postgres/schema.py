"""The PostgreSQL schema: the memory tables, the task projection and its PL/pgSQL
triggers (built from the same fields rule as SQLite's, engines/task_schema.py), full-text
search, and the NOTIFY that wakes waiting workers. All DDL is built from constants,
never input.

A memory's `value` is JSONB, so a number stored comes back a number and a text a text,
as on SQLite, whose columns keep each value's own type.
"""

from __future__ import annotations

from .. import task_views
from ..task_schema import (
    ENTITY_TYPE,
    FIELDS,
    IMPLIED,
    INTEGER,
    QUEUE_COLUMNS,
    QUEUE_STATE,
    SOURCE,
    TASK_ATTRIBUTES,
)
from . import dependencies

# The channel every committed memory write is announced on (waiting workers LISTEN).
CHANNEL = "minna_tasks"

# One advisory lock key (any constant bigint) for migrations: they run one at a time.
MIGRATION_LOCK = 0x6D696E6E61  # "minna"

# The text a memory is searched by: entity, attribute and the value as text.
SEARCH_TEXT = "(entity || ' ' || attribute || ' ' || coalesce(value #>> '{}', ''))"
SEARCH_VECTOR = f"to_tsvector('simple', {SEARCH_TEXT})"

# Numbered migrations of the memory core, as SQLite's MIGRATIONS; the version is kept
# in minna_schema (PostgreSQL has no user_version).
MIGRATIONS: tuple[str, ...] = (
    f"""
    CREATE TABLE IF NOT EXISTS memories (
        id BIGSERIAL PRIMARY KEY,
        entity TEXT NOT NULL,
        attribute TEXT NOT NULL,
        value JSONB,
        source TEXT,
        confidence DOUBLE PRECISION NOT NULL DEFAULT 1.0,
        context TEXT,
        created_at TEXT NOT NULL,
        verified_at TEXT
    );
    CREATE INDEX IF NOT EXISTS memories_entity_attribute ON memories (entity, attribute, id);
    CREATE INDEX IF NOT EXISTS memories_search ON memories USING GIN ({SEARCH_VECTOR});
    CREATE TABLE IF NOT EXISTS entities (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        entity_type TEXT NOT NULL,
        aliases TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS entity_aliases (
        alias TEXT PRIMARY KEY,
        entity_id BIGINT NOT NULL REFERENCES entities (id) ON DELETE CASCADE
    );
    CREATE TABLE IF NOT EXISTS relations (
        id BIGSERIAL PRIMARY KEY,
        from_entity TEXT NOT NULL,
        to_entity TEXT NOT NULL,
        rel_type TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS relations_from ON relations (from_entity, rel_type);
    CREATE INDEX IF NOT EXISTS relations_to ON relations (to_entity, rel_type);
    CREATE TABLE IF NOT EXISTS sessions (
        id BIGSERIAL PRIMARY KEY,
        session_id TEXT NOT NULL,
        summary TEXT NOT NULL,
        topics TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS preferences (
        key TEXT PRIMARY KEY,
        value JSONB,
        category TEXT NOT NULL DEFAULT 'general',
        updated_at TEXT NOT NULL
    );
    """,
    # As SQLite's second: preferences keyed by (category, key); sessions gain entity_ids.
    """
    ALTER TABLE preferences DROP CONSTRAINT IF EXISTS preferences_pkey;
    ALTER TABLE preferences ADD PRIMARY KEY (category, key);
    ALTER TABLE sessions ADD COLUMN IF NOT EXISTS entity_ids TEXT NOT NULL DEFAULT '[]';
    """,
    # The change feed's order (engines/postgres/changes.py): each memory records the
    # transaction that wrote it, since BIGSERIAL ids are drawn at insert time, not at
    # commit, so id order is not commit order under concurrent writers. Rows from before
    # this step keep 0 (all committed long ago: they come first, in id order).
    """
    ALTER TABLE memories ADD COLUMN IF NOT EXISTS txid xid8 NOT NULL DEFAULT '0';
    ALTER TABLE memories ALTER COLUMN txid SET DEFAULT pg_current_xact_id();
    CREATE INDEX IF NOT EXISTS memories_feed ON memories (txid, id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

# Created before any migration (the version table itself).
BOOTSTRAP = """
    CREATE TABLE IF NOT EXISTS schema_components (
        name TEXT PRIMARY KEY,
        version INTEGER NOT NULL
    )
"""

# SQLite's coalesce(CAST(value AS INTEGER), default) for a JSONB value (records.as_integer).
AS_INTEGER = """
    CREATE OR REPLACE FUNCTION minna_as_integer(v JSONB, fallback BIGINT) RETURNS BIGINT
    LANGUAGE plpgsql IMMUTABLE AS $$
    DECLARE
        digits TEXT;
    BEGIN
        IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
            RETURN fallback;
        ELSIF jsonb_typeof(v) = 'number' THEN
            RETURN trunc((v #>> '{}')::numeric)::bigint;
        END IF;
        digits := substring(v #>> '{}' FROM '^\\s*[+-]?[0-9]+');
        IF digits IS NULL THEN
            RETURN 0;
        END IF;
        RETURN btrim(digits)::bigint;
    EXCEPTION WHEN numeric_value_out_of_range THEN
        RETURN 0;
    END;
    $$
"""


def _pg_type(kind: str) -> str:
    return "BIGINT" if kind == "INTEGER" else "TEXT"


def _column_value(name: str, expr: str) -> str:
    """The stored value of field `name` from a JSONB raw value (the fields rule of
    task_schema.py: SQLite's CAST to the column's type, coalesced with the field's default)."""
    field = FIELDS[name]
    default = field.sql_default
    if field.kind == INTEGER:
        return f"minna_as_integer({expr}, {default})"
    text = f"({expr} #>> '{{}}')"
    return text if field.default is None else f"coalesce({text}, {default})"


def _implied_value(name: str, given: str | None, source: str) -> str:
    """What a status row implies for field `name`: its source (a text) or a constant."""
    return _column_value(name, f"to_jsonb({source})" if given == SOURCE else "NULL::jsonb")


def _status_sets(value: str, source: str) -> str:
    """The SET items a status row adds for the fields its status implies (IMPLIED)."""
    names = list(dict.fromkeys(n for found in IMPLIED.values() for n in found))
    out = []
    for name in names:
        whens = " ".join(
            f"WHEN '{status}' THEN {_implied_value(name, found[name], source)}"
            for status, found in IMPLIED.items()
            if name in found
        )
        out.append(f"{name} = CASE {value} {whens} ELSE {name} END")
    return ", ".join(out)


def _latest(name: str, entity: str) -> str:
    """The backfill's stored value of field `name`: its newest triple, or the newest
    status row that implies it, whichever came last (fields.replay's rule)."""
    implying = {s: found[name] for s, found in IMPLIED.items() if name in found}
    if not implying:
        raw = (
            f"(SELECT value FROM memories m WHERE m.entity = {entity}"
            f" AND m.attribute = '{name}' ORDER BY m.id DESC LIMIT 1)"
        )
        return _column_value(name, raw)
    statuses = ", ".join(f"'{s}'" for s in implying)
    case = " ".join(
        f"WHEN '{s}' THEN {'to_jsonb(m.source)' if g == SOURCE else 'NULL::jsonb'}"
        for s, g in implying.items()
    )
    raw = (
        f"(SELECT CASE WHEN m.attribute = '{name}' THEN m.value"
        f" ELSE CASE m.value #>> '{{}}' {case} END END"
        f" FROM memories m WHERE m.entity = {entity} AND (m.attribute = '{name}'"
        f" OR (m.attribute = 'status' AND m.value #>> '{{}}' IN ({statuses})))"
        " ORDER BY m.id DESC LIMIT 1)"
    )
    return _column_value(name, raw)


def _projection_ddl() -> str:
    """task_current, its triggers and a backfill, from the fields rule (task_schema.py), as
    SQLite's."""
    columns = ",\n".join(
        f"        {name} {_pg_type(kind)} NOT NULL DEFAULT {default}"
        if kind == "INTEGER" and default != "NULL"
        else f"        {name} {_pg_type(kind)} DEFAULT {default}"
        for name, (kind, default) in TASK_ATTRIBUTES.items()
    )
    implied = _status_sets(_column_value("status", "NEW.value"), "NEW.source")
    cases = "\n".join(
        f"""        WHEN '{name}' THEN
            UPDATE task_current SET {name} = {_column_value(name, "NEW.value")},
                {implied + "," if name == "status" else ""}
                updated_at = NEW.created_at
            WHERE id = NEW.entity;"""
        for name in TASK_ATTRIBUTES
    )
    listed = ", ".join(f"'{name}'" for name in TASK_ATTRIBUTES)
    sets = ",\n        ".join(f"{a} = {_latest(a, 'task_current.id')}" for a in TASK_ATTRIBUTES)
    queue_columns = ", ".join(QUEUE_COLUMNS)
    return f"""
    CREATE TABLE IF NOT EXISTS task_current (
        seq BIGSERIAL PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
{columns},
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    -- Claim order: highest priority first, then oldest; partial on the queue state.
    CREATE INDEX IF NOT EXISTS task_current_queue ON task_current (priority DESC, seq)
        WHERE status = '{QUEUE_STATE}';
    CREATE INDEX IF NOT EXISTS task_current_status ON task_current ({queue_columns});
    {AS_INTEGER};
    CREATE OR REPLACE FUNCTION task_current_entity() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            -- Look first: an insert that conflicts would still draw a seq number.
            IF NOT EXISTS (SELECT 1 FROM task_current WHERE id = NEW.name) THEN
                INSERT INTO task_current (id, created_at, updated_at)
                VALUES (NEW.name, NEW.created_at, NEW.created_at) ON CONFLICT (id) DO NOTHING;
            END IF;
            RETURN NEW;
        END IF;
        DELETE FROM task_current WHERE id = OLD.name;
        RETURN OLD;
    END;
    $$;
    DROP TRIGGER IF EXISTS task_current_add ON entities;
    CREATE TRIGGER task_current_add AFTER INSERT ON entities
        FOR EACH ROW WHEN (NEW.entity_type = '{ENTITY_TYPE}')
        EXECUTE FUNCTION task_current_entity();
    DROP TRIGGER IF EXISTS task_current_remove ON entities;
    CREATE TRIGGER task_current_remove AFTER DELETE ON entities
        FOR EACH ROW WHEN (OLD.entity_type = '{ENTITY_TYPE}')
        EXECUTE FUNCTION task_current_entity();
    -- One trigger for every field: a CASE on the attribute updates its one column.
    CREATE OR REPLACE FUNCTION task_current_fields() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        CASE NEW.attribute
{cases}
        END CASE;
        RETURN NULL;
    END;
    $$;
    -- Every statement that appends memories is announced on '{CHANNEL}' (delivered at
    -- commit, one per transaction: PostgreSQL folds equal notifications), so waiting
    -- workers, watchers and MCP subscribers wake on any change from any host.
    CREATE OR REPLACE FUNCTION minna_announce() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
        RETURN NULL;
    END;
    $$;
    DROP TRIGGER IF EXISTS minna_announce ON memories;
    CREATE TRIGGER minna_announce AFTER INSERT OR UPDATE OR DELETE ON memories
        FOR EACH STATEMENT EXECUTE FUNCTION minna_announce();
    DROP TRIGGER IF EXISTS task_current_fields ON memories;
    CREATE TRIGGER task_current_fields AFTER INSERT ON memories
        FOR EACH ROW WHEN (NEW.attribute IN ({listed}))
        EXECUTE FUNCTION task_current_fields();
    INSERT INTO task_current (id, created_at, updated_at)
    SELECT name, created_at, created_at FROM entities
    WHERE entity_type = '{ENTITY_TYPE}' ORDER BY id ON CONFLICT (id) DO NOTHING;
    UPDATE task_current SET
        {sets},
        updated_at = coalesce((SELECT max(created_at) FROM memories m
                               WHERE m.entity = task_current.id), created_at);
    """


MACHINE_DDL = """
    CREATE TABLE IF NOT EXISTS task_machines (
        id BIGSERIAL PRIMARY KEY,
        definition TEXT NOT NULL,
        actor TEXT,
        note TEXT,
        created_at TEXT NOT NULL
    );
"""

# The views SQLite gets from sqlite-utils, for psql and pandas (same names and columns):
# the one definition (engines/task_views.py) in PostgreSQL's spelling.
POSTGRES_SPELLING = {
    "status_text": "m.value #>> '{}'",
    "seconds_in_previous_state": (
        "round(extract(epoch FROM (m.created_at::timestamptz"
        " - (lag(m.created_at) OVER w)::timestamptz))::numeric, 3)::double precision"
    ),
    "seconds_overdue": (
        "round(extract(epoch FROM (now() - lease_expires_at::timestamptz))::numeric, 3)"
        "::double precision"
    ),
    "lease_overdue": "lease_expires_at::timestamptz < now()",
}
VIEWS_DDL = "".join(
    f"\nCREATE OR REPLACE VIEW {name} AS {sql};\n"
    for name, sql in task_views.spelled(POSTGRES_SPELLING).items()
)

# The claim's fencing token (store/fencing.py): the projection above already has the
# column, as every field of TASK_ATTRIBUTES; this step numbers like SQLite's.
CLAIM_TOKEN_DDL = """
    ALTER TABLE task_current ADD COLUMN IF NOT EXISTS claim_token BIGINT DEFAULT NULL;
"""

# The dependency recount skips an empty list at once: it runs at every status change
# into or out of a done state, nearly always for a task nobody depends on, and a SQL
# function's UPDATE is planned afresh at every call (~0.15 ms; PL/pgSQL caches its plans).
# The counting itself stays where it is defined (dependencies.py), renamed.
RECOUNT_SKIPS_NOTHING_DDL = """
    ALTER FUNCTION task_deps_recount(TEXT[]) RENAME TO task_deps_recount_listed;
    CREATE FUNCTION task_deps_recount(ids TEXT[]) RETURNS void
    LANGUAGE plpgsql AS $$
    BEGIN
        IF cardinality(ids) > 0 THEN
            PERFORM task_deps_recount_listed(ids);
        END IF;
    END;
    $$;
"""

# Component migrations, by the name the store gives ensure_component, step for step as
# SQLite's TASK_MIGRATIONS: the projection, the machine table, the claim token, the
# dependency counts (with the views, which read all of them); then PostgreSQL's own.
COMPONENTS: dict[str, tuple[str, ...]] = {
    "tasks": (
        _projection_ddl(),
        MACHINE_DDL,
        CLAIM_TOKEN_DDL,
        dependencies.MIGRATION + VIEWS_DDL,
        RECOUNT_SKIPS_NOTHING_DDL,
        dependencies.PLANS_KEPT,
    ),
}
