"""The SQLite file under a Minna memory: opening it safely, its schema, its transactions."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Self

from ...defaults import DB_PATH
from ...errors import (
    MinnaTasksError,
    StoreBusy,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreReadOnly,
)
from . import commits, fulltext
from .changes import SqliteFeed
from .locking import OnWait, begin_immediate, enter_wal
from .schema import (
    FTS_MIGRATIONS,
    MIGRATIONS,
    OWN_TABLES,
    SCHEMA_VERSION,
    run_migration,
    statements,
)

if TYPE_CHECKING:
    from ..base import TaskOperations

DEFAULT_PATH = DB_PATH  # defined once, in minna_tasks/defaults.py
SQLITE_HEADER = b"SQLite format 3\x00"
DEFAULT_TIMEOUT = 30.0
SYNCHRONOUS = ("NORMAL", "FULL")


# Forks of this process so far (counted in the child): the connection property compares
# a counter on every call instead of asking the kernel for the pid (a move uses it 4 times).
_forks = 0


def _count_fork() -> None:
    global _forks
    _forks += 1
    _held_files.clear()  # the child holds no SQLite locks until it reopens


# Database files this process has open, by (device, inode): their header is not read
# again with a file object of our own, because closing any descriptor of a file drops
# every POSIX lock the process holds on it, SQLite's included. Another process could
# then checkpoint and delete the WAL under our open connections ("disk I/O error").
_held_files: dict[tuple[int, int], int] = {}
_held_lock = threading.Lock()


def _file_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _held_here(path: Path) -> bool:
    key = _file_key(str(path))
    with _held_lock:
        return key is not None and _held_files.get(key, 0) > 0


def _hold(path: str) -> tuple[int, int] | None:
    key = None if path == ":memory:" else _file_key(path)
    if key is not None:
        with _held_lock:
            _held_files[key] = _held_files.get(key, 0) + 1
    return key


def _release(key: tuple[int, int] | None) -> None:
    if key is None:
        return
    with _held_lock:
        count = _held_files.get(key, 0) - 1
        if count > 0:
            _held_files[key] = count
        else:
            _held_files.pop(key, None)


os.register_at_fork(after_in_child=_count_fork)


class Database:
    """One SQLite file shared safely with other tools: its connection, schema and
    transactions.

    Every connection uses WAL and a busy timeout; writes go through short
    `BEGIN IMMEDIATE` transactions. The schema version lives in `PRAGMA
    user_version`; a file with a newer schema, a foreign table of one of our
    names, or no SQLite header is refused before anything is written.
    """

    engine = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_PATH,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        synchronous: str = "NORMAL",
        readonly: bool = False,
    ) -> None:
        if synchronous.upper() not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}")
        self.path = os.fspath(path)
        self.timeout = float(timeout)
        self.synchronous = synchronous.upper()
        self._lock = threading.RLock()
        self._depth = 0
        self._unindexed = 0
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._forks = _forks
        self.commit_key = (
            f":memory:{id(self)}" if self.path == ":memory:" else commits.file_key(self.path)
        )
        self._signal = commits.signal_for(self.commit_key)  # taken again after a fork
        # Called once a write has waited a second for another writer's lock (the CLI says so).
        self.on_wait: OnWait | None = None
        self.readonly = readonly or (self.path != ":memory:" and _is_readonly(self.path))
        self._held: tuple[int, int] | None = None
        self._prepare_path()
        self._open()
        self._held = _hold(self.path)

    # -- connection -------------------------------------------------------

    def _prepare_path(self) -> None:
        if self.path == ":memory:":
            return
        path = Path(self.path)
        if path.is_dir():
            raise StoreError(f"{self.path} is a directory, not a database file", self.path)
        if path.exists() and not _held_here(path):
            with path.open("rb") as f:
                head = f.read(len(SQLITE_HEADER))
            if head and head != SQLITE_HEADER:
                raise StoreError(f"{self.path} is not a SQLite database", self.path)
            if not head and self.readonly:
                raise StoreError(f"{self.path} is empty: not a database yet", self.path)
        elif self.readonly:
            raise StoreError(f"{self.path} does not exist", self.path)
        else:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create {path.parent}: {e.strerror}", self.path) from e

    def _open(self) -> None:
        try:
            if self.readonly:
                uri = Path(self.path).absolute().as_uri() + "?mode=ro" + _immutable(self.path)
                conn = sqlite3.connect(
                    uri,
                    uri=True,
                    timeout=self.timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
            else:
                conn = sqlite3.connect(
                    self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
                )
        except sqlite3.Error as e:
            raise StoreError(f"cannot open {self.path}: {e}", self.path) from e
        self._conn = conn
        self._pid = os.getpid()
        self._forks = _forks
        try:
            self._check_schema(conn)
            if not self.readonly:
                # Only now, with the file known to be ours (or empty), change its mode
                # (the busy timeout is already set: sqlite3.connect sets it).
                enter_wal(conn, self.timeout)
                conn.execute(f"PRAGMA synchronous={self.synchronous}")
                conn.execute("PRAGMA foreign_keys=ON")
                self._migrate(conn)
                self.ensure_component("memories_fts", FTS_MIGRATIONS)
        except sqlite3.DatabaseError as e:
            conn.close()
            self._conn = None
            raise _translate(e, self.path) from e
        except BaseException:
            conn.close()
            self._conn = None
            raise

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        """Refuse files that are not ours before anything is written to them."""
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path} is not a SQLite database ({e})", self.path) from e
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this minna-tasks "
                f"supports ({SCHEMA_VERSION}); upgrade minna-tasks to use it",
                self.path,
            )
        for table, needed in OWN_TABLES.items():
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if columns and not needed <= columns:
                raise StoreError(
                    f"{self.path} has a table {table!r} that is not a Minna memory table "
                    f"(missing columns: {', '.join(sorted(needed - columns))})",
                    self.path,
                )
        if self.readonly and version < SCHEMA_VERSION:
            raise StoreReadOnly(
                f"{self.path} is read-only and has schema version {version}; "
                f"open it writable once to upgrade it to {SCHEMA_VERSION}",
                self.path,
            )

    def _migrate(self, conn: sqlite3.Connection) -> None:
        if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        with self.transaction():
            # Re-read under the write lock: another process may have migrated.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for step in range(version, SCHEMA_VERSION):
                triggers = conn.execute(
                    "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"
                ).fetchall()
                for statement in statements(MIGRATIONS[step]):
                    conn.execute(statement)
                _restore_triggers(conn, triggers, MIGRATIONS[step])
                conn.execute(f"PRAGMA user_version={step + 1}")

    def ensure_component(self, name: str, migrations: Sequence[str]) -> None:
        """Apply numbered migrations of a layer built on this store (e.g. the task index).

        Its version is kept in `schema_components`, with the same refusal of a
        version newer than the code.
        """
        conn = self.connection

        def current() -> int:
            row = conn.execute(
                "SELECT version FROM schema_components WHERE name = ?", (name,)
            ).fetchone()
            return 0 if row is None else int(row[0])

        def refuse_newer(version: int) -> None:
            if version > len(migrations):
                raise StoreError(
                    f"{self.path} has {name} schema version {version}, newer than this "
                    f"minna-tasks supports ({len(migrations)}); upgrade minna-tasks to use it",
                    self.path,
                )

        version = current()
        refuse_newer(version)
        if version == len(migrations):
            return
        if self.readonly:
            raise StoreReadOnly(
                f"{self.path} is read-only and its {name} schema is at version {version}; "
                "open it writable once to upgrade it",
                self.path,
            )
        with self.transaction():
            version = current()
            refuse_newer(version)
            for step in range(version, len(migrations)):
                run_migration(conn, migrations[step])
            conn.execute(
                "INSERT INTO schema_components (name, version) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET version = excluded.version",
                (name, len(migrations)),
            )

    @property
    def connection(self) -> sqlite3.Connection:
        """This process's connection; reopened after a fork, never shared across one."""
        if self._conn is None:
            raise StoreError(f"{self.path} is closed", self.path)
        if self._forks != _forks:  # a fork happened since we opened: check the pid
            # A connection inherited through fork() must not be used: open our own.
            if self._pid == os.getpid():
                self._forks = _forks  # we are the parent
            else:
                self._conn = None
                self._depth = 0
                self._lock = threading.RLock()
                self._signal = commits.signal_for(self.commit_key)  # the child's signals
                self._open()
                assert self._conn is not None
        return self._conn

    def close(self) -> None:
        _release(self._held)
        self._held = None
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    def transaction(self) -> _Transaction:
        """One atomic write transaction (`BEGIN IMMEDIATE`); nested calls join it.

        A nested block runs in a savepoint, so an error caught inside the outer
        block undoes only the nested part.
        """
        return _Transaction(self)

    @property
    def in_write(self) -> bool:
        """True inside a write transaction."""
        return self._depth > 0

    def serialize(self, name: str) -> None:
        """Inside a write transaction: wait for other writers serialized under `name`.
        Nothing to do on SQLite, whose write transactions already run one at a time."""

    def for_update(self, skip_locked: bool = False) -> str:
        """The clause a read of rows about to change ends with: none on SQLite, where the
        write transaction already excludes every other writer."""
        return ""

    @cached_property
    def task_ops(self) -> TaskOperations:
        """The task operations on this engine (engines/sqlite/tasks.py)."""
        from .tasks import SqliteTasks

        return SqliteTasks(self)

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A consistent read snapshot (a deferred transaction) unless a write is open."""
        with self._lock:
            conn = self.connection
            if self._depth:
                yield conn
                return
            try:
                conn.execute("BEGIN")
                self._depth = 1
                try:
                    yield conn
                finally:
                    self._depth = 0
                    _rollback(conn)
            except sqlite3.DatabaseError as e:
                raise _translate(e, self.path) from e

    def change_feed(self) -> SqliteFeed:
        """This engine's change detection and status feed (engines/feed.py)."""
        return SqliteFeed(self.path, self.timeout, commits.signal_for(self.commit_key))


def _restore_triggers(
    conn: sqlite3.Connection, triggers: Sequence[tuple[str, str, str]], migration: str
) -> None:
    """Re-create the triggers a migration dropped by rebuilding their table (other layers'
    triggers on `memories`, e.g. the task projection's); one it drops by name stays gone."""
    schema = conn.execute("SELECT type, name FROM sqlite_master").fetchall()
    left = {name for kind, name in schema if kind == "trigger"}
    tables = {name for kind, name in schema if kind == "table"}
    dropped = {
        name.lower()
        for name in re.findall(r"DROP\s+TRIGGER\s+(?:IF\s+EXISTS\s+)?(\w+)", migration, re.I)
    }
    for name, table, sql in triggers:
        if name not in left and table in tables and name.lower() not in dropped and sql:
            conn.execute(sql)


class _Transaction:
    """The context manager of Database.transaction(): a class, not a generator, because
    it wraps every task move and a generator-based one costs three times as much."""

    __slots__ = ("changes", "db", "lock", "savepoint")

    def __init__(self, db: Database) -> None:
        self.db = db
        self.lock = db._lock  # the one we take (a fork replaces db._lock: see connection)
        self.savepoint: str | None = None
        self.changes = 0

    def __enter__(self) -> sqlite3.Connection:
        db = self.db
        self.lock.acquire()
        try:
            conn = db.connection
            if db.readonly:
                raise StoreReadOnly(f"{db.path} is read-only; nothing was written", db.path)
            if db._depth:
                self.savepoint = f"minna_{db._depth}"
                conn.execute(f"SAVEPOINT {self.savepoint}")
                db._depth += 1
                return conn
            try:
                begin_immediate(conn, db.timeout, db.on_wait)
            except sqlite3.DatabaseError as e:
                raise _translate(e, db.path) from e
            db._depth = 1
            self.changes = conn.total_changes
            return conn
        except BaseException:
            self.lock.release()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: object
    ) -> None:
        db = self.db
        try:
            conn = db.connection
            if self.savepoint is not None:
                try:
                    if kind is not None:
                        conn.execute(f"ROLLBACK TO {self.savepoint}")
                    conn.execute(f"RELEASE {self.savepoint}")
                finally:
                    db._depth -= 1
                return
            try:
                if kind is not None:
                    _rollback(conn)
                    if isinstance(error, sqlite3.DatabaseError):
                        raise _translate(error, db.path) from error
                    return
                try:
                    # Look at the index backlog only every FTS_BATCH of our own changes (rows
                    # and the triggers' updates): two queries per commit cost ~10% of a move.
                    db._unindexed += conn.total_changes - self.changes
                    if db._unindexed >= fulltext.FTS_BATCH:
                        fulltext.index_backlog(conn, fulltext.FTS_BATCH)
                        db._unindexed = 0
                    conn.execute("COMMIT")
                    if conn.total_changes != self.changes:
                        db._signal.bump()  # wake this process's waiters
                except sqlite3.DatabaseError as e:
                    _rollback(conn)
                    raise _translate(e, db.path) from e
                except BaseException:
                    _rollback(conn)
                    raise
            finally:
                db._depth = 0
        finally:
            self.lock.release()


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _is_readonly(path: str) -> bool:
    """True when the file exists and we may not write it (or its folder, for the WAL).

    A file with no write permission bits counts as read-only even for root, who
    could write it anyway: the mode says what its owner wants.
    """
    if not os.path.exists(path):
        return False
    folder = os.path.dirname(os.path.abspath(path))
    no_write_bits = not os.stat(path).st_mode & 0o222
    return no_write_bits or not os.access(path, os.W_OK) or not os.access(folder, os.W_OK)


def _immutable(path: str) -> str:
    """`&immutable=1` for a WAL file we may only read in a folder we may not write.

    SQLite cannot open such a file read-only without its `-shm` (it would have to
    create one); with no `-wal` content there is nothing the shm would index, so the
    main file alone is the whole database.
    """
    with open(path, "rb") as f:
        head = f.read(20)
    wal_mode = len(head) == 20 and head[18:20] == b"\x02\x02"
    folder = os.path.dirname(os.path.abspath(path))
    # As in _is_readonly, a folder with no write bits counts as read-only even for root.
    writable = os.access(folder, os.W_OK) and os.stat(folder).st_mode & 0o222
    if not wal_mode or os.path.exists(path + "-shm") or writable:
        return ""
    if os.path.exists(path + "-wal") and os.path.getsize(path + "-wal") > 0:
        raise StoreError(
            f"{path} has unmerged changes in {path}-wal but no {path}-shm, and its folder "
            "is read-only: it cannot be read consistently; open it once where it is writable",
            path,
        )
    return "&immutable=1"


def _translate(error: sqlite3.DatabaseError, path: str) -> MinnaTasksError:
    """Turn SQLite's errors into ours by their (extended) result code, never by the words
    of the message, which may quote a table, column or value named "locked" or "full"."""
    text = str(error)
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreBusy(
            f"{path} is busy: another process held the write lock too long; nothing was written",
            path,
        )
    if primary == sqlite3.SQLITE_FULL:
        return StoreFull(f"{path} is full ({text}); nothing was written", path)
    if primary == sqlite3.SQLITE_READONLY:
        return StoreReadOnly(f"{path} is read-only; nothing was written", path)
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return StoreCorrupt(f"{path} is not a usable SQLite database ({text})", path)
    if primary == sqlite3.SQLITE_CANTOPEN:
        return StoreError(f"cannot open {path} ({text})", path)
    return StoreError(f"{path}: {text}", path)
