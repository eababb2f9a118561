"""MinnaMemory: the documented Minna memory API on one SQLite file.

`minna-memory` is not published on the package index, so this package
implements its documented surface: `database` opens the file safely and runs
transactions, `schema` holds the numbered migrations, `fulltext` the FTS5
search, `values` the timestamps and value checks, and `api` the MinnaMemory
class itself.
"""

from .api import MinnaMemory
from .database import DEFAULT_PATH, DEFAULT_TIMEOUT, Database
from .schema import MIGRATIONS, SCHEMA_VERSION
from .values import Value, to_timestamp, utcnow

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_TIMEOUT",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Database",
    "MinnaMemory",
    "Value",
    "to_timestamp",
    "utcnow",
]
