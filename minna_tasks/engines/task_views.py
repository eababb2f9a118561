"""The task views (`tasks`, `task_transitions`, ...), defined once for every engine.

Each view reads the `task_current` projection (and the status log); the few
expressions the engines spell differently (a status value as text, seconds between
two timestamps, "overdue now") are named fields that each engine fills in with its own
spelling: SQLite's in minna_tasks/views.py, PostgreSQL's in engines/postgres/schema.py.
"""

from __future__ import annotations

from collections.abc import Mapping

# The fields every engine's spelling must give.
SPELLING_FIELDS = frozenset(
    {"status_text", "seconds_in_previous_state", "seconds_overdue", "lease_overdue"}
)

VIEW_TEMPLATES: dict[str, str] = {
    "tasks": """SELECT id, title, description, status, priority, attempts, max_attempts,
       owner, lease_expires_at, error, payload, result, created_at, updated_at, claim_token,
       open_deps AS blocked_by_count
FROM task_current ORDER BY seq""",
    "task_transitions": """SELECT
    m.id AS memory_id,
    m.entity AS task_id,
    lag({status_text}) OVER w AS from_state,
    {status_text} AS to_state,
    m.created_at AS at,
    m.source AS actor,
    m.context AS reason,
    {seconds_in_previous_state}
        AS seconds_in_previous_state
FROM memories m JOIN task_current t ON t.id = m.entity
WHERE m.attribute = 'status'
WINDOW w AS (PARTITION BY m.entity ORDER BY m.id)
ORDER BY m.id""",
    "task_status_counts": """SELECT status, count(*) AS count
FROM task_current GROUP BY status ORDER BY status""",
    "task_dependencies": """SELECT r.from_entity AS task_id, t.status AS task_status,
    r.to_entity AS depends_on, d.status AS depends_on_status, r.created_at AS since
FROM relations r
LEFT JOIN task_current t ON t.id = r.from_entity
LEFT JOIN task_current d ON d.id = r.to_entity
WHERE r.rel_type = 'depends_on'
ORDER BY r.id""",
    "task_expired_leases": """SELECT id, title, status, owner, lease_expires_at,
    {seconds_overdue} AS seconds_overdue
FROM task_current
WHERE lease_expires_at IS NOT NULL
  AND {lease_overdue}
ORDER BY lease_expires_at""",
}


def spelled(spelling: Mapping[str, str]) -> dict[str, str]:
    """Every view's SELECT in one engine's spelling, by view name."""
    if set(spelling) != SPELLING_FIELDS:
        raise ValueError(f"a view spelling gives exactly {', '.join(sorted(SPELLING_FIELDS))}")
    return {name: sql.format_map(spelling) for name, sql in VIEW_TEMPLATES.items()}
