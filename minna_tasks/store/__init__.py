"""TaskStore: tasks as Minna entities, guarded state moves, leases, history and as-of.

`task_store` holds the TaskStore class, `fields` the rule from triples to a task's
fields, `rows` a projection row <-> Task, `names` the checks on task ids against
names other tools use. The `task_current` table's SQL is each engine's
(engines/sqlite/projection.py, engines/postgres/schema.py); its names are re-exported
here as before.
"""

from ..engines.sqlite.projection import QUEUE_SQL, TASK_MIGRATIONS
from ..engines.task_schema import COLUMNS, ENTITY_TYPE, TASK_ATTRIBUTES
from .machines import file_machine
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
