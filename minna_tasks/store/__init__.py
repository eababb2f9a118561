"""TaskStore: tasks as Minna entities, guarded state moves, leases, history and as-of.

`task_store` holds the TaskStore class, `projection` the `task_current` table
and its triggers, `names` the checks on task ids against names other tools use.
"""

from .machines import file_machine
from .projection import COLUMNS, ENTITY_TYPE, QUEUE_SQL, TASK_ATTRIBUTES, TASK_MIGRATIONS
from .task_store import TaskStore

__all__ = [
    "COLUMNS",
    "ENTITY_TYPE",
    "QUEUE_SQL",
    "TASK_ATTRIBUTES",
    "TASK_MIGRATIONS",
    "TaskStore",
    "file_machine",
]
