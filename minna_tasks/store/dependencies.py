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

This module keeps the rules (checks, cycles, the log); the SQL is the engine's: the
triggers in engines/<engine>/dependencies.py, the reads and writes in its
`TaskOperations` (engines/base.py).
"""

from __future__ import annotations

import builtins
import json
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..engines.base import TaskOperations
from ..engines.task_schema import DEPENDS_ON
from ..errors import DependencyCycle, DependencyError, TaskNotFound
from ..records import Fact, Task, check_text
from ..states import StateMachine

REL_TYPE = DEPENDS_ON
LOG_ATTRIBUTE = DEPENDS_ON


# -- the machine's done states ---------------------------------------------------------


def done_states(machine: StateMachine) -> tuple[str, ...]:
    """The states that satisfy a dependency: the machine's done role (`completed` on
    the default machine)."""
    return (machine.done,)


def sync_done_states(ops: TaskOperations, states: Sequence[str]) -> bool:
    """Make the file's done states these (inside a transaction), recounting every task
    when they change. Returns whether anything was written."""
    if ops.done_states() == set(states):
        return False
    ops.set_done_states(states)
    return True


# -- reading ---------------------------------------------------------------------------


def with_dependencies(ops: TaskOperations, task: Task, count: int, done: Iterable[str]) -> Task:
    """`task` with depends_on and blocked_by filled (one index seek, only when it has any)."""
    if not count:
        return task
    done = set(done)
    edges = ops.edges_of(task.id)
    return replace(
        task,
        depends_on=tuple(dep for dep, _ in edges),
        blocked_by=tuple(dep for dep, status in edges if status not in done),
    )


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


def require_tasks(ops: TaskOperations, ids: Iterable[str], known: Iterable[str] = ()) -> None:
    """TaskNotFound for the first id that is neither a task in the file nor in `known`."""
    known = set(known)
    for dep in ids:
        if dep not in known and not ops.task_exists(dep):
            raise TaskNotFound(dep)


def find_path(
    ops: TaskOperations,
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
        nexts = ops.depends_on(node)
        if extra:
            nexts.extend(extra.get(node, ()))
        for nxt in nexts:
            if nxt not in parent:
                parent[nxt] = node
                frontier.append(nxt)
    return None


def refuse_cycle(
    ops: TaskOperations,
    task_id: str,
    on: str,
    extra: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """DependencyCycle when `task_id` depending on `on` would close a cycle."""
    path = find_path(ops, on, task_id, extra)
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
    ops: TaskOperations,
    records: Sequence[Mapping[str, Any]],
    stamp: str,
) -> None:
    """After an import wrote these tasks: their relations as their logs end, checked
    (every dependency a task in the file or the database, no cycle). Raises, so the
    caller's transaction writes nothing, when a check fails."""
    ids = [r["id"] for r in records]
    ops.delete_edges_from(ids)  # a replaced task's old dependencies
    edges = {r["id"]: replay(r["facts"]) for r in records}
    wanted = {task: [dep for dep, _ in deps] for task, deps in edges.items() if deps}
    for task, deps in wanted.items():
        for dep in deps:
            if not ops.task_exists(dep):
                raise DependencyError(
                    f"task {task!r} depends on {dep!r}, which is neither in the file"
                    " nor in the database; nothing was imported"
                )
    cycle = _graph_cycle(ops, wanted)
    if cycle is not None:
        raise DependencyCycle(cycle, "nothing was imported")
    ops.insert_edges((task, dep, at or stamp) for task, deps in edges.items() for dep, at in deps)


def _graph_cycle(
    ops: TaskOperations, wanted: Mapping[str, Sequence[str]]
) -> builtins.list[str] | None:
    """A cycle in the file's graph joined to the database's (the new edges not written)."""
    if not wanted:
        return None
    graph: dict[str, builtins.list[str]] = {}
    for a, b in ops.all_edges():
        graph.setdefault(a, []).append(b)
    for task, deps in wanted.items():
        graph[task] = builtins.list(deps)
    return batch_cycle(graph)


def open_as_of(
    ops: TaskOperations, deps: Sequence[str], stamp: str, done: Iterable[str]
) -> tuple[str, ...]:
    """Which of `deps` were not done at `stamp` (each one's newest status by then)."""
    done = set(done)
    out = []
    for dep in deps:
        if ops.status_at(dep, stamp) not in done:
            out.append(dep)
    return tuple(out)


def check_batch(
    ops: TaskOperations, wanted: Mapping[str, Sequence[str]], new_ids: Sequence[str]
) -> None:
    """Refuse an add_many batch whose dependencies name unknown tasks or close a cycle.

    Tasks in the file cannot depend on the new ones, unless a relation already names
    one of the new ids (another tool's, or a deleted task's): then the file's edges
    take part in the cycle check too.
    """
    if not wanted:
        return
    new = set(new_ids)
    require_tasks(ops, {dep for deps in wanted.values() for dep in deps}, known=new)
    graph: dict[str, builtins.list[str]] = {t: builtins.list(d) for t, d in wanted.items()}
    if any(ops.dependents(task_id) for task_id in new):
        for a, b in ops.all_edges():
            graph.setdefault(a, []).append(b)
    cycle = batch_cycle(graph)
    if cycle is not None:
        raise DependencyCycle(cycle)


def check_depend(ops: TaskOperations, task_id: str, on: str) -> None:
    """Refuse `task_id` depending on `on` when `on` is unknown or it closes a cycle."""
    require_tasks(ops, [on])
    if on == task_id:
        raise DependencyCycle([task_id, on])
    # Only a task something waits for can be part of a cycle: the common case (a new
    # step depending on earlier ones) costs one index seek.
    if ops.dependents(task_id):
        refuse_cycle(ops, task_id, on)


def stranded(ops: TaskOperations, initial: str, stuck: Iterable[str]) -> builtins.list[str]:
    """Waiting tasks that cannot become ready without someone stepping in: one of their
    open dependencies, or one of those's own, is in a `stuck` state (failed) or gone."""
    stuck = set(stuck)
    verdict: dict[str, bool] = {}

    def blocked_for_good(task_id: str, seen: frozenset[str]) -> bool:
        if task_id in verdict:
            return verdict[task_id]
        result = False
        for dep, status in ops.edges_of(task_id):
            if status is None or status in stuck:
                result = True
            elif status == initial and dep not in seen:
                result = blocked_for_good(dep, seen | {dep})
            if result:
                break
        verdict[task_id] = result
        return result

    waiting = ops.blocked_ids(initial)
    return [t for t in waiting if blocked_for_good(t, frozenset({t}))]
