"""One exception tree: every error minna-tasks raises derives from MinnaTasksError."""

from __future__ import annotations

from collections.abc import Iterable


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
        self, task_id: str | None, state: str, to_state: str, allowed: Iterable[str]
    ) -> None:
        self.task_id = task_id
        self.state = state
        self.to_state = to_state
        self.allowed = tuple(allowed)
        subject = f"task {task_id} is {state}" if task_id else f"state {state}"
        super().__init__(
            f"cannot move {task_id or 'a task'} from {state} to {to_state}: "
            f"{subject}; {_moves(self.allowed)}"
        )


class UnknownState(MinnaTasksError, ValueError):
    """A state name the machine does not know."""

    def __init__(self, state: str, known: Iterable[str]) -> None:
        self.state = state
        self.known = tuple(known)
        super().__init__(f"unknown state {state!r}; known states: {', '.join(self.known)}")


class TransitionConflict(MinnaTasksError):
    """The task moved under you: its state or owner is not what the caller expected."""

    def __init__(self, task_id: str, state: str, message: str, allowed: Iterable[str] = ()) -> None:
        self.task_id = task_id
        self.state = state
        self.allowed = tuple(allowed)
        super().__init__(message)


class InvalidStateMachine(MinnaTasksError, ValueError):
    """A custom StateMachine definition is inconsistent."""


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
