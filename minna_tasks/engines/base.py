"""The storage seam: what `MinnaMemory` and `TaskStore` need from an engine.

The store's SQL is written once, in the subset SQLite and PostgreSQL share (SQLite's
`?` parameters; engines/postgres/dialect.py translates). Everything else that differs
between engines is behind this interface: how a connection is opened and migrated,
what a read snapshot and a write transaction are, how a row about to change is locked
(nothing on SQLite, whose writers take turns; FOR UPDATE, and SKIP LOCKED for claims,
on PostgreSQL), full-text search, and how a waiting worker learns of a change.

`memory.database.Database` (SQLite) and `engines.postgres.database.PostgresDatabase`
implement it; tests/test_postgres.py checks both against this protocol.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Cursor(Protocol):
    """The rows of one statement (sqlite3.Cursor's subset the store uses)."""

    lastrowid: int | None

    @property
    def description(self) -> Any: ...

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


@runtime_checkable
class Engine(Protocol):
    """One store's storage: a SQLite file or a PostgreSQL database."""

    engine: str  # "sqlite" or "postgresql"
    path: str  # the location as shown to people (a URL's password masked)
    readonly: bool
    timeout: float

    @property
    def connection(self) -> Any:
        """This process's connection: `execute(sql, params)` -> Cursor, `executemany`."""

    def transaction(self) -> AbstractContextManager[Any]:
        """One atomic write transaction; nested calls join it (a savepoint)."""

    def reading(self) -> AbstractContextManager[Any]:
        """A consistent read snapshot, unless a write transaction is open."""

    @property
    def in_write(self) -> bool:
        """True inside a write transaction."""

    def for_update(self, skip_locked: bool = False) -> str:
        """The clause that ends a read of rows about to change (a claim skips locked ones)."""

    def serialize(self, name: str) -> None:
        """Inside a write transaction: take turns with other writers under `name`."""

    def ensure_component(self, name: str, migrations: Sequence[str]) -> None:
        """Run a layer's numbered migrations; refuse a version newer than the code."""

    def search_rows(self, conn: Any, query: str, limit: int) -> list[dict[str, Any]]:
        """Full-text search over the memories, best first (inside a read snapshot)."""

    def close(self) -> None: ...
