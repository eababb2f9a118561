"""The storage seam: what `MinnaMemory` and `TaskStore` need from an engine.

The store's SQL is written once, in the subset SQLite and PostgreSQL share (SQLite's
`?` parameters; engines/postgres/dialect.py translates). Everything else that differs
between engines is behind this interface: how a connection is opened and migrated,
what a read snapshot and a write transaction are, how a row about to change is locked
(nothing on SQLite, whose writers take turns; FOR UPDATE, and SKIP LOCKED for claims,
on PostgreSQL), full-text search, and how a waiting worker learns of a change.

`engines.sqlite.database.Database` (SQLite) and `engines.postgres.database.PostgresDatabase`
implement it; tests/test_postgres.py checks both against this protocol.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from .feed import ChangeFeed
from .memories import MemoryOperations


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


class Connected(Protocol):
    """What an engine's task operations use of the engine itself."""

    @property
    def connection(self) -> Any: ...

    def transaction(self) -> AbstractContextManager[Any]: ...

    def for_update(self, skip_locked: bool = False) -> str: ...

    def ensure_component(self, name: str, migrations: Sequence[str]) -> None: ...


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

    @property
    def memory_ops(self) -> MemoryOperations:
        """The memory operations on this engine (`MinnaMemory` runs all its SQL through
        them; full-text search is one)."""

    @property
    def task_ops(self) -> TaskOperations:
        """The task operations on this engine (`TaskStore` runs all its SQL through them)."""

    def change_feed(self) -> ChangeFeed:
        """Change detection for waiting and the status feed (engines/feed.py)."""

    def close(self) -> None: ...


@runtime_checkable
class TaskOperations(Protocol):
    """What `TaskStore` needs from an engine, by operation: the engine's SQL for tasks.

    Every method runs inside the caller's read snapshot or write transaction
    (`Engine.reading()` / `Engine.transaction()`); rows are the projection's
    (engines/task_schema.py COLUMNS, then the dependency count). `TaskStore` keeps the
    rules (the state machine, the fields rule, checks, errors). SQLite's are
    engines/sqlite/tasks.py, PostgreSQL's engines/postgres/tasks.py.
    """

    # reading tasks
    def load(self, task_id: str) -> Any:
        """The task's row, locked for the write transaction it is read in; or None."""

    def next_claimable(self, initial: str) -> Any:
        """The next ready row in claim order that no other claim holds; or None."""

    # Whether claim_next and append_if_unchanged write in one statement (PostgreSQL;
    # SQLite writes in one write transaction anyway, whose statements cost no round trips).
    claims_at_once: bool

    def claim_next(self, initial: str, rows: Sequence[Any]) -> tuple[Any, int] | None:
        """Outside a transaction, or inside one: take the next claimable row (as
        next_claimable) and append `rows` for it (memories rows, their entity the task
        claimed, the first its status row, the last its token row: the value being the
        status row's id), in one statement, its own transaction when none is open.
        (row, token); None when no row was free (claim the usual way then)."""

    def peek(self, task_id: str) -> Any:
        """The task's row read as one statement of its own (no lock; or in the open
        transaction); None when there is no such task."""

    def append_if_unchanged(self, row: Sequence[Any], rows: Sequence[Any]) -> bool:
        """Append memories `rows` (their entity the task's) in one statement, only if the
        task's projection row, locked by it, still holds `row` (as peek read it): False
        when it does not (or the engine cannot: claims_at_once False)."""

    def queue(self, initial: str, limit: int | None) -> list[Any]: ...

    def rows(
        self,
        statuses: Sequence[str] | None,
        owner: str | None,
        limit: int | None,
        ready_in: str | None = None,
        blocked_in: str | None = None,
    ) -> Iterator[Any]: ...

    def expired(self, held: Sequence[str], stamp: str) -> list[Any]:
        """Held rows whose lease expired before `stamp`, locked (never skipped)."""

    def earliest_lease(self, held: Sequence[str]) -> str | None:
        """The earliest lease end of the tasks in a `held` state ('' when one of them has
        none); None when no task is held."""

    def counts(self) -> dict[str, int]: ...

    def readiness(self, initial: str) -> tuple[int, int]: ...

    def task_exists(self, task_id: str) -> bool: ...

    def queue_indexed(self, initial: str) -> bool:
        """Whether the claim index covers the ready tasks in `initial`."""

    def index_queue(self, initial: str) -> bool:
        """Make the claim index cover the machine's queue state; True if it was rebuilt."""

    def ensure_schema(self) -> None:
        """Bring the task projection's schema to this code's version (the engine's own
        numbered migrations); refuse a newer one."""

    def ensure_views(self) -> None:
        """Make the task views current (on a writable open); a no-op where migrations
        keep them."""

    # history and as-of reads
    def status_log(self, task_id: str, log_attribute: str) -> list[Any]: ...

    def triples_until(self, task_id: str, stamp: str) -> list[Any]: ...

    def created_at(self, task_id: str) -> str | None: ...

    def status_at(self, task_id: str, stamp: str) -> str | None: ...

    def facts(self, task_id: str) -> list[dict[str, Any]]: ...

    # writing tasks (their triples go through the memory's append)
    def next_seq(self) -> int: ...

    def insert_tasks(
        self, rows: Iterable[Sequence[Any]], stamps: Sequence[tuple[str, str]]
    ) -> None: ...

    def delete_task(self, task_id: str) -> None: ...

    # names other tools use
    def id_owner(self, name: str) -> str | None: ...

    def owners(self, names: Sequence[str]) -> dict[str, str]: ...

    # the state machine the file holds
    def machine_definition(self) -> str | None: ...

    def record_machine(
        self, definition: str, actor: str | None, note: str | None, stamp: str
    ) -> None: ...

    # dependencies (reads, writes, recount)
    def edges_of(self, task_id: str) -> list[tuple[str, str | None]]: ...

    def depends_on(self, task_id: str) -> list[str]: ...

    def dependents(self, task_id: str) -> list[str]: ...

    def all_edges(self) -> list[tuple[str, str]]: ...

    def open_edges(self, done: Sequence[str]) -> list[tuple[str, str]]: ...

    def blocked_ids(self, initial: str) -> list[str]: ...

    def insert_edges(self, edges: Iterable[tuple[str, str, str]]) -> None: ...

    def delete_edge(self, task_id: str, on: str) -> int: ...

    def delete_edges_from(self, task_ids: Sequence[str]) -> None: ...

    def done_states(self) -> set[str]: ...

    def set_done_states(self, states: Sequence[str]) -> None:
        """Make these the done states and recount every counted task."""

    def count_errors(self) -> list[tuple[str, int, int, int, int]]: ...
