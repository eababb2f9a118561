"""Dependency counts on SQLite: per task, `deps` (how many dependencies) and `open_deps`
(how many are not in a done state), kept right by triggers on `relations` and
`task_current` in the same transaction as any change that moves them, plain-SQL writers
included; the claim index covers ready rows only.

The recount is written once here: the triggers, the done-states change and the count
check all use it (PostgreSQL's is engines/postgres/dependencies.py).
"""

from __future__ import annotations

from ..task_schema import DEPENDS_ON

REL_TYPE = DEPENDS_ON

_OWN = f"r.from_entity = task_current.id AND r.rel_type = '{REL_TYPE}'"
# 1 or 0 (a CASE, not SQLite's boolean-as-integer).
_IS_DONE = "CASE WHEN {status} IN (SELECT state FROM task_done_states) THEN 1 ELSE 0 END"
# The right values of both columns for the task_current row in scope.
RIGHT_DEPS = f"(SELECT count(DISTINCT r.to_entity) FROM relations r WHERE {_OWN})"
RIGHT_OPEN = (
    "(SELECT count(DISTINCT r.to_entity) FROM relations r"
    " LEFT JOIN task_current d ON d.id = r.to_entity"
    f" WHERE {_OWN} AND {_IS_DONE.format(status='d.status')} = 0)"
)
# Recount both columns of the rows matched by a WHERE clause, from scratch: whatever
# order rows and relations arrive in (import, replace, other tools), the count is right.
RECOUNT = f"UPDATE task_current SET deps = {RIGHT_DEPS}, open_deps = {RIGHT_OPEN} WHERE {{where}};"
# Every task whose stored counts differ from a recount (a check for tests and doctors).
COUNT_ERRORS = (
    "SELECT id, deps, open_deps, right_deps, right_open FROM ("
    f" SELECT id, deps, open_deps, {RIGHT_DEPS} AS right_deps, {RIGHT_OPEN} AS right_open"
    " FROM task_current) AS counts WHERE deps != right_deps OR open_deps != right_open"
)
RECOUNT_COUNTED = RECOUNT.format(where="deps > 0 OR open_deps > 0")

_DEPENDENTS = (
    "id IN (SELECT from_entity FROM relations WHERE to_entity = {ref}.id"
    f" AND rel_type = '{REL_TYPE}')"
)
_HAS_DEPS = f"id IN (SELECT from_entity FROM relations WHERE rel_type = '{REL_TYPE}')"

# TASK_MIGRATIONS entry: the counts, the done states they count against, the triggers,
# the ready-only claim index, and a backfill (a 0.1 file has no dependencies, but
# another tool may have written depends_on relations with plain SQL).
MIGRATION = f"""
    CREATE TABLE IF NOT EXISTS task_done_states (state TEXT PRIMARY KEY) WITHOUT ROWID;
    INSERT OR IGNORE INTO task_done_states (state) VALUES ('completed');
    ALTER TABLE task_current ADD COLUMN deps INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE task_current ADD COLUMN open_deps INTEGER NOT NULL DEFAULT 0;
    -- The claim index covers ready rows only: a blocked task is not in it at all.
    DROP INDEX IF EXISTS task_current_queue;
    CREATE INDEX IF NOT EXISTS task_current_queue ON task_current (priority DESC, seq)
    WHERE status = 'pending' AND open_deps = 0;
    CREATE TRIGGER IF NOT EXISTS task_deps_added AFTER INSERT ON relations
    WHEN new.rel_type = '{REL_TYPE}' BEGIN
        {RECOUNT.format(where="id = new.from_entity")}
    END;
    CREATE TRIGGER IF NOT EXISTS task_deps_removed AFTER DELETE ON relations
    WHEN old.rel_type = '{REL_TYPE}' BEGIN
        {RECOUNT.format(where="id = old.from_entity")}
    END;
    CREATE TRIGGER IF NOT EXISTS task_deps_changed AFTER UPDATE ON relations
    WHEN old.rel_type = '{REL_TYPE}' OR new.rel_type = '{REL_TYPE}' BEGIN
        {RECOUNT.format(where="id IN (old.from_entity, new.from_entity)")}
    END;
    CREATE TRIGGER IF NOT EXISTS task_deps_status AFTER UPDATE OF status ON task_current
    WHEN {_IS_DONE.format(status="old.status")} != {_IS_DONE.format(status="new.status")}
    BEGIN
        {RECOUNT.format(where=_DEPENDENTS.format(ref="new"))}
    END;
    CREATE TRIGGER IF NOT EXISTS task_deps_row_added AFTER INSERT ON task_current
    WHEN EXISTS (SELECT 1 FROM relations WHERE from_entity = new.id AND rel_type = '{REL_TYPE}')
      OR EXISTS (SELECT 1 FROM relations WHERE to_entity = new.id AND rel_type = '{REL_TYPE}')
    BEGIN
        {RECOUNT.format(where="id = new.id OR " + _DEPENDENTS.format(ref="new"))}
    END;
    CREATE TRIGGER IF NOT EXISTS task_deps_row_removed AFTER DELETE ON task_current
    WHEN EXISTS (SELECT 1 FROM relations WHERE to_entity = old.id AND rel_type = '{REL_TYPE}')
    BEGIN
        {RECOUNT.format(where=_DEPENDENTS.format(ref="old"))}
    END;
    {RECOUNT.format(where=_HAS_DEPS)}
"""
