"""Dependency counts on PostgreSQL: SQLite's dependency migration (engines/sqlite/dependencies.py)
in PL/pgSQL. Per task, `deps` (how many dependencies) and `open_deps` (how many are not
in a done state), kept right by triggers on `relations` and `task_current` in the same
transaction as any change that moves them, plain-SQL writers included; the claim index
covers ready rows only.
"""

from __future__ import annotations

from ..task_schema import DEPENDS_ON

REL_TYPE = DEPENDS_ON

# Recount both columns of the tasks listed in `ids` from scratch.
RECOUNT_UPDATE = f"""
        UPDATE task_current SET
            deps = (SELECT count(DISTINCT r.to_entity) FROM relations r
                    WHERE r.from_entity = task_current.id AND r.rel_type = '{REL_TYPE}'),
            open_deps = (SELECT count(DISTINCT r.to_entity) FROM relations r
                         LEFT JOIN task_current d ON d.id = r.to_entity
                         WHERE r.from_entity = task_current.id AND r.rel_type = '{REL_TYPE}'
                           AND NOT coalesce(d.status IN (SELECT state FROM task_done_states),
                                            false))
        WHERE id = ANY(ids)"""

MIGRATION = f"""
    CREATE TABLE IF NOT EXISTS task_done_states (state TEXT PRIMARY KEY);
    INSERT INTO task_done_states (state) VALUES ('completed') ON CONFLICT DO NOTHING;
    ALTER TABLE task_current ADD COLUMN IF NOT EXISTS deps BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE task_current ADD COLUMN IF NOT EXISTS open_deps BIGINT NOT NULL DEFAULT 0;
    DROP INDEX IF EXISTS task_current_queue;
    CREATE INDEX IF NOT EXISTS task_current_queue ON task_current (priority DESC, seq)
        WHERE status = 'pending' AND open_deps = 0;
    -- Recount both columns of these tasks from scratch: right whatever order rows and
    -- relations arrive in.
    CREATE OR REPLACE FUNCTION task_deps_recount(ids TEXT[]) RETURNS void
    LANGUAGE sql AS $$
{RECOUNT_UPDATE};
    $$;
    CREATE OR REPLACE FUNCTION task_deps_dependents(task TEXT) RETURNS TEXT[]
    LANGUAGE sql STABLE AS $$
        SELECT coalesce(array_agg(from_entity), '{{}}') FROM relations
        WHERE to_entity = task AND rel_type = '{REL_TYPE}';
    $$;
    CREATE OR REPLACE FUNCTION task_deps_relations() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.rel_type = '{REL_TYPE}' THEN
            PERFORM task_deps_recount(ARRAY[NEW.from_entity]);
        END IF;
        IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.rel_type = '{REL_TYPE}' THEN
            PERFORM task_deps_recount(ARRAY[OLD.from_entity]);
        END IF;
        RETURN NULL;
    END;
    $$;
    DROP TRIGGER IF EXISTS task_deps_relations ON relations;
    CREATE TRIGGER task_deps_relations AFTER INSERT OR UPDATE OR DELETE ON relations
        FOR EACH ROW EXECUTE FUNCTION task_deps_relations();
    CREATE OR REPLACE FUNCTION task_deps_rows() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        was_done BOOLEAN;
        is_done BOOLEAN;
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            was_done := coalesce(OLD.status IN (SELECT state FROM task_done_states), false);
            is_done := coalesce(NEW.status IN (SELECT state FROM task_done_states), false);
            IF was_done IS DISTINCT FROM is_done THEN
                PERFORM task_deps_recount(task_deps_dependents(NEW.id));
            END IF;
        ELSIF TG_OP = 'INSERT' THEN
            IF EXISTS (SELECT 1 FROM relations WHERE rel_type = '{REL_TYPE}'
                       AND (from_entity = NEW.id OR to_entity = NEW.id)) THEN
                PERFORM task_deps_recount(NEW.id || task_deps_dependents(NEW.id));
            END IF;
        ELSE
            PERFORM task_deps_recount(task_deps_dependents(OLD.id));
        END IF;
        RETURN NULL;
    END;
    $$;
    DROP TRIGGER IF EXISTS task_deps_status ON task_current;
    CREATE TRIGGER task_deps_status AFTER UPDATE OF status ON task_current
        FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
        EXECUTE FUNCTION task_deps_rows();
    DROP TRIGGER IF EXISTS task_deps_rows ON task_current;
    CREATE TRIGGER task_deps_rows AFTER INSERT OR DELETE ON task_current
        FOR EACH ROW EXECUTE FUNCTION task_deps_rows();
    SELECT task_deps_recount(array_agg(DISTINCT from_entity)) FROM relations
    WHERE rel_type = '{REL_TYPE}';
"""

# Recount every task that counts any dependency (the done states changed).
RECOUNT_COUNTED = (
    "SELECT task_deps_recount(array_agg(id)) FROM task_current WHERE deps > 0 OR open_deps > 0"
)

# The dependents lookup and the counting in PL/pgSQL instead of SQL functions: a SQL
# function's statement is planned afresh at every call (the lookup ran at every status
# change into or out of a done state: ~0.09 ms of server time per task), PL/pgSQL keeps
# its plans for the session. Same statements, same results.
PLANS_KEPT = f"""
    CREATE OR REPLACE FUNCTION task_deps_dependents(task TEXT) RETURNS TEXT[]
    LANGUAGE plpgsql STABLE AS $$
    BEGIN
        RETURN (SELECT coalesce(array_agg(from_entity), '{{}}') FROM relations
                WHERE to_entity = task AND rel_type = '{REL_TYPE}');
    END;
    $$;
    CREATE OR REPLACE FUNCTION task_deps_recount_listed(ids TEXT[]) RETURNS void
    LANGUAGE plpgsql AS $$
    BEGIN
        {RECOUNT_UPDATE};
    END;
    $$;
"""
