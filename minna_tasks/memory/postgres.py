"""MinnaMemory on PostgreSQL: `MinnaMemory("postgresql://...")` builds one of these.

Every memory method is MinnaMemory's own, over the PostgreSQL connection and
transactions of engines/postgres and PostgreSQL's memory operations
(engines/postgres/memories.py).
"""

from __future__ import annotations

from functools import cached_property

from ..engines.base import TaskOperations
from ..engines.memories import MemoryOperations
from ..engines.postgres.database import PostgresDatabase
from ..engines.postgres.memories import PostgresMemories


class PostgresMemory(PostgresDatabase):
    """Mixed in before a MinnaMemory class (see `postgres_class`)."""

    @cached_property
    def memory_ops(self) -> MemoryOperations:
        """The memory operations on this engine (engines/postgres/memories.py)."""
        return PostgresMemories(self)

    @cached_property
    def task_ops(self) -> TaskOperations:
        """The task operations on this engine (engines/postgres/tasks.py)."""
        from ..engines.postgres.tasks import PostgresTasks

        return PostgresTasks(self)


_CLASSES: dict[type, type] = {}


def postgres_class(base: type) -> type:
    """`base` (MinnaMemory or a subclass) on PostgreSQL: the same name, the engine mixed in."""
    if base not in _CLASSES:
        _CLASSES[base] = type(
            base.__name__, (PostgresMemory, base), {"__module__": base.__module__}
        )
    return _CLASSES[base]
