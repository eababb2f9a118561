"""A PostgreSQL database under a Minna memory: connection, schema and transactions,
with the same surface as the SQLite `Database` (transaction, reading, ensure_component).

Writes run under an explicitly set READ COMMITTED (never the server's default: under
SERIALIZABLE, contention turns into serialization-failure storms); claims take the
next row with FOR UPDATE SKIP LOCKED and guarded moves lock the task's row. The
password of the URL never leaves this module: `path` is the masked URL.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Self

from ...errors import MinnaTasksError, StoreBusy, StoreError, StoreReadOnly
from ...install_hint import postgres_install_hint
from .. import mask_url
from .dialect import MANY_ROWS, adapt, many, translate

if TYPE_CHECKING:
    from .changes import PostgresFeed

# Connections inherited through fork(): kept referenced so the child never closes the
# parent's socket by garbage-collecting them.
_INHERITED: list[Any] = []

# libpq's PGRES_TUPLES_OK: a statement that returns rows (possibly none).
_TUPLES_OK = 2


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise StoreError(
            f"the PostgreSQL backend needs psycopg: {postgres_install_hint()}", ""
        ) from None
    return psycopg


class Cursor:
    """The part of sqlite3.Cursor the store uses, over a psycopg cursor."""

    def __init__(self, cursor: Any, lastrowid: int | None) -> None:
        self._cursor = cursor
        self.lastrowid = lastrowid

    @property
    def description(self) -> list[tuple[str, ...]] | None:
        d = self._cursor.description
        return None if d is None else [(c.name,) for c in d]

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    @property
    def _has_rows(self) -> bool:
        # psycopg's `description` builds a Column per column at every access (~40 us
        # for a task row): ask the result itself whether it returned rows.
        res = self._cursor.pgresult
        return bool(res is not None and (res.nfields or res.status == _TUPLES_OK))

    def fetchone(self) -> Any:
        return self._cursor.fetchone() if self._has_rows else None

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall()) if self._has_rows else []

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor) if self._has_rows else iter(())


class Connection:
    """The part of sqlite3.Connection the store uses: execute and executemany with the
    store's SQLite-flavoured SQL, translated (see dialect.py)."""

    def __init__(self, conn: Any, where: str) -> None:
        self.raw = conn
        self.where = where

    def execute(self, sql: str, params: Any = None) -> Cursor:
        statement = translate(sql)
        cursor = self.raw.cursor()
        try:
            cursor.execute(statement.sql, adapt(statement, params) if params is not None else None)
        except Exception as e:
            raise translate_error(e, self.where) from e
        lastrowid = None
        if statement.returns_id:
            row = cursor.fetchone()
            lastrowid = None if row is None else int(row[0])
        return Cursor(cursor, lastrowid)

    def executemany(self, sql: str, rows: Any) -> None:
        statement = translate(sql)
        values = [adapt(statement, row) for row in rows]
        try:
            with self.raw.cursor() as cursor:
                if statement.head and not isinstance(values[0] if values else None, dict):
                    for i in range(0, len(values), MANY_ROWS):
                        chunk = values[i : i + MANY_ROWS]
                        flat = [v for row in chunk for v in row]
                        cursor.execute(many(statement, len(chunk)), flat)
                else:
                    text = statement.sql.removesuffix(" RETURNING id")
                    cursor.executemany(text, values)
        except Exception as e:
            raise translate_error(e, self.where) from e


class PostgresDatabase:
    """A Minna memory on a PostgreSQL database (see the module docstring).

    Mixed in before MinnaMemory by MinnaMemory("postgresql://..."): it replaces the
    SQLite connection, transactions and migrations, and keeps every memory method.
    """

    engine = "postgresql"

    def __init__(
        self,
        path: str,
        *,
        timeout: float = 30.0,
        synchronous: str = "NORMAL",
        readonly: bool = False,
    ) -> None:
        self.url = str(path)
        self.path = mask_url(self.url)
        self.timeout = float(timeout)
        self.synchronous = synchronous.upper()
        self.readonly = readonly
        self.on_wait: Any = None  # SQLite's lock-wait hook; row waits here are lock_timeout
        self._lock = threading.RLock()
        self._depth = 0
        self._write = False
        self._unindexed = 0
        self._conn: Connection | None = None
        self._pid = os.getpid()
        # A change listener's connection between waits (listen.py), with its process id.
        self._listener: tuple[int, Any] | None = None
        self._listener_lock = threading.Lock()
        self._open()

    # -- connection -------------------------------------------------------

    def _connect(self) -> Any:
        psycopg = _psycopg()
        try:
            return psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=max(1, int(self.timeout)),
                application_name="minna-tasks",
            )
        except psycopg.Error as e:
            raise StoreError(
                f"cannot connect to {self.path}: {_message(e, self.url)}", self.path
            ) from None

    def _open(self) -> None:
        raw = self._connect()
        self._conn = Connection(raw, self.path)
        self._pid = os.getpid()
        try:
            # Bounded waits for row locks, so a stuck holder surfaces as StoreBusy.
            raw.execute(f"SET lock_timeout = '{int(self.timeout * 1000)}ms'")
            # For the writes that are one statement (a claim: one_statement()), set here
            # as the transaction() sets it: never the server's default.
            raw.execute("SET default_transaction_isolation = 'read committed'")
            if self.synchronous == "NORMAL":
                pass  # the server's synchronous_commit applies
            self._migrate()
        except BaseException:
            raw.close()
            self._conn = None
            raise

    @property
    def connection(self) -> Connection:
        """This process's connection; reopened after a fork, never shared across one."""
        if self._conn is None:
            raise StoreError(f"{self.path} is closed", self.path)
        if self._pid != os.getpid():
            _INHERITED.append(self._conn)
            self._conn = None
            self._depth = 0
            self._lock = threading.RLock()
            self._open()
            assert self._conn is not None
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.raw.close()
            self._conn = None
        listener = self.take_listener()
        if listener is not None:
            listener.close()

    def take_listener(self) -> Any:
        """The connection a change listener left for the next one, or None (see listen.py);
        never one inherited through fork()."""
        with self._listener_lock:
            kept, self._listener = self._listener, None
        if kept is None:
            return None
        pid, conn = kept
        if pid != os.getpid():
            _INHERITED.append(conn)
            return None
        return conn

    def keep_listener(self, conn: Any) -> bool:
        """Keep a listener's connection (its LISTEN undone) for the next wait; False when
        one is kept already or the memory is closed (the caller closes it then)."""
        with self._listener_lock:
            if self._listener is not None or self._conn is None:
                return False
            self._listener = (os.getpid(), conn)
            return True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    # -- transactions -------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One atomic write transaction at READ COMMITTED; nested calls join it (savepoint)."""
        with self._lock:
            conn = self.connection
            if self.readonly:
                raise StoreReadOnly(f"{self.path} is read-only; nothing was written", self.path)
            if self._depth:
                if not self._write:
                    raise StoreError(f"{self.path}: a write inside a read snapshot", self.path)
                name = f"minna_{self._depth}"
                conn.raw.execute(f"SAVEPOINT {name}")
                self._depth += 1
                try:
                    yield conn
                except BaseException:
                    conn.raw.execute(f"ROLLBACK TO SAVEPOINT {name}")
                    conn.raw.execute(f"RELEASE SAVEPOINT {name}")
                    raise
                else:
                    conn.raw.execute(f"RELEASE SAVEPOINT {name}")
                finally:
                    self._depth -= 1
                return
            self._begin(conn, "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE")
            self._depth, self._write = 1, True
            try:
                yield conn
                try:
                    conn.raw.execute("COMMIT")
                except Exception as e:
                    raise translate_error(e, self.path) from e
            except BaseException:
                _rollback(conn)
                raise
            finally:
                self._depth, self._write = 0, False

    @contextmanager
    def one_statement(self) -> Iterator[Connection]:
        """A write that is one statement: inside the open write transaction, or its own
        (autocommit, under the READ COMMITTED set at connect), sparing BEGIN and COMMIT."""
        with self._lock:
            conn = self.connection
            if self.readonly:
                raise StoreReadOnly(f"{self.path} is read-only; nothing was written", self.path)
            if self._depth and not self._write:
                raise StoreError(f"{self.path}: a write inside a read snapshot", self.path)
            yield conn

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A consistent read snapshot (REPEATABLE READ, read only) unless a write is open."""
        with self._lock:
            conn = self.connection
            if self._depth:
                yield conn
                return
            self._begin(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            self._depth = 1
            try:
                yield conn
            finally:
                self._depth = 0
                _rollback(conn)

    def _begin(self, conn: Connection, sql: str) -> None:
        try:
            conn.raw.execute(sql)
        except Exception as e:
            raise translate_error(e, self.path) from e

    @property
    def in_write(self) -> bool:
        """True inside a write transaction (where reads of a task lock its row)."""
        return self._depth > 0 and self._write

    def for_update(self, skip_locked: bool = False) -> str:
        """Inside a write transaction, the clause that locks the rows read (a claim skips
        rows another transaction holds); none in a read snapshot."""
        if not self.in_write:
            return ""
        return " FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE"

    def serialize(self, name: str) -> None:
        """Inside a write transaction: wait for any other transaction serialized under the
        same name (an advisory lock released at commit), as SQLite's one writer does."""
        self.connection.raw.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))

    def change_feed(self) -> PostgresFeed:
        """This engine's change detection and status feed (engines/feed.py)."""
        from .changes import PostgresFeed

        return PostgresFeed(self)

    # -- schema ---------------------------------------------------------------

    def _migrate(self) -> None:
        from . import schema

        version = self._version("memory")
        if version > schema.SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this minna-tasks "
                f"supports ({schema.SCHEMA_VERSION}); upgrade minna-tasks to use it",
                self.path,
            )
        if version == schema.SCHEMA_VERSION:
            return
        self._run_migrations("memory", schema.MIGRATIONS, version)

    def _version(self, name: str) -> int:
        raw = self.connection.raw
        try:
            row = raw.execute("SELECT to_regclass('schema_components') IS NOT NULL").fetchone()
            if not row or not row[0]:
                return 0
            row = raw.execute(
                "SELECT version FROM schema_components WHERE name = %s", (name,)
            ).fetchone()
        except Exception as e:
            raise translate_error(e, self.path) from e
        return 0 if row is None else int(row[0])

    def _run_migrations(self, name: str, migrations: Sequence[str], seen: int) -> None:
        """Apply migrations[seen:] under an advisory lock (one migrator at a time)."""
        if self.readonly:
            raise StoreReadOnly(
                f"{self.path} is read-only and its {name} schema is at version {seen}; "
                "open it writable once to upgrade it",
                self.path,
            )
        from . import schema

        psycopg = _psycopg()
        with self.transaction() as conn:
            raw = conn.raw
            try:
                raw.execute("SELECT pg_advisory_xact_lock(%s)", (schema.MIGRATION_LOCK,))
                raw.execute(schema.BOOTSTRAP)
                row = raw.execute(
                    "SELECT version FROM schema_components WHERE name = %s", (name,)
                ).fetchone()
                version = 0 if row is None else int(row[0])
                if version > len(migrations):
                    raise StoreError(
                        f"{self.path} has {name} schema version {version}, newer than this "
                        f"minna-tasks supports ({len(migrations)}); upgrade minna-tasks",
                        self.path,
                    )
                for step in range(version, len(migrations)):
                    raw.execute(migrations[step])
                raw.execute(
                    "INSERT INTO schema_components (name, version) VALUES (%s, %s)"
                    " ON CONFLICT (name) DO UPDATE SET version = excluded.version",
                    (name, len(migrations)),
                )
            except psycopg.errors.InsufficientPrivilege as e:
                user = raw.info.user
                raise StoreError(
                    f"{self.path}: the {name} schema is at version {seen} and needs "
                    f"migrating to {len(migrations)}, which role {user!r} may not do "
                    f"({_message(e, self.url)}); open the store once as a role that may "
                    "create tables (e.g. `minna-tasks --db URL init`)",
                    self.path,
                ) from None

    def ensure_component(self, name: str, migrations: Sequence[str]) -> None:
        """Apply a layer's numbered migrations (PostgreSQL's own DDL for that layer,
        e.g. the task projection); the same versioning and refusal of a newer one."""
        from . import schema

        own = schema.COMPONENTS.get(name)
        if own is None:
            raise StoreError(f"{self.path}: no PostgreSQL schema for component {name!r}", "")
        version = self._version(name)
        if version > len(own):
            raise StoreError(
                f"{self.path} has {name} schema version {version}, newer than this "
                f"minna-tasks supports ({len(own)}); upgrade minna-tasks to use it",
                self.path,
            )
        if version < len(own):
            self._run_migrations(name, own, version)


def _rollback(conn: Connection) -> None:
    try:
        conn.raw.execute("ROLLBACK")
    except Exception:  # noqa: S110 - a broken connection has nothing to roll back
        pass


def _message(error: BaseException, url: str) -> str:
    """psycopg's message, first line, with the URL's password masked should it appear."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text.replace(url, mask_url(url))


def translate_error(error: BaseException, where: str) -> MinnaTasksError | BaseException:
    """psycopg's errors as ours (by SQLSTATE, never by the words of the message)."""
    try:
        import psycopg
    except ImportError:
        return error
    if isinstance(error, MinnaTasksError) or not isinstance(error, psycopg.Error):
        return error
    sqlstate = getattr(error, "sqlstate", None) or ""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if sqlstate in ("55P03", "40P01", "40001"):  # lock timeout, deadlock, serialization
        return StoreBusy(f"{where} is busy: {text}; nothing was written", where)
    if sqlstate == "25006":
        return StoreReadOnly(f"{where} is read-only; nothing was written", where)
    if sqlstate == "42501":
        return StoreError(f"{where}: permission denied ({text})", where)
    if isinstance(error, psycopg.OperationalError):
        return StoreError(f"{where}: the connection failed ({text})", where)
    return StoreError(f"{where}: {text}", where)
