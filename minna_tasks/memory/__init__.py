"""MinnaMemory: the documented Minna memory API on one SQLite file.

`minna-memory` is not published on the package index, so this package
implements its documented surface, engine-free: `values` the timestamps and value
checks, `records` the records it returns, `context` session summaries and
preferences, `api` the MinnaMemory class itself and `postgres` the PostgreSQL
engine mixed into it. Their SQL is each engine's memory operations
(engines/memories.py); the SQLite file under them (opening it safely, its
transactions, its numbered migrations) is engines/sqlite/database.py and
schema.py, whose `Database`, `MIGRATIONS` and defaults are re-exported here.
"""

from ..engines.sqlite.database import DEFAULT_PATH, DEFAULT_TIMEOUT, Database
from ..engines.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from .api import ENTITY_TYPES, MinnaMemory, check_entity_type
from .records import Entity, Memory, SessionSummary
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
