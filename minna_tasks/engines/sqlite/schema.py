"""The Minna memory file's schema on SQLite: numbered migrations and the tables we own."""

from __future__ import annotations

import re
import sqlite3

from ..memories import ENTITY_COLUMNS, MEMORY_COLUMNS

# Numbered migrations: MIGRATIONS[n] takes the file from version n to n + 1.
# PRAGMA user_version records how many have run.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS memories (
        id INTEGER PRIMARY KEY,
        entity TEXT NOT NULL,
        attribute TEXT NOT NULL,
        value,
        source TEXT,
        confidence REAL NOT NULL DEFAULT 1.0,
        context TEXT,
        created_at TEXT NOT NULL,
        verified_at TEXT
    );
    -- The current value of (entity, attribute) is one index seek: no history scan.
    CREATE INDEX IF NOT EXISTS memories_entity_attribute
        ON memories (entity, attribute, id);
    CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5 (
        entity, attribute, value, content='memories', content_rowid='id'
    );
    CREATE TRIGGER IF NOT EXISTS memories_fts_insert AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts (rowid, entity, attribute, value)
        VALUES (new.id, new.entity, new.attribute, new.value);
    END;
    CREATE TRIGGER IF NOT EXISTS memories_fts_delete AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, entity, attribute, value)
        VALUES ('delete', old.id, old.entity, old.attribute, old.value);
    END;
    CREATE TABLE IF NOT EXISTS entities (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        entity_type TEXT NOT NULL,
        aliases TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS entity_aliases (
        alias TEXT PRIMARY KEY,
        entity_id INTEGER NOT NULL REFERENCES entities (id) ON DELETE CASCADE
    );
    CREATE TABLE IF NOT EXISTS relations (
        id INTEGER PRIMARY KEY,
        from_entity TEXT NOT NULL,
        to_entity TEXT NOT NULL,
        rel_type TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS relations_from ON relations (from_entity, rel_type);
    CREATE INDEX IF NOT EXISTS relations_to ON relations (to_entity, rel_type);
    CREATE TABLE IF NOT EXISTS sessions (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        summary TEXT NOT NULL,
        topics TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS preferences (
        key TEXT PRIMARY KEY,
        value,
        category TEXT NOT NULL DEFAULT 'general',
        updated_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS schema_components (
        name TEXT PRIMARY KEY,
        version INTEGER NOT NULL
    );
    """,
    # Preferences keyed by (category, key), as documented (0.1 keyed them by key alone,
    # so one key in two categories collided); every existing preference is kept. Session
    # summaries gain the documented `entity_ids` (a JSON list, '[]' for old rows).
    """
    CREATE TABLE preferences_by_category (
        category TEXT NOT NULL DEFAULT 'general',
        key TEXT NOT NULL,
        value,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (category, key)
    );
    INSERT INTO preferences_by_category (category, key, value, updated_at)
    SELECT category, key, value, updated_at FROM preferences;
    DROP TABLE preferences;
    ALTER TABLE preferences_by_category RENAME TO preferences;
    ALTER TABLE sessions ADD COLUMN entity_ids TEXT NOT NULL DEFAULT '[]';
    """,
    # Memory ids only grow and are never reused after a delete (AUTOINCREMENT), so
    # a memory id is a cursor a reader can resume from (TaskStore.changes). SQLite can
    # add AUTOINCREMENT only by rebuilding the table; ids, rows, the index are kept.
    # The copy goes through a temp table so that no RENAME trips over views that read
    # `memories`; the triggers other layers put on it come back (Database._migrate).
    """
    CREATE TEMP TABLE memories_rebuild AS
    SELECT id, entity, attribute, value, source, confidence, context, created_at, verified_at
    FROM main.memories;
    DROP TABLE main.memories;
    CREATE TABLE main.memories (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        entity TEXT NOT NULL,
        attribute TEXT NOT NULL,
        value,
        source TEXT,
        confidence REAL NOT NULL DEFAULT 1.0,
        context TEXT,
        created_at TEXT NOT NULL,
        verified_at TEXT
    );
    INSERT INTO main.memories
        (id, entity, attribute, value, source, confidence, context, created_at, verified_at)
    SELECT id, entity, attribute, value, source, confidence, context, created_at, verified_at
    FROM temp.memories_rebuild ORDER BY id;
    DROP TABLE temp.memories_rebuild;
    CREATE INDEX IF NOT EXISTS main.memories_entity_attribute
        ON memories (entity, attribute, id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

# The memory store's own component migrations (versions kept in schema_components).
# 1: the full-text index is filled in batches (see MinnaMemory._index_fts), not by a
# trigger per insert: that trigger wrote one FTS5 segment per commit, more than half
# the cost of a task transition. `indexed_upto` is the highest memory id already in
# the index; search() reads the rows above it from a temporary index.
FTS_MIGRATIONS: tuple[str, ...] = (
    """
    DROP TRIGGER IF EXISTS memories_fts_insert;
    DROP TRIGGER IF EXISTS memories_fts_delete;
    CREATE TABLE IF NOT EXISTS memories_fts_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        indexed_upto INTEGER NOT NULL
    );
    INSERT OR IGNORE INTO memories_fts_state (id, indexed_upto)
    SELECT 1, coalesce(max(id), 0) FROM memories;
    -- Only indexed rows are deleted from the index. Deleting the newest rows lowers the
    -- mark, because SQLite reuses the ids above the largest remaining one.
    CREATE TRIGGER IF NOT EXISTS memories_fts_delete AFTER DELETE ON memories
    WHEN old.id <= (SELECT indexed_upto FROM memories_fts_state WHERE id = 1) BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, entity, attribute, value)
        VALUES ('delete', old.id, old.entity, old.attribute, old.value);
        UPDATE memories_fts_state SET indexed_upto = (SELECT coalesce(max(id), 0) FROM memories)
        WHERE id = 1 AND indexed_upto > (SELECT coalesce(max(id), 0) FROM memories);
    END;
    """,
)

# Tables this module owns, with the columns it relies on. A file that has a table
# of the same name with other columns belongs to another tool: we refuse it.
OWN_TABLES: dict[str, set[str]] = {
    "memories": set(MEMORY_COLUMNS),
    "entities": set(ENTITY_COLUMNS),
    "relations": {"id", "from_entity", "to_entity", "rel_type", "created_at"},
    "sessions": {"id", "session_id", "summary", "topics", "created_at"},
    "preferences": {"key", "value", "category", "updated_at"},
}


def statements(script: str) -> list[str]:
    """Split a migration into statements (sqlite3.complete_statement knows triggers)."""
    out, buffer = [], ""
    for line in script.splitlines(keepends=True):
        if not buffer and line.strip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            out.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        out.append(buffer.strip())
    return out


_ADD_COLUMN = re.compile(r"ALTER\s+TABLE\s+(\w+)\s+ADD\s+COLUMN\s+(\w+)", re.IGNORECASE)


def run_migration(conn: sqlite3.Connection, script: str) -> None:
    """Run a migration's statements. `ALTER TABLE t ADD COLUMN c` is skipped when `t`
    has `c` already (PostgreSQL's IF NOT EXISTS), so every step can run again, as the
    CREATE ... IF NOT EXISTS statements can."""
    for statement in statements(script):
        added = _ADD_COLUMN.match(statement)
        if added:
            table, column = added.groups()
            present = {
                row[1] for row in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))
            }
            if column in present:
                continue
        conn.execute(statement)
