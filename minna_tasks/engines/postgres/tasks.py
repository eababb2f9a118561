"""The task operations on PostgreSQL: SQLite's (engines/sqlite/tasks.py, written in the
subset both engines share and translated by the connection), with what differs here.

Rows about to change are locked (`FOR UPDATE`). A claim skips rows another claim holds
(`FOR UPDATE SKIP LOCKED`) and waits for a lock only when it skipped every ready row. The
dependency recount is the PL/pgSQL function of engines/postgres/dependencies.py.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from ..memories import ROW_COLUMNS
from ..sqlite.projection import SELECT_BY_ID, queue_sql
from ..sqlite.tasks import SqliteTasks
from ..task_schema import sql_text
from .dependencies import RECOUNT_COUNTED
from .memories import row_params, rows_values, token_insert
from .schema import COMPONENTS

if TYPE_CHECKING:
    from .database import PostgresDatabase


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

    claims_at_once = True

    def claim_next(self, initial: str, rows: Sequence[Any]) -> tuple[Any, int] | None:
        """The claim in one statement: no BEGIN and COMMIT of its own (3 round trips and
        statements less than BEGIN, the row's SELECT, the INSERT, COMMIT). Under READ
        COMMITTED, which the connection sets as its sessions' default (database.py)."""
        params = row_params(rows, entity=False)
        db = cast("PostgresDatabase", self.db)
        with db.one_statement() as conn:
            row = conn.execute(_claim_sql(initial, len(rows)), params).fetchone()
        if row is None:
            return None
        return row[:-1], int(row[-1])

    def peek(self, task_id: str) -> Any:
        """SELECT_TASK's row, then the row version's xmin (what append_if_unchanged
        compares: any change to the row, by anyone, makes a new version)."""
        db = cast("PostgresDatabase", self.db)
        with db.one_statement() as conn:
            return conn.execute(PEEK, (task_id,)).fetchone()

    def append_if_unchanged(self, row: Sequence[Any], rows: Sequence[Any]) -> bool:
        """A guarded move in one statement: its rows appended only if the task's row, locked
        FOR UPDATE within it, is still the version `row` was read from (under READ
        COMMITTED a row changed by another transaction meanwhile is checked as it now
        stands)."""
        params = [row[0], row[-1], *row_params(rows, entity=False)]
        db = cast("PostgresDatabase", self.db)
        with db.one_statement() as conn:
            return bool(conn.execute(_move_sql(len(rows)), params).fetchall())

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


@lru_cache(maxsize=16)
def _claim_sql(initial: str, count: int) -> str:
    """The next claimable row locked (SKIP LOCKED) and `count` memories rows appended for
    it in one statement: the first (its status) gets an id drawn before the others' (which
    follow in row order), the last holds that id. Returns the row and the id."""
    return (
        f"WITH claimed AS ({queue_sql(initial)} LIMIT 1 FOR UPDATE SKIP LOCKED),"
        " token AS MATERIALIZED (SELECT nextval('memories_id_seq') AS id FROM claimed),"
        f" written AS ({token_insert(count, count - 1, 'claimed.id', 'claimed, token')})"
        " SELECT claimed.*, token.id FROM claimed, token"
    )


# A task's row as peek reads it: SELECT_TASK's columns, then its version.
PEEK = SELECT_BY_ID.replace(" FROM task_current", ", xmin::text FROM task_current")


@lru_cache(maxsize=16)
def _move_sql(count: int) -> str:
    """`count` memories rows appended for a task only if its row (locked) is still the
    version read (PEEK); returns the new rows' ids (none: it changed)."""
    return (
        "WITH locked AS (SELECT id FROM task_current WHERE id = ? AND xmin::text = ?"
        " FOR UPDATE)"
        f" INSERT INTO memories ({', '.join(ROW_COLUMNS)})"
        " SELECT locked.id, v.attribute, v.value, v.source, v.confidence,"
        f" v.context, v.created_at FROM locked, {rows_values(count, entity=False)}"
        " RETURNING id"
    )
