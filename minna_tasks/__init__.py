"""minna-tasks: durable, auditable task state for AI agents on a Minna memory file."""

from .errors import (
    DependencyCycle,
    DependencyError,
    InvalidStateMachine,
    InvalidTransition,
    MinnaTasksError,
    StoreBusy,
    StoreError,
    StoreFull,
    TaskExists,
    TaskNotFound,
    TransitionConflict,
    UnknownState,
)
from .loop import state_machine_loop
from .memory import MinnaMemory
from .records import Task, Transition
from .states import StateMachine, TaskState
from .store import TaskStore

__version__ = "0.1.0"

__all__ = [
    "DependencyCycle",
    "DependencyError",
    "InvalidStateMachine",
    "InvalidTransition",
    "MinnaMemory",
    "MinnaTasksError",
    "StateMachine",
    "StoreBusy",
    "StoreError",
    "StoreFull",
    "Task",
    "TaskExists",
    "TaskNotFound",
    "TaskState",
    "TaskStore",
    "Transition",
    "TransitionConflict",
    "UnknownState",
    "state_machine_loop",
]
