"""MinnaMemory: the documented Minna memory API on one SQLite file.

`minna-memory` is not published on the package index, so this package
implements its documented surface: `database` opens the file safely and runs
transactions, `schema` holds the numbered migrations, `values` the timestamps
and value checks, `records` the records it returns, `context` session summaries
and preferences, and `api` the MinnaMemory class itself. Their SQL is each
engine's memory operations (engines/memories.py), not here.
"""

from .api import ENTITY_TYPES, MinnaMemory, check_entity_type
from .database import DEFAULT_PATH, DEFAULT_TIMEOUT, Database
from .records import Entity, Memory, SessionSummary
from .schema import MIGRATIONS, SCHEMA_VERSION
from .values import Value, to_timestamp, utcnow

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_TIMEOUT",
    "ENTITY_TYPES",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SessionSummary",
    "Database",
    "Entity",
    "Memory",
    "MinnaMemory",
    "Value",
    "check_entity_type",
    "to_timestamp",
    "utcnow",
]
