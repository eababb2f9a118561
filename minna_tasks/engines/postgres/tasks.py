"""The task operations on PostgreSQL: SQLite's (engines/sqlite/tasks.py, written in the
subset both engines share and translated by the connection), with what differs here.

Rows about to change are locked (`FOR UPDATE`). A claim skips rows another claim holds
(`FOR UPDATE SKIP LOCKED`) and waits for a lock only when it skipped every ready row. The
dependency recount is the PL/pgSQL function of engines/postgres/dependencies.py.
"""

from __future__ import annotations

import builtins
from typing import Any

from ..sqlite.projection import sql_text
from ..sqlite.tasks import SqliteTasks
from .dependencies import RECOUNT_COUNTED
from .schema import COMPONENTS


class _Undo(Exception):
    """Rolls back count_errors' trial recount."""


class PostgresTasks(SqliteTasks):
    """`TaskOperations` on a PostgreSQL database."""

    def _lock(self) -> str:
        return self.db.for_update()

    def _skip_locked(self) -> str:
        return self.db.for_update(skip_locked=True)

    def next_claimable(self, initial: str) -> Any:
        row = super().next_claimable(initial)
        if row is None:
            # SKIP LOCKED also passes over a ready row locked by a move that will not take
            # it (a refused heartbeat, a dependency edit), and the queue would look empty.
            # Then wait for the first ready row's lock, as a claim on SQLite waits for the
            # writer: under READ COMMITTED the row is re-checked once the lock is granted,
            # so one that another claim took meanwhile is passed over.
            row = self._first_ready(initial, self._lock())
        return row

    def ensure_schema(self) -> None:
        self.db.ensure_component("tasks", COMPONENTS["tasks"])

    def ensure_views(self) -> None:
        """Nothing to do: PostgreSQL's views are made by its schema migrations."""

    def queue_indexed(self, initial: str) -> bool:
        row = self.db.connection.execute(
            "SELECT indexdef FROM pg_catalog.pg_indexes WHERE schemaname = current_schema()"
            " AND indexname = 'task_current_queue'"
        ).fetchone()
        # PostgreSQL shows the WHERE as it parsed it: ((status = 'x'::text) AND ...).
        return row is not None and f"(status = {sql_text(initial)}::text)" in str(row[0])

    def _recount_counted(self) -> None:
        self.db.connection.execute(RECOUNT_COUNTED)

    def count_errors(self) -> builtins.list[tuple[str, int, int, int, int]]:
        """Tasks whose stored counts differ from a recount, found by recounting every
        task with the one recount function and rolling the recount back."""
        found: builtins.list[tuple[str, int, int, int, int]] = []
        sql = "SELECT id, deps, open_deps FROM task_current ORDER BY seq"
        try:
            with self.db.transaction() as conn:
                before = {row[0]: (int(row[1]), int(row[2])) for row in conn.execute(sql)}
                conn.execute("SELECT task_deps_recount(array_agg(id)) FROM task_current")
                for task_id, deps, open_deps in conn.execute(sql):
                    stored = before[task_id]
                    if stored != (deps, open_deps):
                        found.append((task_id, *stored, int(deps), int(open_deps)))
                raise _Undo
        except _Undo:
            pass
        return found
