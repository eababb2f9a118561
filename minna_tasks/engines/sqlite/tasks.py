"""The task operations on SQLite: every statement `TaskStore` and its helpers run.

Written in the SQL subset SQLite and PostgreSQL share (`?` parameters; the PostgreSQL
connection translates), so `engines/postgres/tasks.py` subclasses this and overrides
only what differs there: row locks (FOR UPDATE, SKIP LOCKED for claims) and the
dependency recount. Every method runs inside the caller's read snapshot or write
transaction (`TaskStore` opens them); none opens its own.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..base import Connected
from ..task_schema import DEPENDS_ON, ENTITY_TYPE
from . import dependencies as deps_sql
from .memories import dict_rows
from .projection import (
    INSERT_TASK_ROW,
    SELECT_BY_ID,
    SELECT_TASK,
    TASK_MIGRATIONS,
    queue_sql,
    queue_where,
)

REL_TYPE = DEPENDS_ON
READY = " AND open_deps = 0"
BLOCKED = " AND open_deps > 0"

INSERT_ENTITY = "INSERT INTO entities (name, entity_type, created_at) VALUES (?, ?, ?)"
INSERT_EDGE = (
    "INSERT INTO relations (from_entity, to_entity, rel_type, created_at) VALUES (?, ?, ?, ?)"
)
COUNTS = "SELECT status, count(*) FROM task_current GROUP BY status"
NEXT_SEQ = "SELECT coalesce(max(seq), 0) + 1 FROM task_current"
STATUS_LOG = (
    "SELECT attribute, value, created_at, source, context, id FROM memories"
    " WHERE entity = ? AND attribute IN ('status', ?) ORDER BY id"
)
TRIPLES_UNTIL = (
    "SELECT attribute, value, source, created_at FROM memories"
    " WHERE entity = ? AND created_at <= ? ORDER BY id"
)
FACTS = (
    "SELECT attribute, value, source, context, created_at FROM memories"
    " WHERE entity = ? ORDER BY id"
)
STATUS_AT = (
    "SELECT value FROM memories WHERE entity = ? AND attribute = 'status'"
    " AND created_at <= ? ORDER BY id DESC LIMIT 1"
)
EDGES_OF = (
    "SELECT r.to_entity, d.status FROM relations r"
    " LEFT JOIN task_current d ON d.id = r.to_entity"
    " WHERE r.from_entity = ? AND r.rel_type = ?"
    # d.status is one value per to_entity; naming it keeps PostgreSQL's GROUP BY rule.
    " GROUP BY r.to_entity, d.status ORDER BY min(r.id)"
)
DEPENDENTS = (
    "SELECT from_entity FROM relations WHERE to_entity = ? AND rel_type = ?"
    " GROUP BY from_entity ORDER BY min(id)"
)
ALL_EDGES = (
    "SELECT from_entity, to_entity FROM relations WHERE rel_type = ?"
    " GROUP BY from_entity, to_entity ORDER BY min(id)"
)
READINESS = (
    "SELECT count(*) FILTER (WHERE open_deps = 0), count(*) FILTER (WHERE open_deps > 0)"
    " FROM task_current WHERE status = ?"
)
ID_OWNER = (
    "SELECT entity_type FROM entities WHERE name = ? UNION ALL SELECT e.entity_type"
    " FROM entity_aliases a JOIN entities e ON e.id = a.entity_id WHERE a.alias = ?"
)


class SqliteTasks:
    """`TaskOperations` (engines/base.py) over one engine's connection."""

    def __init__(self, db: Connected) -> None:
        self.db = db

    def ensure_schema(self) -> None:
        self.db.ensure_component("tasks", TASK_MIGRATIONS)

    def ensure_views(self) -> None:
        from ... import views  # sqlite-utils loads only when a view is out of date

        views.ensure_views(self.db)

    # -- row locks: none on SQLite, whose write transaction excludes every other writer

    def _lock(self) -> str:
        """The clause ending a read of rows about to change."""
        return ""

    def _skip_locked(self) -> str:
        """The clause ending a claim's read of the next row."""
        return ""

    # -- reading tasks ----------------------------------------------------------

    def load(self, task_id: str) -> Any:
        """The task's projection row (SELECT_TASK columns), locked for a write; or None."""
        return self.db.connection.execute(SELECT_BY_ID + self._lock(), (task_id,)).fetchone()

    def next_claimable(self, initial: str) -> Any:
        """The first ready row of the queue in claim order, or None (a claim takes it)."""
        return self._first_ready(initial, self._skip_locked())

    claims_at_once = False

    def claim_next(self, initial: str, rows: Sequence[Any]) -> tuple[Any, int] | None:
        """Not on SQLite (see TaskOperations.claims_at_once)."""
        return None

    def peek(self, task_id: str) -> Any:
        return self.db.connection.execute(SELECT_BY_ID, (task_id,)).fetchone()

    def append_if_unchanged(self, row: Sequence[Any], rows: Sequence[Any]) -> bool:
        """Not on SQLite (see TaskOperations.claims_at_once)."""
        return False

    def _first_ready(self, initial: str, lock: str) -> Any:
        sql = queue_sql(initial) + " LIMIT 1" + lock
        return self.db.connection.execute(sql).fetchone()

    def queue(self, initial: str, limit: int | None) -> builtins.list[Any]:
        """Ready rows of the queue in claim order."""
        sql, args = queue_sql(initial), builtins.list[Any]()
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return builtins.list(self.db.connection.execute(sql, args))

    def rows(
        self,
        statuses: Sequence[str] | None,
        owner: str | None,
        limit: int | None,
        ready_in: str | None = None,
        blocked_in: str | None = None,
    ) -> Iterator[Any]:
        """Rows oldest first: in `statuses`, of `owner`, ready or blocked in a state."""
        where: builtins.list[str] = []
        args: builtins.list[Any] = []
        if ready_in is not None:
            where.append("status = ?" + READY)
            args.append(ready_in)
        if blocked_in is not None:
            where.append("status = ?" + BLOCKED)
            args.append(blocked_in)
        if statuses is not None:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            args.extend(statuses)
        if owner is not None:
            where.append("owner = ?")
            args.append(owner)
        sql = SELECT_TASK
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return iter(self.db.connection.execute(sql, args))

    def expired(self, held: Sequence[str], stamp: str) -> builtins.list[Any]:
        """Rows in a held state whose lease expired before `stamp`, locked, oldest first."""
        # Not SKIP LOCKED: the row of a worker killed mid-move stays locked until the
        # server notices, and must not be passed over.
        rows: builtins.list[Any] = self.db.connection.execute(
            SELECT_TASK + f" WHERE status IN ({', '.join('?' * len(held))})"
            " AND (lease_expires_at IS NULL OR lease_expires_at < ?) ORDER BY seq" + self._lock(),
            (*held, stamp),
        ).fetchall()
        return rows

    def earliest_lease(self, held: Sequence[str]) -> str | None:
        """The earliest lease end of the tasks in a `held` state ('' when one of them has
        none); None when no task is held."""
        row = self.db.connection.execute(
            "SELECT min(coalesce(lease_expires_at, '')) FROM task_current"
            f" WHERE status IN ({', '.join('?' * len(held))})",
            tuple(held),
        ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def counts(self) -> dict[str, int]:
        """How many tasks are in each state, for the states that hold any."""
        return {str(s): int(n) for s, n in self.db.connection.execute(COUNTS)}

    def readiness(self, initial: str) -> tuple[int, int]:
        """(ready, blocked) counts of the tasks in the initial state."""
        row = self.db.connection.execute(READINESS, (initial,)).fetchone()
        return int(row[0]), int(row[1])

    def task_exists(self, task_id: str) -> bool:
        sql = "SELECT 1 FROM task_current WHERE id = ?"
        return self.db.connection.execute(sql, (task_id,)).fetchone() is not None

    def index_queue(self, initial: str) -> bool:
        """Make the claim index cover the ready tasks in `initial` (the machine's queue
        state) if it covers another; returns whether it was rebuilt."""
        if self.queue_indexed(initial):
            return False
        conn = self.db.connection
        conn.execute("DROP INDEX IF EXISTS task_current_queue")
        conn.execute(
            "CREATE INDEX task_current_queue ON task_current (priority DESC, seq) WHERE "
            + queue_where(initial)
        )
        return True

    def queue_indexed(self, initial: str) -> bool:
        """Whether the claim index covers the ready tasks in `initial`."""
        row = self.db.connection.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'task_current_queue'"
        ).fetchone()
        return row is not None and str(row[0]).endswith(queue_where(initial))

    # -- history ------------------------------------------------------------------

    def status_log(self, task_id: str, log_attribute: str) -> builtins.list[Any]:
        """(attribute, value, created_at, source, context, id) of the task's status and
        `log_attribute` triples, in log order."""
        rows: builtins.list[Any] = self.db.connection.execute(
            STATUS_LOG, (task_id, log_attribute)
        ).fetchall()
        return rows

    def triples_until(self, task_id: str, stamp: str) -> builtins.list[Any]:
        """(attribute, value, source, created_at) of the triples written by `stamp`."""
        rows: builtins.list[Any] = self.db.connection.execute(
            TRIPLES_UNTIL, (task_id, stamp)
        ).fetchall()
        return rows

    def created_at(self, task_id: str) -> str | None:
        """When the task's entity was created, or None."""
        sql = "SELECT created_at FROM entities WHERE name = ?"
        row = self.db.connection.execute(sql, (task_id,)).fetchone()
        return None if row is None else str(row[0])

    def status_at(self, task_id: str, stamp: str) -> str | None:
        """The task's newest status written by `stamp`, or None."""
        row = self.db.connection.execute(STATUS_AT, (task_id, stamp)).fetchone()
        return None if row is None else row[0]

    def facts(self, task_id: str) -> builtins.list[dict[str, Any]]:
        """Every triple of the task in log order, as dicts (for export)."""
        return builtins.list(dict_rows(self.db.connection.execute(FACTS, (task_id,))))

    # -- writing tasks ------------------------------------------------------------

    def next_seq(self) -> int:
        """The sequence number the next new task gets (automatic ids count from it)."""
        return int(self.db.connection.execute(NEXT_SEQ).fetchone()[0])

    def insert_tasks(
        self, rows: Iterable[Sequence[Any]], stamps: Sequence[tuple[str, str]]
    ) -> None:
        """New tasks whose triples are written: their projection rows (COLUMNS order),
        then their entities ((id, created_at) each), whose trigger then skips them."""
        conn = self.db.connection
        conn.executemany(INSERT_TASK_ROW, rows)
        conn.executemany(INSERT_ENTITY, [(t, ENTITY_TYPE, at) for t, at in stamps])

    def delete_task(self, task_id: str) -> None:
        """Every triple and the entity of a task (an import replacing it)."""
        conn = self.db.connection
        conn.execute("DELETE FROM memories WHERE entity = ?", (task_id,))
        conn.execute("DELETE FROM entities WHERE name = ?", (task_id,))

    # -- names --------------------------------------------------------------------

    def id_owner(self, name: str) -> str | None:
        """What uses `name`: an entity's type (aliases count), '' for facts with no
        entity row, or None when it is free."""
        conn = self.db.connection
        row = conn.execute(ID_OWNER, (name, name)).fetchone()
        if row is not None:
            return str(row[0])
        fact = conn.execute("SELECT 1 FROM memories WHERE entity = ? LIMIT 1", (name,)).fetchone()
        return None if fact is None else ""

    def owners(self, names: Sequence[str]) -> dict[str, str]:
        """`id_owner` for many names at once: {name: owner} for the names in use."""
        conn = self.db.connection
        found: dict[str, str] = {}
        for start in range(0, len(names), 500):
            chunk = builtins.list(names[start : start + 500])
            marks = ", ".join("?" * len(chunk))
            for (name,) in conn.execute(
                f"SELECT DISTINCT entity FROM memories WHERE entity IN ({marks})", chunk
            ):
                found[name] = ""
            for name, entity_type in conn.execute(
                f"SELECT name, entity_type FROM entities WHERE name IN ({marks}) UNION ALL"
                " SELECT a.alias, e.entity_type FROM entity_aliases a"
                f" JOIN entities e ON e.id = a.entity_id WHERE a.alias IN ({marks})",
                chunk + chunk,
            ):
                found[name] = str(entity_type)
        return found

    # -- the state machine the file holds ---------------------------------------------

    def machine_definition(self) -> str | None:
        """The newest recorded machine's definition, or None (a new or 0.1 file)."""
        conn = self.db.connection
        if not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'task_machines'"
        ).fetchone():
            return None
        row = conn.execute(
            "SELECT definition FROM task_machines ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else str(row[0])

    def record_machine(
        self, definition: str, actor: str | None, note: str | None, stamp: str
    ) -> None:
        self.db.connection.execute(
            "INSERT INTO task_machines (definition, actor, note, created_at) VALUES (?, ?, ?, ?)",
            (definition, actor, note, stamp),
        )

    # -- dependencies -------------------------------------------------------------

    def edges_of(self, task_id: str) -> builtins.list[tuple[str, str | None]]:
        """A task's dependencies in the order they were added, each with its status
        (None when the task it names no longer exists)."""
        return [(d, s) for d, s in self.db.connection.execute(EDGES_OF, (task_id, REL_TYPE))]

    def depends_on(self, task_id: str) -> builtins.list[str]:
        """The tasks `task_id` depends on (any order)."""
        sql = "SELECT to_entity FROM relations WHERE from_entity = ? AND rel_type = ?"
        return [row[0] for row in self.db.connection.execute(sql, (task_id, REL_TYPE))]

    def dependents(self, task_id: str) -> builtins.list[str]:
        """The tasks that wait for this one, in the order the dependencies were added."""
        return [row[0] for row in self.db.connection.execute(DEPENDENTS, (task_id, REL_TYPE))]

    def all_edges(self) -> builtins.list[tuple[str, str]]:
        """Every (task, dependency) pair, in the order they were added."""
        return [(a, b) for a, b in self.db.connection.execute(ALL_EDGES, (REL_TYPE,))]

    def open_edges(self, done: Sequence[str]) -> builtins.list[tuple[str, str]]:
        """The (task, dependency) pairs whose waiting task is not in a `done` state."""
        marks = ", ".join("?" * len(done)) or "NULL"
        return [
            (a, b)
            for a, b in self.db.connection.execute(
                "SELECT r.from_entity, r.to_entity FROM relations r"
                " JOIN task_current t ON t.id = r.from_entity"
                f" WHERE r.rel_type = ? AND t.status NOT IN ({marks})"
                " GROUP BY r.from_entity, r.to_entity ORDER BY min(r.id)",
                (REL_TYPE, *done),
            )
        ]

    def blocked_ids(self, initial: str) -> builtins.list[str]:
        """Ids of the tasks in the initial state with an open dependency, oldest first."""
        sql = "SELECT id FROM task_current WHERE status = ? AND open_deps > 0 ORDER BY seq"
        return [row[0] for row in self.db.connection.execute(sql, (initial,))]

    def insert_edges(self, edges: Iterable[tuple[str, str, str]]) -> None:
        """Write (task, dependency, created_at) relations; the triggers recount the tasks."""
        self.db.connection.executemany(INSERT_EDGE, [(a, b, REL_TYPE, at) for a, b, at in edges])

    def delete_edge(self, task_id: str, on: str) -> int:
        return int(
            self.db.connection.execute(
                "DELETE FROM relations WHERE from_entity = ? AND to_entity = ? AND rel_type = ?",
                (task_id, on, REL_TYPE),
            ).rowcount
        )

    def delete_edges_from(self, task_ids: Sequence[str]) -> None:
        self.db.connection.executemany(
            "DELETE FROM relations WHERE from_entity = ? AND rel_type = ?",
            [(t, REL_TYPE) for t in task_ids],
        )

    def done_states(self) -> set[str]:
        """The states the file's open-dependency counts count as done."""
        return {row[0] for row in self.db.connection.execute("SELECT state FROM task_done_states")}

    def set_done_states(self, states: Sequence[str]) -> None:
        """Make the file's done states these and recount every counted task."""
        conn = self.db.connection
        conn.execute("DELETE FROM task_done_states")
        conn.executemany("INSERT INTO task_done_states (state) VALUES (?)", [(s,) for s in states])
        self._recount_counted()

    def _recount_counted(self) -> None:
        self.db.connection.execute(deps_sql.RECOUNT_COUNTED)

    def count_errors(self) -> builtins.list[tuple[str, int, int, int, int]]:
        """Tasks whose stored counts differ from a recount: (id, deps, open_deps, right
        deps, right open_deps). Empty when every count is right."""
        return [tuple(row) for row in self.db.connection.execute(deps_sql.COUNT_ERRORS)]
