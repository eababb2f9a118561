"""TaskStore: tasks as Minna entities, guarded state moves, leases, history and as-of.

Every task field and every status change is a triple in `memories`; the
`task_current` projection (each engine's: engines/sqlite/projection.py,
engines/postgres/schema.py) holds each task's current values.
"""

from __future__ import annotations

import builtins
import os
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import replace
from datetime import datetime
from typing import Any

from .. import defaults
from ..engines.base import TaskOperations
from ..engines.memories import MemoryRow
from ..engines.task_schema import COLUMNS, ENTITY_TYPE, JSON_FIELDS, TASK_ATTRIBUTES
from ..errors import (
    DependencyError,
    InvalidTransition,
    MachineInUse,
    MachineMismatch,
    MinnaTasksError,
    MissingRole,
    NotRetryable,
    TaskExists,
    TaskFieldProtected,
    TaskNotFound,
    TransitionConflict,
)
from ..events import Event
from ..memory import MinnaMemory, to_timestamp, utcnow
from ..memory.values import format_micros, now_micros
from ..records import (
    Fact,
    Task,
    Transition,
    check_int,
    check_lease,
    check_text,
    dump_json,
    load_json,
)
from ..states import StateMachine
from ..wording import is_in
from . import changes as feed
from . import dependencies, fencing, fields, machines, unstorable, waiting
from .names import free_ids, id_taken
from .rows import make_task, replayed_row, row_from_stored, row_values, task_from_row


class TaskStore:
    """Durable task state on a Minna memory file.

    Every change is one `BEGIN IMMEDIATE` transaction that reads the current
    status, checks it, and appends the new triples: all of them or none.
    """

    def __init__(
        self,
        path_or_memory: str | os.PathLike[str] | MinnaMemory = defaults.DB_PATH,
        machine: StateMachine | None = None,
        *,
        timeout: float | None = None,
        synchronous: str = "NORMAL",
    ) -> None:
        if isinstance(path_or_memory, MinnaMemory):
            self.memory = path_or_memory
            self._owns_memory = False
        else:
            kwargs: dict[str, Any] = {"synchronous": synchronous}
            if timeout is not None:
                kwargs["timeout"] = timeout
            self.memory = MinnaMemory(path_or_memory, **kwargs)
            self._owns_memory = True
        self.machine = machine or StateMachine()
        self._ops = self.memory.task_ops  # the engine's SQL for tasks
        try:
            self._ops.ensure_schema()
            self.machine = self._file_machine(machine)
            self._done = dependencies.done_states(self.machine)
            if not self.memory.readonly:
                self._ops.ensure_views()
                self._sync_done_states()
        except BaseException:
            self.close()
            raise

    def _file_machine(self, given: StateMachine | None) -> StateMachine:
        """The file's machine; the first store to open a file records its own there."""
        ops = self._ops
        with self.memory.reading():
            stored = machines.read(ops, self.path)
        if stored is None and not self.memory.readonly:
            with self.memory.transaction():
                stored = machines.read(ops, self.path)  # re-read under the write lock
                if stored is None:
                    stored = given or StateMachine()
                    _check_fits(ops, stored)  # a 0.1 file's tasks must not be stranded
                    machines.record(ops, stored, utcnow(), note="first opened")
        if stored is None:
            return given or StateMachine()
        if given is not None and given != stored:
            raise MachineMismatch(self.path, stored.differences(given))
        return stored

    def replace_machine(
        self, machine: StateMachine, actor: str | None = None, note: str | None = None
    ) -> StateMachine:
        """Make `machine` the file's state machine, as a recorded step (who, when, why).

        Refused (MachineInUse) while a task sits in a state the new machine lacks.
        Other processes use it from their next open.
        """
        if not isinstance(machine, StateMachine):
            raise TypeError(f"machine must be a StateMachine, not {type(machine).__name__}")
        ops = self._ops
        with self.memory.transaction():
            _check_fits(ops, machine)
            if machines.read(ops, self.path) != machine:
                machines.record(ops, machine, utcnow(), actor, note or "replaced")
            done = dependencies.done_states(machine)
            dependencies.sync_done_states(ops, done)  # recounts when the done state moved
            ops.index_queue(machine.initial)
        self.machine, self._done = machine, done
        return machine

    @property
    def path(self) -> str:
        return self.memory.path

    def close(self) -> None:
        if self._owns_memory:
            self.memory.close()

    def __enter__(self) -> TaskStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TaskStore({self.memory.path!r})"

    def snapshot(self) -> AbstractContextManager[Any]:
        """A consistent read snapshot for several reads (fronts showing a task with its
        history, counts that must agree); inside a transaction, that transaction."""
        return self.memory.reading()

    def transaction(self) -> AbstractContextManager[Any]:
        """One atomic write transaction around several store calls (all or nothing);
        nested calls join it."""
        return self.memory.transaction()

    # -- reading ------------------------------------------------------------

    def _row(self, task_id: str) -> Task | None:
        # In a write transaction on PostgreSQL the row is locked (a guarded move).
        row = self._ops.load(task_id)
        return None if row is None else self._task(row)

    def _task(self, row: Sequence[Any]) -> Task:
        """A Task from a SELECT_TASK row, with its dependencies when it has any."""
        return dependencies.with_dependencies(
            self._ops, task_from_row(row), row[len(COLUMNS)], self._done
        )

    def _sync_done_states(self) -> None:
        """Record which states satisfy a dependency (the open counts count against them),
        and make the claim index cover the machine's queue state."""
        ops, initial = self._ops, self.machine.initial
        with self.memory.reading():
            current = ops.done_states() == set(self._done) and ops.queue_indexed(initial)
        if not current:
            with self.memory.transaction():
                dependencies.sync_done_states(ops, self._done)
                ops.index_queue(initial)

    def _require(self, task_id: str) -> Task:
        check_text("task_id", task_id)
        task = self._row(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    def get(self, task_id: str) -> Task:
        """The task with this id, or TaskNotFound."""
        with self.memory.reading():
            return self._require(task_id)

    def list(
        self,
        status: str | Iterable[str] | None = None,
        owner: str | None = None,
        limit: int | None = None,
        *,
        ready: bool = False,
        blocked: bool = False,
    ) -> builtins.list[Task]:
        """Tasks, oldest first; filtered by one status or several, and by owner.

        `ready=True`: waiting tasks (initial state) whose dependencies are all done;
        `blocked=True`: waiting tasks with a dependency not done yet.
        """
        return builtins.list(
            self.iter(status=status, owner=owner, limit=limit, ready=ready, blocked=blocked)
        )

    def iter(
        self,
        status: str | Iterable[str] | None = None,
        owner: str | None = None,
        limit: int | None = None,
        *,
        ready: bool = False,
        blocked: bool = False,
    ) -> Iterator[Task]:
        """Like list(), but streams rows instead of loading them all."""
        if ready and blocked:
            raise ValueError("a task cannot be both ready and blocked: choose one")
        statuses: builtins.list[str] | None = None
        if status is not None:
            statuses = [status] if isinstance(status, str) else builtins.list(status)
            statuses = [self.machine.check_state(s) for s in statuses]
        if limit is not None:
            limit = check_int("limit", limit, 0)
        initial = self.machine.initial
        with self.memory.reading():
            for row in self._ops.rows(
                statuses,
                owner,
                limit,
                ready_in=initial if ready else None,
                blocked_in=initial if blocked else None,
            ):
                yield self._task(row)

    def queue(self, limit: int | None = None) -> builtins.list[Task]:
        """Ready pending tasks in claim order (highest priority, then oldest)."""
        if limit is not None:
            limit = check_int("limit", limit, 0)
        with self.memory.reading():
            return [self._task(row) for row in self._ops.queue(self.machine.initial, limit)]

    def stats(self) -> dict[str, int]:
        """Number of tasks per status (every state of the machine, zeros included)."""
        counts = dict.fromkeys(self.machine.states, 0)
        with self.memory.reading():
            counts.update(self._ops.counts())
        return counts

    def readiness(self) -> dict[str, int]:
        """{"ready": n, "blocked": n} for the tasks in the initial state."""
        with self.memory.reading():
            ready, blocked = self._ops.readiness(self.machine.initial)
        return {"ready": ready, "blocked": blocked}

    def dependents(self, task_id: str) -> builtins.list[str]:
        """The ids of the tasks that wait for this one (depend on it), oldest link first."""
        with self.memory.reading():
            self._require(task_id)
            return self._ops.dependents(task_id)

    def dependency_graph(self) -> tuple[builtins.list[Task], builtins.list[tuple[str, str]]]:
        """The open part of the dependency graph: the (task, dependency) pairs whose task
        is not done, and every task they name (done dependencies included)."""
        with self.memory.reading():
            edges = self._ops.open_edges(self._done)
            names = dict.fromkeys(t for edge in edges for t in edge)
            tasks = [task for name in names if (task := self._row(name)) is not None]
        return sorted(tasks, key=lambda t: t.created_at), edges

    def stranded(self) -> builtins.list[Task]:
        """Waiting tasks that cannot become ready on their own: a dependency (or one of
        its dependencies) is failed, so it needs a retry, or the dependency removed."""
        stuck = [s for s in self.machine.states if s not in self._done]
        stuck = [s for s in stuck if s == self.machine.failed or self.machine.is_terminal(s)]
        with self.memory.reading():
            ids = dependencies.stranded(self._ops, self.machine.initial, stuck)
            return [self._require(t) for t in ids]

    def history(self, task_id: str) -> builtins.list[Transition]:
        """Every status change of the task, oldest first, and every change of its
        dependencies (a step that keeps the status, its note saying what changed)."""
        with self.memory.reading():
            self._require(task_id)
            rows = self._ops.status_log(task_id, dependencies.LOG_ATTRIBUTE)
        out, previous = [], None
        for attribute, value, at, actor, note, cursor in rows:
            if attribute == dependencies.LOG_ATTRIBUTE:
                out.append(Transition(task_id, previous, previous or "", at, actor, note, cursor))
                continue
            out.append(Transition(task_id, previous, value, at, actor, note, cursor))
            previous = value
        return out

    def as_of(self, task_id: str, when: datetime | str) -> Task:
        """The task as it stood at `when` (its newest triples written by then)."""
        stamp = to_timestamp(when)
        with self.memory.reading():
            self._require(task_id)
            rows = self._ops.triples_until(task_id, stamp)
            created = self._ops.created_at(task_id)
        stored, updated = fields.replay(rows)
        if stored["status"] is None or updated is None:
            raise TaskNotFound(task_id, when=stamp)
        deps: tuple[str, ...] = ()
        for attribute, value, _, _ in rows:
            if attribute == dependencies.LOG_ATTRIBUTE:
                with suppress(ValueError):  # another tool's malformed triple: keep the last
                    deps = dependencies.parse_log_value(value)
        task = task_from_row(row_from_stored(task_id, stored, created or updated, updated))
        if not deps:
            return task
        with self.memory.reading():
            open_ = dependencies.open_as_of(self._ops, deps, stamp, self._done)
        return replace(task, depends_on=deps, blocked_by=open_)

    # -- writing ------------------------------------------------------------

    def add(
        self,
        title: str,
        description: str = "",
        priority: int = 0,
        max_attempts: int = defaults.MAX_ATTEMPTS,
        payload: Any = None,
        task_id: str | None = None,
        actor: str | None = None,
        depends_on: Iterable[str] | None = None,
    ) -> Task:
        """Add a pending task; returns it. Its id is `t-N` unless `task_id` is given.
        It is ready once every task in `depends_on` is done."""
        spec = {
            "title": title,
            "description": description,
            "priority": priority,
            "max_attempts": max_attempts,
            "payload": payload,
            "task_id": task_id,
            "depends_on": depends_on,
        }
        return self.add_many([spec], actor=actor)[0]

    def add_many(
        self, specs: Iterable[Mapping[str, Any] | str], actor: str | None = None
    ) -> builtins.list[Task]:
        """Add many tasks in one transaction: all of them or none.

        Each spec is a title or a mapping with the keyword names of `add`; its
        `depends_on` may name another spec of the same call by that spec's `task_id`.
        """
        checked = [self._check_spec(i, spec) for i, spec in enumerate(specs)]
        return self._insert(checked, actor=actor)

    def _check_spec(self, index: int, spec: Mapping[str, Any] | str) -> dict[str, Any]:
        if isinstance(spec, str):
            spec = {"title": spec}
        if not isinstance(spec, Mapping):
            raise TypeError(f"task {index}: a task spec must be a title or a mapping")
        known = {"title", "description", "priority", "max_attempts", "payload", "task_id", "id"}
        known.add("depends_on")
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"task {index}: unknown field(s): {', '.join(sorted(unknown))}")
        task_id = spec.get("task_id", spec.get("id"))
        return {
            "task_id": None if task_id is None else check_text("task_id", task_id),
            "title": check_text("title", spec.get("title")),
            "description": check_text("description", spec.get("description", ""), empty=True),
            "priority": check_int("priority", spec.get("priority", 0)),
            "max_attempts": check_int(
                "max_attempts", spec.get("max_attempts", defaults.MAX_ATTEMPTS), 1
            ),
            "payload": dump_json("payload", spec.get("payload")),
            "depends_on": dependencies.check_ids("depends_on", spec.get("depends_on")),
        }

    def _insert(
        self, specs: Sequence[dict[str, Any]], actor: str | None, note: str = "created"
    ) -> builtins.list[Task]:
        tasks: builtins.list[Task] = []
        seen: set[str] = set()
        ops = self._ops
        with self.memory.transaction():
            self.memory.serialize("add")  # new ids are numbered from the newest one
            stamp = utcnow()
            next_seq = ops.next_seq()
            facts: builtins.list[Fact] = []
            given = [spec["task_id"] for spec in specs if spec["task_id"] is not None]
            taken = ops.owners(given)
            fresh = free_ids(ops, next_seq, len(specs) - len(given), set(given))
            for spec in specs:
                task_id = spec["task_id"]
                if task_id is None:
                    task_id = next(fresh)
                elif task_id in seen or taken.get(task_id) == ENTITY_TYPE:
                    raise TaskExists(task_id)
                elif task_id in taken:
                    raise id_taken(ops, task_id)
                seen.add(task_id)
                task = Task(
                    task_id, spec["title"], spec["description"], self.machine.initial,
                    spec["priority"], 0, spec["max_attempts"], load_json(spec["payload"]),
                    None, None, None, None, stamp, stamp,
                )  # fmt: skip
                tasks.append(task)
                facts.extend(
                    (task_id, attribute, value, actor, None)
                    for attribute, value in (
                        ("title", task.title),
                        ("description", task.description),
                        ("priority", task.priority),
                        ("attempts", 0),
                        ("max_attempts", task.max_attempts),
                        ("payload", spec["payload"]),
                    )
                    if value is not None
                )
                facts.append((task_id, "status", task.status, actor, note))
                if spec["depends_on"]:
                    tasks[-1] = replace(task, depends_on=spec["depends_on"])
                    facts.append(
                        dependencies.log_fact(
                            task_id, spec["depends_on"], actor, _added(spec["depends_on"])
                        )
                    )
            wanted = {t.id: t.depends_on for t in tasks if t.depends_on}
            dependencies.check_batch(ops, wanted, [t.id for t in tasks])
            # Bulk order: the triples first, while their tasks have no projection row
            # (so the per-row triggers find nothing to update), then each finished row
            # once, then the entities (whose trigger then finds the row and skips it).
            self.memory.append(facts, stamp)
            ops.insert_tasks(
                [
                    row_values(task, spec["payload"])
                    for task, spec in zip(tasks, specs, strict=True)
                ],
                [(task.id, stamp) for task in tasks],
            )
            if wanted:  # the triggers count what each new task waits for
                ops.insert_edges((t, dep, stamp) for t, deps in wanted.items() for dep in deps)
                tasks = [self._require(t.id) if t.depends_on else t for t in tasks]
        return tasks

    def depend(self, task_id: str, on: str, actor: str | None = None) -> Task:
        """Make `task_id` wait until `on` is done; returns the task.

        TaskNotFound for an unknown task, DependencyCycle when `on` already waits
        (directly or not) for `task_id`; nothing is written then. Depending on a done
        task is satisfied at once; depending again on the same task changes nothing.
        """
        on = check_text("on", on)
        with self.memory.transaction():
            task = self._require(task_id)
            if on in task.depends_on:
                self._require(on)
                return task
            if task.status in self.machine.held or task.status in self._done:
                raise DependencyError(
                    f"task {task_id} is {task.status}: only a task that has not started"
                    f" or has failed can gain a dependency (it can move to:"
                    f" {', '.join(self.machine.allowed(task.status)) or 'nothing'})"
                )
            dependencies.check_depend(self._ops, task_id, on)
            return self._change_deps(task, (*task.depends_on, on), actor, f"depends on {on}")

    def undepend(self, task_id: str, on: str, actor: str | None = None) -> Task:
        """Stop `task_id` waiting for `on`; returns the task (ready if nothing else is open)."""
        on = check_text("on", on)
        with self.memory.transaction():
            task = self._require(task_id)
            if on not in task.depends_on:
                waits = ", ".join(task.depends_on) or "nothing"
                raise DependencyError(
                    f"task {task_id} does not depend on {on}; it depends on: {waits}"
                )
            deps = tuple(d for d in task.depends_on if d != on)
            return self._change_deps(task, deps, actor, f"no longer depends on {on}")

    def _change_deps(self, task: Task, deps: tuple[str, ...], actor: str | None, note: str) -> Task:
        """Write the relations and the log triple of a dependency change (in a transaction)."""
        stamp = utcnow()
        added = [d for d in deps if d not in task.depends_on]
        for gone in (d for d in task.depends_on if d not in deps):
            self._ops.delete_edge(task.id, gone)
        self._ops.insert_edges((task.id, d, stamp) for d in added)
        self.memory.append([dependencies.log_fact(task.id, deps, actor, note)], stamp)
        return self._require(task.id)

    def transition(
        self,
        task_id: str,
        to_state: str,
        expected: str | None = None,
        actor: str | None = None,
        note: str | None = None,
        result: Any = None,
        error: str | None = None,
        *,
        event: str | None = None,
        force: bool = False,
        token: int | None = None,
    ) -> Task:
        """Move a task to `to_state` in one atomic step, by the machine's event for that move.

        A move with several events (`in_progress -> pending` is a release, a failure or
        an expiry) means the first one declared unless `event` names another. Raises
        TransitionConflict if the task is not in `expected` (or is held by another
        worker than `actor`, unless `force`, which the history records),
        InvalidTransition if the machine forbids the move. An event that counts a
        failed attempt (review -> pending) goes to failed once attempts are used up.
        With `token` (the claim's `claim_token`), the move is refused (ClaimSuperseded)
        unless that claim still holds the task, forced or not.
        """
        to_state = self.machine.check_state(to_state)
        if expected is not None:
            expected = self.machine.check_state(expected)
        result_json = dump_json("result", result)

        def decide(task: Task) -> tuple[Event, str | None]:
            fencing.check_token(task, token, self.machine)
            self._check_expected(task, expected, None if force else actor)
            step = self.machine.event(task.status, to_state, event, task_id)
            if force and actor != task.owner and task.status in self.machine.held:
                return step, f"forced (held by {task.owner})" + (f": {note}" if note else "")
            return step, note

        if self._ops.claims_at_once and not self.memory.in_write:
            moved = self._move_at_once(task_id, decide, actor, result_json, error)
            if moved is not None:
                return moved
        with self.memory.transaction():
            task = self._require(task_id)
            step, why = decide(task)
            return self._apply(task, step, actor, why, result_json=result_json, error=error)

    def _move_at_once(
        self,
        task_id: str,
        decide: Callable[[Task], tuple[Event, str | None]],
        actor: str | None,
        result_json: str | None,
        error: str | None,
    ) -> Task | None:
        """A move as a read and one conditional statement (PostgreSQL: no BEGIN, no COMMIT,
        no row lock between them): its rows are appended only if the task's row, locked
        by that statement, still holds what was read and decided on. None: move it the
        usual way (the row changed meanwhile, the task has dependencies or is not there,
        the move is refused or takes a claim: that path decides and says why, under
        the row's lock)."""
        row = self._ops.peek(task_id)
        if row is None or row[len(COLUMNS)]:
            return None
        task = task_from_row(row)
        try:
            step, why = decide(task)
        except MinnaTasksError:
            return None
        if step.holder == "take":
            return None
        try:
            return self._apply(
                task, step, actor, why, result_json=result_json, error=error, expect=row
            )
        except _Changed:
            return None

    def _check_expected(self, task: Task, expected: str | None, actor: str | None) -> None:
        if expected is not None and task.status != expected:
            raise TransitionConflict(
                task.id,
                task.status,
                f"task {task.id} {is_in(task.status)}, not {expected}: it moved under you; "
                f"it can move to: {', '.join(self.machine.allowed(task.status)) or 'nothing'}",
                self.machine.allowed(task.status),
            )
        if (
            actor is not None
            and task.owner is not None
            and task.owner != actor
            and task.status in self.machine.held
        ):
            raise TransitionConflict(
                task.id,
                task.status,
                f"task {task.id} {is_in(task.status)} and held by {task.owner}, not {actor}; "
                f"move it as {task.owner} or force the move",
                self.machine.allowed(task.status),
                holder=task.owner,
            )

    def _move(
        self,
        task: Task,
        event: Event,
        effects: tuple[builtins.list[MemoryRow], dict[str, Any]],
        expect: Sequence[Any] | None = None,
    ) -> Task:
        """Append the rows of the event's effects (_effects; inside a transaction, or with
        `expect`, the row the task was read as, in one statement that writes only if the
        row still holds it, else _Changed); returns the task as it now stands."""
        rows, changes = effects
        if expect is not None:
            if event.holder == "take" or not self._ops.append_if_unchanged(expect, rows):
                raise _Changed
        elif event.holder == "take":
            # The claim's token is the id of its status row (ids only grow), written in
            # the same append (the engine learns the id as it goes): the last row.
            status_at = next(i for i, row in enumerate(rows) if row[1] == "status")
            changes["claim_token"] = self.memory.append_claim(rows, status_at, len(rows) - 1)
        else:
            self.memory.append_rows(rows)
        return make_task({**task.__dict__, **changes})

    def _effects(
        self,
        task: Task,
        event: Event,
        actor: str | None,
        note: str | None,
        *,
        lease_seconds: float = defaults.LEASE_SECONDS,
        result_json: str | None = None,
        error: str | None = None,
        attempts: int | None = None,
    ) -> tuple[builtins.list[MemoryRow], dict[str, Any]]:
        """The rows a move appends and the fields they change (a claim's last row is its
        token's, its value still to be learnt)."""
        now = now_micros()
        stamp = format_micros(now)
        tid = task.id
        rows: builtins.list[MemoryRow] = []  # whole memories rows: one executemany
        # The store writes typed values (text, integers) that the rule of fields.py keeps
        # as they are, so `changes` is what the triggers now hold, without reading it back.
        changes: dict[str, Any] = {"updated_at": stamp}
        if result_json is not None:
            rows.append((tid, "result", result_json, actor, 1.0, None, stamp))
            changes["result"] = load_json(result_json)
        if error is not None:
            error = changes["error"] = str(error)
            rows.append((tid, "error", error, actor, 1.0, None, stamp))
        if event.attempts == "reset":
            rows.append((tid, "attempts", 0, actor, 1.0, event.name, stamp))
            changes["attempts"] = 0
        elif attempts is not None and attempts != task.attempts:
            rows.append((tid, "attempts", attempts, actor, 1.0, None, stamp))
            changes["attempts"] = attempts
        to_state = event.target
        rows.append((tid, "status", to_state, actor, 1.0, note, stamp))
        changes["status"] = to_state
        changes.update(fields.implied(to_state, actor))
        # Owner and lease, as the event says: written only where the status row does not
        # already imply them (fields.py), e.g. a claim writes its lease but not its owner.
        if event.holder == "take":
            wanted: tuple[tuple[str, str | int | None], ...] = (
                ("owner", actor),
                ("lease_expires_at", _after(now, lease_seconds)),
            )
        elif event.holder == "drop":
            wanted = (("owner", None), ("lease_expires_at", None), ("claim_token", None))
        else:
            wanted = (
                ("owner", task.owner),
                ("lease_expires_at", task.lease_expires_at),
                ("claim_token", task.claim_token),
            )
        for name, value in wanted:
            if (changes[name] if name in changes else getattr(task, name)) != value:
                rows.append((tid, name, value, actor, 1.0, None, stamp))
                changes[name] = value
        if event.holder == "take":
            rows.append((tid, fencing.ATTRIBUTE, None, actor, 1.0, None, stamp))
        return rows, changes

    def _append(self, task: Task, facts: Sequence[Fact], stamp: str) -> Task:
        """Write `facts` (inside a transaction) and return `task` with them applied by the
        one rule (fields.py): the values the projection's triggers now hold, unread.
        (_move computes the same for its own typed writes, faster.)"""
        self.memory.append(facts, stamp)
        changes: dict[str, Any] = {}
        for _, attribute, value, source, _ in facts:
            fields.apply(changes, attribute, value, source)
        for name in JSON_FIELDS:
            if name in changes:
                changes[name] = load_json(changes[name])
        changes["updated_at"] = stamp
        return make_task({**task.__dict__, **changes})

    def _apply(
        self,
        task: Task,
        event: Event,
        actor: str | None,
        note: str | None,
        *,
        result_json: str | None = None,
        error: str | None = None,
        expect: Sequence[Any] | None = None,
    ) -> Task:
        """Apply one event (inside a transaction, or with `expect`, see _move). An
        attempt-counting event goes to the failed state instead of back to the queue
        once attempts are used up."""
        attempts = task.attempts
        if event.counts_attempt:
            attempts += 1
            if attempts >= task.max_attempts:
                routed = self.machine.used_up(event)
                if routed is not event:
                    used = f"attempts used up ({attempts}/{task.max_attempts})"
                    note = f"{note}; {used}" if note else used
                    event = routed
        effects = self._effects(
            task, event, actor, note, attempts=attempts, error=error, result_json=result_json
        )
        return self._move(task, event, effects, expect)

    def _held_event(self, task: Task, name: str, to_state: str | None = None) -> Event:
        """The event `name` out of the held state a task is in, or InvalidTransition."""
        found = self.machine.find(task.status, name) if task.status in self.machine.held else None
        if found is None:
            raise InvalidTransition(
                task.id,
                task.status,
                to_state or self.machine.initial,
                self.machine.allowed(task.status),
            )
        return found

    def fail(
        self,
        task_id: str,
        worker: str | None = None,
        error: str | None = None,
        note: str | None = None,
        expected: str | None = None,
        token: int | None = None,
    ) -> Task:
        """Record a failed attempt of a held task (execution error or failed verification):
        the machine's `fail` event, back to the queue or to failed once attempts are used up.
        With `token`, refused (ClaimSuperseded) unless that claim still holds the task."""
        if expected is not None:
            expected = self.machine.check_state(expected)
        with self.memory.transaction():
            task = self._require(task_id)
            fencing.check_token(task, token, self.machine)
            self._check_expected(task, expected, worker)
            step = self._held_event(task, "fail")
            return self._apply(task, step, worker, note or "attempt failed", error=error)

    def claim(
        self,
        worker: str,
        lease_seconds: float = defaults.LEASE_SECONDS,
        wait: float | None = None,
        *,
        stop: threading.Event | None = None,
    ) -> Task | None:
        """Move the next queued task (highest priority, then oldest) to the claimed state
        for `worker` with a lease. Safe across processes: each task is claimed once.

        With `wait` seconds, wait (holding no lock) for a task any process adds or
        releases; None when the time is up or `stop` is set."""
        if wait is not None:
            return waiting.next_task(self, worker, lease_seconds, wait, stop)
        worker = check_text("worker", worker)
        lease = check_lease(lease_seconds)
        step = self.machine.event(self.machine.initial, self.machine.claimed, "claim")
        if self._ops.claims_at_once:
            claimed = self._claim_at_once(worker, step, lease)
            if claimed is not None:
                return claimed
        with self.memory.transaction():
            # PostgreSQL: the first row no other claim holds (FOR UPDATE SKIP LOCKED).
            row = self._ops.next_claimable(self.machine.initial)
            if row is None:
                return None
            task = self._task(row)
            effects = self._effects(task, step, worker, "claimed", lease_seconds=lease)
            return self._move(task, step, effects)

    def _claim_at_once(self, worker: str, step: Event, lease: float) -> Task | None:
        """A claim in one statement where the engine offers it (PostgreSQL): the next
        claimable row taken and its rows appended at once, so they must not depend on
        which task it is: the event keeps the attempts and the claimed state implies the
        owner. None: claim the usual way (nothing claimable without waiting, or another
        machine)."""
        if step.attempts != "keep" or "owner" not in fields.implied(step.target, worker):
            return None
        rows, changes = self._effects(_UNHELD, step, worker, "claimed", lease_seconds=lease)
        found = self._ops.claim_next(self.machine.initial, rows)
        if found is None:
            return None
        row, changes["claim_token"] = found
        if row[len(COLUMNS)]:  # its dependencies are read in a snapshot of their own
            with self.memory.reading():
                task = self._task(row)
        else:
            task = self._task(row)
        return make_task({**task.__dict__, **changes})

    def changes(
        self, since: int | str | datetime | None = None, task_id: str | None = None
    ) -> builtins.list[Transition]:
        """Status changes after `since` (a cursor from a Transition, or a time), oldest
        first; each carries its cursor. All of them when `since` is None."""
        return feed.changes(self, since, task_id)

    def watch(
        self,
        since: int | str | datetime | None = None,
        stop: threading.Event | None = None,
        task_id: str | None = None,
    ) -> Generator[Transition, None, None]:
        """Yield status changes as any process makes them, until `stop` is set; first the
        ones after `since` (a cursor or a time), if given."""
        return feed.watch(self, since, stop, task_id)

    def heartbeat(
        self,
        task_id: str,
        worker: str,
        lease_seconds: float = defaults.LEASE_SECONDS,
        token: int | None = None,
    ) -> Task:
        """Extend the lease of a task `worker` holds; TransitionConflict if it lost it
        (ClaimSuperseded if `token` is given and another claim holds it now)."""
        worker = check_text("worker", worker)
        lease = check_lease(lease_seconds)
        with self.memory.transaction():
            task = self._require(task_id)
            fencing.check_token(task, token, self.machine)
            self._check_holder(task, worker)
            now = now_micros()
            return self._append(
                task,
                [(task_id, "lease_expires_at", _after(now, lease), worker, "heartbeat")],
                format_micros(now),
            )

    def release(
        self, task_id: str, worker: str, note: str | None = None, token: int | None = None
    ) -> Task:
        """Hand a held task back to the queue without counting an attempt (the machine's
        `release` event); with `token`, only while that claim holds it."""
        worker = check_text("worker", worker)
        with self.memory.transaction():
            task = self._require(task_id)
            fencing.check_token(task, token, self.machine)
            self._check_holder(task, worker)
            step = self._held_event(task, "release")
            return self._apply(task, step, worker, note or "released")

    def _check_holder(self, task: Task, worker: str) -> None:
        if task.status not in self.machine.held or task.owner != worker:
            holder = f"held by {task.owner}" if task.owner else "not held by anyone"
            raise TransitionConflict(
                task.id,
                task.status,
                f"task {task.id} {is_in(task.status)} and {holder}, not {worker}",
                self.machine.allowed(task.status),
            )

    def recover(self, now: datetime | str | None = None) -> builtins.list[Task]:
        """Take back tasks whose lease expired (as of `now`) by the machine's `expire` event:
        to the queue with attempts + 1, or to failed when their attempts are used up.
        Live leases are not touched."""
        stamp = to_timestamp(now) if now is not None else utcnow()
        held = self.machine.held
        with self.memory.transaction():
            # PostgreSQL: lock the rows (a concurrent recover or move waits, then finds the
            # task no longer expired).
            recovered = []
            for row in self._ops.expired(held, stamp):
                task = self._task(row)
                note = f"lease of {task.owner or 'nobody'} expired at {task.lease_expires_at}"
                step = self._held_event(task, "expire")
                recovered.append(self._apply(task, step, "recover", note, error=note))
        return recovered

    def retry(self, task_id: str, actor: str | None = None, note: str | None = None) -> Task:
        """Give a failed task a fresh start (the machine's `retry` event): failed -> the
        queue, attempts back to 0."""
        if self.machine.failed is None:
            raise MissingRole("failed", "retry")
        task = self._require(task_id)
        if task.status != self.machine.failed:
            raise NotRetryable(
                task.id, task.status, self.machine.failed, self.machine.allowed(task.status)
            )
        return self.transition(
            task_id,
            self.machine.initial,
            expected=self.machine.failed,
            actor=actor,
            note=note or "retry",
            event="retry",
        )

    def remember(
        self,
        entity: str,
        attribute: str,
        value: str | int | float | None,
        source: str | None = "user",
        confidence: float = 1.0,
        context: str | None = None,
    ) -> int:
        """`MinnaMemory.store` for fronts (MCP, CLI), refusing a task's own fields: those
        change only through the guarded methods above, or a raw write could bypass the
        state machine (e.g. set a pending task's status to completed)."""
        with self.memory.transaction():
            own = attribute in TASK_ATTRIBUTES or attribute == dependencies.LOG_ATTRIBUTE
            if own and self._row(entity) is not None:
                raise TaskFieldProtected(entity, attribute)
            return self.memory.store(entity, attribute, value, source, confidence, context)

    # -- bulk history (JSON import) -------------------------------------------

    def restore(
        self,
        records: Sequence[Mapping[str, Any]],
        on_conflict: str = "error",
    ) -> builtins.list[str]:
        """Write tasks with their full triple history exactly as given, all or nothing.

        Each record: {id, created_at, facts: [{attribute, value, source, context,
        created_at}, ...]} in log order. Returns the ids written.
        """
        if on_conflict not in defaults.ON_CONFLICT:
            raise ValueError("on_conflict must be 'error', 'skip' or 'replace'")
        written: builtins.list[str] = []
        ops = self._ops
        with self.memory.transaction():
            seen: set[str] = set()
            for record in records:
                task_id = record["id"]
                if task_id in seen:
                    raise ValueError(f"task {task_id!r} appears twice in the records")
                seen.add(task_id)
                owner = ops.id_owner(task_id)
                if owner is not None and owner != ENTITY_TYPE:
                    raise id_taken(ops, task_id)  # never skipped, never replaced
                if owner is not None:
                    if on_conflict == "skip":
                        continue
                    if on_conflict == "error":
                        raise TaskExists(task_id)
                    ops.delete_task(task_id)
                written.append(task_id)
            keep = set(written)
            chosen = (
                records if len(keep) == len(records) else [r for r in records if r["id"] in keep]
            )
            # Bulk order as in _insert: the triples first (no projection row yet for the
            # triggers to update), then each task's finished row, then the entities.
            try:
                self._restore_rows(chosen)
            except (OverflowError, UnicodeEncodeError) as e:
                # A value SQLite cannot keep: say which task and triple (nothing is written).
                raise unstorable.refusal(chosen) or e from None
            dependencies.restore_edges(ops, chosen, utcnow())
        return written

    def _restore_rows(self, chosen: Sequence[Mapping[str, Any]]) -> None:
        """restore's bulk writes (in its transaction): triples, projection rows, entities."""
        self.memory.append_rows(
            (
                r["id"],
                f["attribute"],
                f["value"],
                f.get("source"),
                1.0,
                f.get("context"),
                f["created_at"],
            )
            for r in chosen
            for f in r["facts"]
        )
        self._ops.insert_tasks(
            (replayed_row(r["id"], r["created_at"], r["facts"]) for r in chosen),
            [(r["id"], r["created_at"]) for r in chosen],
        )

    def facts(self, task_id: str) -> builtins.list[dict[str, Any]]:
        """Every triple of a task in log order (for export)."""
        with self.memory.reading():
            self._require(task_id)
            return self._ops.facts(task_id)


def _added(deps: Sequence[str]) -> str:
    return f"depends on {', '.join(deps)}"


def _check_fits(ops: TaskOperations, machine: StateMachine) -> None:
    """Refuse a machine that lacks a state some task is in (MachineInUse)."""
    stranded = {
        state: count for state, count in ops.counts().items() if state not in machine.states
    }
    if stranded:
        raise MachineInUse(stranded)


class _Changed(Exception):
    """A move in one statement found the task's row changed since it was read."""


# The task a claim in one statement plans for: any queued task nobody holds (only what
# _effects reads of it for a claim). Its rows' entity is the task the engine claims.
_UNHELD = make_task({"id": "", "attempts": 0, "owner": None, "lease_expires_at": None})


def _after(now: int, seconds: float) -> str:
    """The timestamp `seconds` after `now` (microseconds since the epoch)."""
    return format_micros(now + round(seconds * 1_000_000))
