"""Task dependencies: `depends_on` relations, open-dependency counts, cycles and their log.

A task's current dependencies are rows of the Minna `relations` table
(`rel_type` 'depends_on', from the waiting task to the one it waits for), so
`get_related` and other spine tools see them. Each change is also a triple in
the task's log (attribute 'depends_on', value the JSON list of its dependencies
after the change, source the actor, context what changed), which is what
`history`, `as_of`, export and import read.

The projection keeps, per task, `deps` (how many dependencies) and `open_deps`
(how many are not done). Triggers keep both right in the same transaction as
any change that moves them: a relation added or removed, a task's status
entering or leaving a done state (also when another tool writes it with plain
SQL), a task row appearing or vanishing. The claim index covers only rows with
`open_deps = 0`, so claiming stays an index seek however many tasks wait.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..errors import DependencyCycle, DependencyError, TaskNotFound
from ..memory.api import DEPENDS_ON
from ..records import Fact, Task, check_text
from ..states import StateMachine

REL_TYPE = DEPENDS_ON
LOG_ATTRIBUTE = DEPENDS_ON
# The column SELECT_TASK reads after the projection's own columns.
COUNT_COLUMN = "deps"

_OWN = f"r.from_entity = task_current.id AND r.rel_type = '{REL_TYPE}'"
# 1 or 0 (a CASE, not SQLite's boolean-as-integer, so PostgreSQL runs it too).
_IS_DONE = "CASE WHEN {status} IN (SELECT state FROM task_done_states) THEN 1 ELSE 0 END"
# Recount both columns of the rows matched by a WHERE clause, from scratch: whatever
# order rows and relations arrive in (import, replace, other tools), the count is right.
_RECOUNT = f"""UPDATE task_current SET
        deps = (SELECT count(DISTINCT r.to_entity) FROM relations r WHERE {_OWN}),
        open_deps = (SELECT count(DISTINCT r.to_entity) FROM relations r
                     LEFT JOIN task_current d ON d.id = r.to_entity
                     WHERE {_OWN} AND {_IS_DONE.format(status="d.status")} = 0)
    WHERE {{where}};"""
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
        {_RECOUNT.format(where="id = new.from_entity")}
    END;
    CREATE TRIGGER IF NOT EXISTS task_deps_removed AFTER DELETE ON relations
    WHEN old.rel_type = '{REL_TYPE}' BEGIN
        {_RECOUNT.format(where="id = old.from_entity")}
    END;
    CREATE TRIGGER IF NOT EXISTS task_deps_changed AFTER UPDATE ON relations
    WHEN old.rel_type = '{REL_TYPE}' OR new.rel_type = '{REL_TYPE}' BEGIN
        {_RECOUNT.format(where="id IN (old.from_entity, new.from_entity)")}
    END;
    CREATE TRIGGER IF NOT EXISTS task_deps_status AFTER UPDATE OF status ON task_current
    WHEN {_IS_DONE.format(status="old.status")} != {_IS_DONE.format(status="new.status")}
    BEGIN
        {_RECOUNT.format(where=_DEPENDENTS.format(ref="new"))}
    END;
    CREATE TRIGGER IF NOT EXISTS task_deps_row_added AFTER INSERT ON task_current
    WHEN EXISTS (SELECT 1 FROM relations WHERE from_entity = new.id AND rel_type = '{REL_TYPE}')
      OR EXISTS (SELECT 1 FROM relations WHERE to_entity = new.id AND rel_type = '{REL_TYPE}')
    BEGIN
        {_RECOUNT.format(where="id = new.id OR " + _DEPENDENTS.format(ref="new"))}
    END;
    CREATE TRIGGER IF NOT EXISTS task_deps_row_removed AFTER DELETE ON task_current
    WHEN EXISTS (SELECT 1 FROM relations WHERE to_entity = old.id AND rel_type = '{REL_TYPE}')
    BEGIN
        {_RECOUNT.format(where=_DEPENDENTS.format(ref="old"))}
    END;
    {_RECOUNT.format(where=_HAS_DEPS)}
"""


# -- the machine's done states ---------------------------------------------------------


def done_states(machine: StateMachine) -> tuple[str, ...]:
    """The states that satisfy a dependency: the machine's done role (`completed` on
    the default machine)."""
    return (machine.done,)


def sync_done_states(conn: sqlite3.Connection, states: Sequence[str]) -> bool:
    """Make the file's done states these (inside a transaction), recounting every task
    when they change. Returns whether anything was written."""
    found = {row[0] for row in conn.execute("SELECT state FROM task_done_states")}
    if found == set(states):
        return False
    conn.execute("DELETE FROM task_done_states")
    conn.executemany("INSERT INTO task_done_states (state) VALUES (?)", [(s,) for s in states])
    conn.execute(_RECOUNT.format(where="deps > 0 OR open_deps > 0"))
    return True


def stored_done_states(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT state FROM task_done_states")}


# -- reading ---------------------------------------------------------------------------


def edges_of(conn: sqlite3.Connection, task_id: str) -> builtins.list[tuple[str, str | None]]:
    """A task's dependencies in the order they were added, each with its status
    (None when the task it names no longer exists)."""
    return [
        (dep, status)
        for dep, status in conn.execute(
            "SELECT r.to_entity, d.status FROM relations r"
            " LEFT JOIN task_current d ON d.id = r.to_entity"
            " WHERE r.from_entity = ? AND r.rel_type = ?"
            # d.status is one value per to_entity; naming it keeps PostgreSQL's GROUP BY rule.
            " GROUP BY r.to_entity, d.status ORDER BY min(r.id)",
            (task_id, REL_TYPE),
        )
    ]


def dependents(conn: sqlite3.Connection, task_id: str) -> builtins.list[str]:
    """The tasks that wait for this one, in the order the dependencies were added."""
    return [
        row[0]
        for row in conn.execute(
            "SELECT from_entity FROM relations WHERE to_entity = ? AND rel_type = ?"
            " GROUP BY from_entity ORDER BY min(id)",
            (task_id, REL_TYPE),
        )
    ]


def with_dependencies(
    conn: sqlite3.Connection, task: Task, count: int, done: Iterable[str]
) -> Task:
    """`task` with depends_on and blocked_by filled (one index seek, only when it has any)."""
    if not count:
        return task
    done = set(done)
    edges = edges_of(conn, task.id)
    return replace(
        task,
        depends_on=tuple(dep for dep, _ in edges),
        blocked_by=tuple(dep for dep, status in edges if status not in done),
    )


def readiness(conn: sqlite3.Connection, initial: str) -> dict[str, int]:
    """{"ready": n, "blocked": n} for the tasks in the initial state."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE open_deps = 0), count(*) FILTER (WHERE open_deps > 0)"
        " FROM task_current WHERE status = ?",
        (initial,),
    ).fetchone()
    return {"ready": int(row[0]), "blocked": int(row[1])}


READY = " AND open_deps = 0"
BLOCKED = " AND open_deps > 0"


def all_edges(conn: sqlite3.Connection) -> builtins.list[tuple[str, str]]:
    """Every (task, dependency) pair, in the order they were added."""
    return [
        (a, b)
        for a, b in conn.execute(
            "SELECT from_entity, to_entity FROM relations WHERE rel_type = ?"
            " GROUP BY from_entity, to_entity ORDER BY min(id)",
            (REL_TYPE,),
        )
    ]


def open_edges(conn: sqlite3.Connection, done: Sequence[str]) -> builtins.list[tuple[str, str]]:
    """The (task, dependency) pairs whose waiting task is not done (for the graph)."""
    marks = ", ".join("?" * len(done)) or "NULL"
    return [
        (a, b)
        for a, b in conn.execute(
            "SELECT r.from_entity, r.to_entity FROM relations r"
            " JOIN task_current t ON t.id = r.from_entity"
            f" WHERE r.rel_type = ? AND t.status NOT IN ({marks})"
            " GROUP BY r.from_entity, r.to_entity ORDER BY min(r.id)",
            (REL_TYPE, *done),
        )
    ]


def count_errors(conn: sqlite3.Connection) -> builtins.list[tuple[str, int, int, int, int]]:
    """Tasks whose stored counts differ from a recount: (id, deps, open_deps, right deps,
    right open_deps). Empty when every count is right (a check for tests and doctors)."""
    return [
        tuple(row)
        for row in conn.execute(
            f"""SELECT id, deps, open_deps, right_deps, right_open FROM (
                SELECT id, deps, open_deps,
                    (SELECT count(DISTINCT r.to_entity) FROM relations r WHERE {_OWN})
                        AS right_deps,
                    (SELECT count(DISTINCT r.to_entity) FROM relations r
                     LEFT JOIN task_current d ON d.id = r.to_entity
                     WHERE {_OWN} AND {_IS_DONE.format(status="d.status")} = 0) AS right_open
                FROM task_current) AS counts
            WHERE deps != right_deps OR open_deps != right_open"""
        )
    ]


# -- checking and writing --------------------------------------------------------------


def check_ids(name: str, ids: str | Iterable[str] | None) -> tuple[str, ...]:
    """Dependency ids as given (one id or several), checked, duplicates dropped."""
    if ids is None:
        return ()
    if isinstance(ids, str):
        ids = [ids]
    if not isinstance(ids, Iterable):
        raise TypeError(f"{name} must be a list of task ids, not {type(ids).__name__}")
    return tuple(dict.fromkeys(check_text(name, i) for i in ids))


def require_tasks(conn: sqlite3.Connection, ids: Iterable[str], known: Iterable[str] = ()) -> None:
    """TaskNotFound for the first id that is neither a task in the file nor in `known`."""
    known = set(known)
    for dep in ids:
        if dep in known:
            continue
        if conn.execute("SELECT 1 FROM task_current WHERE id = ?", (dep,)).fetchone() is None:
            raise TaskNotFound(dep)


def find_path(
    conn: sqlite3.Connection,
    start: str,
    goal: str,
    extra: Mapping[str, Sequence[str]] | None = None,
) -> builtins.list[str] | None:
    """A dependency path start -> ... -> goal (following depends_on), or None.

    `extra` adds edges not written yet (an add_many batch, an import).
    """
    parent: dict[str, str | None] = {start: None}
    frontier = deque([start])  # breadth first: the shortest path names the cycle
    while frontier:
        node = frontier.popleft()
        if node == goal:
            path = [node]
            while (back := parent[path[-1]]) is not None:
                path.append(back)
            return path[::-1]
        nexts = [
            row[0]
            for row in conn.execute(
                "SELECT to_entity FROM relations WHERE from_entity = ? AND rel_type = ?",
                (node, REL_TYPE),
            )
        ]
        if extra:
            nexts.extend(extra.get(node, ()))
        for nxt in nexts:
            if nxt not in parent:
                parent[nxt] = node
                frontier.append(nxt)
    return None


def refuse_cycle(
    conn: sqlite3.Connection,
    task_id: str,
    on: str,
    extra: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """DependencyCycle when `task_id` depending on `on` would close a cycle."""
    path = find_path(conn, on, task_id, extra)
    if path is not None:
        raise DependencyCycle([task_id, *path])


def batch_cycle(edges: Mapping[str, Sequence[str]]) -> builtins.list[str] | None:
    """A cycle among edges not yet written (task -> its dependencies), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for root in edges:
        if state.get(root):
            continue
        stack: builtins.list[tuple[str, int]] = [(root, 0)]
        path: builtins.list[str] = []
        while stack:
            node, index = stack.pop()
            if index == 0:
                state[node] = 1
                path.append(node)
            deps = edges.get(node, ())
            if index < len(deps):
                stack.append((node, index + 1))
                nxt = deps[index]
                if state.get(nxt) == 1:
                    return [*path[path.index(nxt) :], nxt]
                if not state.get(nxt):
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                path.pop()
    return None


def insert_edges(conn: sqlite3.Connection, pairs: Iterable[tuple[str, str]], stamp: str) -> None:
    """Write (task, dependency) relations; the triggers recount the tasks."""
    conn.executemany(
        "INSERT INTO relations (from_entity, to_entity, rel_type, created_at) VALUES (?, ?, ?, ?)",
        [(a, b, REL_TYPE, stamp) for a, b in pairs],
    )


def delete_edge(conn: sqlite3.Connection, task_id: str, on: str) -> int:
    return conn.execute(
        "DELETE FROM relations WHERE from_entity = ? AND to_entity = ? AND rel_type = ?",
        (task_id, on, REL_TYPE),
    ).rowcount


def delete_edges_from(conn: sqlite3.Connection, task_ids: Sequence[str]) -> None:
    conn.executemany(
        "DELETE FROM relations WHERE from_entity = ? AND rel_type = ?",
        [(t, REL_TYPE) for t in task_ids],
    )


def log_fact(task_id: str, deps: Sequence[str], actor: str | None, note: str) -> Fact:
    """The log triple recording a task's dependencies after a change."""
    return (task_id, LOG_ATTRIBUTE, json.dumps(list(deps), ensure_ascii=False), actor, note)


def parse_log_value(value: Any) -> tuple[str, ...]:
    """The dependencies a log triple holds; ValueError when it holds something else."""
    try:
        deps = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        deps = None
    if not isinstance(deps, list) or not all(isinstance(d, str) and d for d in deps):
        raise ValueError(f"a {LOG_ATTRIBUTE} triple must hold a JSON list of task ids")
    return tuple(deps)


def replay(facts: Iterable[Mapping[str, Any]]) -> builtins.list[tuple[str, str]]:
    """The dependencies a task's log ends with, each with the time it was added."""
    added: dict[str, str] = {}
    for fact in facts:
        if fact["attribute"] == LOG_ATTRIBUTE:
            deps = parse_log_value(fact["value"])
            added = {d: added.get(d, fact["created_at"]) for d in deps}
    return builtins.list(added.items())


def restore_edges(
    conn: sqlite3.Connection,
    records: Sequence[Mapping[str, Any]],
    stamp: str,
) -> None:
    """After an import wrote these tasks: their relations as their logs end, checked
    (every dependency a task in the file or the database, no cycle). Raises, so the
    caller's transaction writes nothing, when a check fails."""
    ids = [r["id"] for r in records]
    delete_edges_from(conn, ids)  # a replaced task's old dependencies
    edges = {r["id"]: replay(r["facts"]) for r in records}
    wanted = {task: [dep for dep, _ in deps] for task, deps in edges.items() if deps}
    for task, deps in wanted.items():
        for dep in deps:
            if conn.execute("SELECT 1 FROM task_current WHERE id = ?", (dep,)).fetchone() is None:
                raise DependencyError(
                    f"task {task!r} depends on {dep!r}, which is neither in the file"
                    " nor in the database; nothing was imported"
                )
    cycle = _graph_cycle(conn, wanted)
    if cycle is not None:
        raise DependencyCycle(cycle, "nothing was imported")
    conn.executemany(
        "INSERT INTO relations (from_entity, to_entity, rel_type, created_at) VALUES (?, ?, ?, ?)",
        [(task, dep, REL_TYPE, at or stamp) for task, deps in edges.items() for dep, at in deps],
    )


def _graph_cycle(
    conn: sqlite3.Connection, wanted: Mapping[str, Sequence[str]]
) -> builtins.list[str] | None:
    """A cycle in the file's graph joined to the database's (the new edges not written)."""
    if not wanted:
        return None
    graph: dict[str, builtins.list[str]] = {}
    for a, b in all_edges(conn):
        graph.setdefault(a, []).append(b)
    for task, deps in wanted.items():
        graph[task] = builtins.list(deps)
    return batch_cycle(graph)


def open_as_of(
    conn: sqlite3.Connection, deps: Sequence[str], stamp: str, done: Iterable[str]
) -> tuple[str, ...]:
    """Which of `deps` were not done at `stamp` (each one's newest status by then)."""
    done = set(done)
    out = []
    for dep in deps:
        row = conn.execute(
            "SELECT value FROM memories WHERE entity = ? AND attribute = 'status'"
            " AND created_at <= ? ORDER BY id DESC LIMIT 1",
            (dep, stamp),
        ).fetchone()
        if row is None or row[0] not in done:
            out.append(dep)
    return tuple(out)


def check_batch(
    conn: sqlite3.Connection, wanted: Mapping[str, Sequence[str]], new_ids: Sequence[str]
) -> None:
    """Refuse an add_many batch whose dependencies name unknown tasks or close a cycle.

    Tasks in the file cannot depend on the new ones, unless a relation already names
    one of the new ids (another tool's, or a deleted task's): then the file's edges
    take part in the cycle check too.
    """
    if not wanted:
        return
    new = set(new_ids)
    require_tasks(conn, {dep for deps in wanted.values() for dep in deps}, known=new)
    graph: dict[str, builtins.list[str]] = {t: builtins.list(d) for t, d in wanted.items()}
    if any(dependents(conn, task_id) for task_id in new):
        for a, b in all_edges(conn):
            graph.setdefault(a, []).append(b)
    cycle = batch_cycle(graph)
    if cycle is not None:
        raise DependencyCycle(cycle)


def check_depend(conn: sqlite3.Connection, task_id: str, on: str) -> None:
    """Refuse `task_id` depending on `on` when `on` is unknown or it closes a cycle."""
    require_tasks(conn, [on])
    if on == task_id:
        raise DependencyCycle([task_id, on])
    # Only a task something waits for can be part of a cycle: the common case (a new
    # step depending on earlier ones) costs one index seek.
    if dependents(conn, task_id):
        refuse_cycle(conn, task_id, on)


def stranded(conn: sqlite3.Connection, initial: str, stuck: Iterable[str]) -> builtins.list[str]:
    """Waiting tasks that cannot become ready without someone stepping in: one of their
    open dependencies, or one of those's own, is in a `stuck` state (failed) or gone."""
    stuck = set(stuck)
    verdict: dict[str, bool] = {}

    def blocked_for_good(task_id: str, seen: frozenset[str]) -> bool:
        if task_id in verdict:
            return verdict[task_id]
        result = False
        for dep, status in edges_of(conn, task_id):
            if status is None or status in stuck:
                result = True
            elif status == initial and dep not in seen:
                result = blocked_for_good(dep, seen | {dep})
            if result:
                break
        verdict[task_id] = result
        return result

    waiting = [
        row[0]
        for row in conn.execute(
            "SELECT id FROM task_current WHERE status = ? AND open_deps > 0 ORDER BY seq",
            (initial,),
        )
    ]
    return [t for t in waiting if blocked_for_good(t, frozenset({t}))]
