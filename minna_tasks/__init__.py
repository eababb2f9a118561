"""minna-tasks: durable, auditable task state for AI agents on a Minna memory file."""

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
from .loop import state_machine_loop
from .memory import MinnaMemory
from .records import Task, Transition
from .states import StateMachine, TaskState
from .store import TaskStore

__version__ = "0.2.0"

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
