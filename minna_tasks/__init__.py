"""minna-tasks: durable, auditable task state for AI agents on a Minna memory file."""

from typing import TYPE_CHECKING

from .errors import (
    AliasTaken,
    ClaimSuperseded,
    DependencyCycle,
    DependencyError,
    EntityTypeConflict,
    IdTaken,
    ImportFormatError,
    InvalidStateMachine,
    InvalidTransition,
    MachineInUse,
    MachineMismatch,
    MemoryNotFound,
    MinnaTasksError,
    MissingRole,
    StoreBusy,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreReadOnly,
    TaskExists,
    TaskFieldProtected,
    TaskNotFound,
    TransitionConflict,
    UnknownEntityType,
    UnknownState,
)
from .events import Event
from .memory import MinnaMemory
from .records import Task, Transition
from .states import StateMachine, TaskState
from .store import TaskStore

if TYPE_CHECKING:
    from .loop import state_machine_loop

__version__ = "0.2.0"


def __getattr__(name: str) -> object:
    """The loop (and the logging it brings) loads when first asked for, so a command
    that only reads the store does not pay for it."""
    if name == "state_machine_loop":
        from .loop import state_machine_loop

        return state_machine_loop
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "DependencyCycle",
    "DependencyError",
    "AliasTaken",
    "ClaimSuperseded",
    "EntityTypeConflict",
    "Event",
    "IdTaken",
    "ImportFormatError",
    "InvalidStateMachine",
    "InvalidTransition",
    "MachineInUse",
    "MachineMismatch",
    "MemoryNotFound",
    "MinnaMemory",
    "MinnaTasksError",
    "MissingRole",
    "StateMachine",
    "StoreBusy",
    "StoreCorrupt",
    "StoreError",
    "StoreFull",
    "StoreReadOnly",
    "Task",
    "TaskExists",
    "TaskFieldProtected",
    "TaskNotFound",
    "TaskState",
    "TaskStore",
    "Transition",
    "TransitionConflict",
    "UnknownEntityType",
    "UnknownState",
    "state_machine_loop",
]
