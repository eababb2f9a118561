"""One exception tree: every error minna-tasks raises derives from MinnaTasksError."""

from __future__ import annotations

from collections.abc import Iterable

from .wording import is_in


class MinnaTasksError(Exception):
    """Base class; the message is one line a person can act on."""


class StoreError(MinnaTasksError):
    """The database file cannot be used: not SQLite, a foreign schema, newer schema, read-only."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class StoreBusy(StoreError):
    """Another process held the write lock past the busy timeout; nothing was written."""


class StoreFull(StoreError):
    """The disk or the database's size limit is full; nothing was written."""


class StoreReadOnly(StoreError):
    """The file (or its folder, or the connection) is read-only; nothing was written."""


class StoreCorrupt(StoreError):
    """The file is not a SQLite database, or its pages are damaged."""


class TaskNotFound(MinnaTasksError, LookupError):
    """No task has this id."""

    def __init__(self, task_id: str, when: str | None = None) -> None:
        self.task_id = task_id
        self.when = when
        if when is None:
            message = f"task {task_id!r} not found"
        else:
            message = f"task {task_id!r} did not exist at {when}"
        super().__init__(message)


class TaskExists(MinnaTasksError):
    """A task with this id exists already."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"task {task_id!r} already exists")


def _moves(allowed: Iterable[str]) -> str:
    names = ", ".join(allowed)
    return f"it can move to: {names}" if names else "it is terminal and cannot move"


class InvalidTransition(MinnaTasksError):
    """The state machine does not allow this move (or the state is unknown)."""

    def __init__(
        self,
        task_id: str | None,
        state: str,
        to_state: str,
        allowed: Iterable[str],
        detail: str | None = None,
    ) -> None:
        self.task_id = task_id
        self.state = state
        self.to_state = to_state
        self.allowed = tuple(allowed)
        subject = f"task {task_id} {is_in(state)}" if task_id else f"state {state}"
        super().__init__(
            f"cannot move {task_id or 'a task'} from {state} to {to_state}: "
            + (detail if detail else f"{subject}; {_moves(self.allowed)}")
        )


class NotRetryable(InvalidTransition):
    """`retry` of a task that is not in the failed state: nothing moved, nothing to retry."""

    def __init__(self, task_id: str, state: str, failed: str, allowed: Iterable[str]) -> None:
        super().__init__(task_id, state, failed, allowed)
        MinnaTasksError.__init__(
            self,
            f"cannot retry {task_id}: task {task_id} {is_in(state)}, not {failed}; "
            f"only a {failed} task can be retried; {_moves(self.allowed)}",
        )


class UnknownState(MinnaTasksError, ValueError):
    """A state name the machine does not know."""

    def __init__(self, state: str, known: Iterable[str]) -> None:
        self.state = state
        self.known = tuple(known)
        super().__init__(f"unknown state {state!r}; known states: {', '.join(self.known)}")


class TransitionConflict(MinnaTasksError):
    """The task moved under you: its state or owner is not what the caller expected."""

    def __init__(
        self,
        task_id: str,
        state: str,
        message: str,
        allowed: Iterable[str] = (),
        holder: str | None = None,
    ) -> None:
        self.task_id = task_id
        self.state = state
        self.allowed = tuple(allowed)
        self.holder = holder  # set when the task is held by another worker than the caller
        super().__init__(message)


class InvalidStateMachine(MinnaTasksError, ValueError):
    """A custom StateMachine definition is inconsistent, or the store could not drive it."""


class MissingRole(MinnaTasksError):
    """The state machine has no state in the role an operation needs (e.g. no failed state)."""

    def __init__(self, role: str, operation: str) -> None:
        self.role = role
        super().__init__(f"this state machine has no {role} state; {operation} needs one")


class MachineMismatch(MinnaTasksError):
    """A store was opened with a state machine other than the one the file holds."""

    def __init__(self, path: str, differences: Iterable[str]) -> None:
        self.path = path
        self.differences = tuple(differences)
        super().__init__(
            f"{path} holds another state machine than the one given "
            f"({'; '.join(self.differences)}; first: the file's, second: yours); "
            "open it without a machine to use the file's, or replace_machine() to change it"
        )


class MachineInUse(MinnaTasksError):
    """A new state machine lacks states that tasks are in: replacing it would strand them."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = dict(counts)
        states = ", ".join(f"{state} ({n} task(s))" for state, n in sorted(counts.items()))
        super().__init__(
            f"cannot replace the state machine: tasks are in states the new one lacks: {states};"
            " move them first"
        )


class IdTaken(MinnaTasksError):
    """A task id that already names another tool's entity or facts."""

    def __init__(self, name: str, owner: str) -> None:
        self.name, self.owner = name, owner
        what = f"a {owner!r} entity" if owner else "facts stored by another tool"
        super().__init__(
            f"id {name!r} is already used by {what} in this memory; choose another task id"
        )


class TaskFieldProtected(MinnaTasksError):
    """A raw memory write to a task's own field, which only the task methods may change."""

    def __init__(self, task_id: str, attribute: str) -> None:
        self.task_id, self.attribute = task_id, attribute
        super().__init__(
            f"{task_id} is a task: its {attribute} changes only through the task "
            "commands (add, move, claim, heartbeat, release, retry)"
        )


class MemoryNotFound(MinnaTasksError, LookupError):
    """No memory has this id."""

    def __init__(self, memory_id: int) -> None:
        self.memory_id = memory_id
        super().__init__(f"memory {memory_id} not found")


class EntityTypeConflict(MinnaTasksError):
    """An entity exists with another type than the one asked for."""

    def __init__(self, name: str, existing: str, wanted: str) -> None:
        self.name, self.existing, self.wanted = name, existing, wanted
        super().__init__(f"entity {name!r} exists with type {existing!r}, not {wanted!r}")


class UnknownEntityType(MinnaTasksError, ValueError):
    """An entity type the Minna tools do not accept (they take the five documented ones)."""

    def __init__(self, entity_type: str, allowed: tuple[str, ...], task_type: str) -> None:
        self.entity_type, self.allowed = entity_type, allowed
        extra = " (tasks are made by the task tools)" if entity_type == task_type else ""
        super().__init__(
            f"unknown entity type {entity_type!r}{extra}; use one of: {', '.join(allowed)}"
        )


class AliasTaken(MinnaTasksError):
    """An alias that already names another entity."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        super().__init__(f"alias {alias!r} already names another entity")


class ImportFormatError(MinnaTasksError, ValueError):
    """A JSON document cannot be imported; nothing was written."""


class DependencyError(MinnaTasksError):
    """A dependency change or import the store refuses (nothing was written)."""


class DependencyCycle(DependencyError):
    """The dependency would close a cycle: the tasks could never become ready."""

    def __init__(self, cycle: Iterable[str], outcome: str = "nothing was written") -> None:
        self.cycle = tuple(cycle)
        super().__init__(
            f"dependency cycle: {' -> '.join(self.cycle)} (these tasks would wait for each"
            f" other forever); {outcome}"
        )


class ClaimSuperseded(TransitionConflict):
    """A move with a fencing token of a claim that no longer holds the task: the lease ran
    out and the task was recovered (and perhaps claimed again, even under the same name)."""

    def __init__(
        self,
        task_id: str,
        state: str,
        owner: str | None,
        token: int,
        current: int | None,
        allowed: Iterable[str] = (),
    ) -> None:
        self.owner, self.token, self.current = owner, token, current
        holder = (
            f"held by {owner} under claim {current}"
            if current is not None
            else (f"held by {owner} with no claim token" if owner else "held by nobody")
        )
        super().__init__(
            task_id,
            state,
            f"task {task_id}: claim {token} was superseded; the task is {state} and {holder}; "
            "claim it again to work on it",
            allowed,
        )
