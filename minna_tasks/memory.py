"""MinnaMemory: the documented Minna memory API on one SQLite file.

`minna-memory` is not published on the package index, so this module implements
its documented surface. Facts are entity/attribute/value triples in an
append-only `memories` table: a new value is a new row, recall is newest first,
and history is never lost.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import MinnaTasksError, StoreBusy, StoreError, StoreFull

DEFAULT_PATH = ".spine/minna.db"
SQLITE_HEADER = b"SQLite format 3\x00"
DEFAULT_TIMEOUT = 30.0

Value = str | int | float | None

# Numbered migrations: MIGRATIONS[n] takes the file from version n to n + 1.
# PRAGMA user_version records how many have run.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS memories (
        id INTEGER PRIMARY KEY,
        entity TEXT NOT NULL,
        attribute TEXT NOT NULL,
        value,
        source TEXT,
        confidence REAL NOT NULL DEFAULT 1.0,
        context TEXT,
        created_at TEXT NOT NULL,
        verified_at TEXT
    );
    -- The current value of (entity, attribute) is one index seek: no history scan.
    CREATE INDEX IF NOT EXISTS memories_entity_attribute
        ON memories (entity, attribute, id);
    CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5 (
        entity, attribute, value, content='memories', content_rowid='id'
    );
    CREATE TRIGGER IF NOT EXISTS memories_fts_insert AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts (rowid, entity, attribute, value)
        VALUES (new.id, new.entity, new.attribute, new.value);
    END;
    CREATE TRIGGER IF NOT EXISTS memories_fts_delete AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, entity, attribute, value)
        VALUES ('delete', old.id, old.entity, old.attribute, old.value);
    END;
    CREATE TABLE IF NOT EXISTS entities (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        entity_type TEXT NOT NULL,
        aliases TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS entity_aliases (
        alias TEXT PRIMARY KEY,
        entity_id INTEGER NOT NULL REFERENCES entities (id) ON DELETE CASCADE
    );
    CREATE TABLE IF NOT EXISTS relations (
        id INTEGER PRIMARY KEY,
        from_entity TEXT NOT NULL,
        to_entity TEXT NOT NULL,
        rel_type TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS relations_from ON relations (from_entity, rel_type);
    CREATE INDEX IF NOT EXISTS relations_to ON relations (to_entity, rel_type);
    CREATE TABLE IF NOT EXISTS sessions (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        summary TEXT NOT NULL,
        topics TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS preferences (
        key TEXT PRIMARY KEY,
        value,
        category TEXT NOT NULL DEFAULT 'general',
        updated_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS schema_components (
        name TEXT PRIMARY KEY,
        version INTEGER NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

# The memory store's own component migrations (versions kept in schema_components).
# 1: the full-text index is filled in batches (see MinnaMemory._index_fts), not by a
# trigger per insert: that trigger wrote one FTS5 segment per commit, more than half
# the cost of a task transition. `indexed_upto` is the highest memory id already in
# the index; search() reads the rows above it from a temporary index.
FTS_MIGRATIONS: tuple[str, ...] = (
    """
    DROP TRIGGER IF EXISTS memories_fts_insert;
    DROP TRIGGER IF EXISTS memories_fts_delete;
    CREATE TABLE IF NOT EXISTS memories_fts_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        indexed_upto INTEGER NOT NULL
    );
    INSERT OR IGNORE INTO memories_fts_state (id, indexed_upto)
    SELECT 1, coalesce(max(id), 0) FROM memories;
    -- Only indexed rows are deleted from the index. Deleting the newest rows lowers the
    -- mark, because SQLite reuses the ids above the largest remaining one.
    CREATE TRIGGER IF NOT EXISTS memories_fts_delete AFTER DELETE ON memories
    WHEN old.id <= (SELECT indexed_upto FROM memories_fts_state WHERE id = 1) BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, entity, attribute, value)
        VALUES ('delete', old.id, old.entity, old.attribute, old.value);
        UPDATE memories_fts_state SET indexed_upto = (SELECT coalesce(max(id), 0) FROM memories)
        WHERE id = 1 AND indexed_upto > (SELECT coalesce(max(id), 0) FROM memories);
    END;
    """,
)

# Tables this module owns, with the columns it relies on. A file that has a table
# of the same name with other columns belongs to another tool: we refuse it.
OWN_TABLES: dict[str, set[str]] = {
    "memories": {
        "id",
        "entity",
        "attribute",
        "value",
        "source",
        "confidence",
        "context",
        "created_at",
        "verified_at",
    },
    "entities": {"id", "name", "entity_type", "aliases", "created_at"},
    "relations": {"id", "from_entity", "to_entity", "rel_type", "created_at"},
    "sessions": {"id", "session_id", "summary", "topics", "created_at"},
    "preferences": {"key", "value", "category", "updated_at"},
}

SYNCHRONOUS = ("NORMAL", "FULL")

# Unindexed memories at which a committing write transaction brings the full-text index
# up to date: the index lags by fewer rows than this, and search() covers the lag.
FTS_BATCH = 128


def utcnow() -> str:
    """The current time as UTC ISO-8601 text with microseconds (sorts as text)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def to_timestamp(when: datetime | str) -> str:
    """Normalise a datetime (naive means UTC) or ISO text to our timestamp text."""
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when)
        except ValueError:
            raise ValueError(f"not an ISO-8601 time: {when!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def _check_name(kind: str, name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{kind} must be a string, not {type(name).__name__}")
    if not name.strip():
        raise ValueError(f"{kind} must not be empty")
    if "\x00" in name:
        raise ValueError(f"{kind} must not contain NUL characters")
    if not _is_utf8(name):
        raise ValueError(f"{kind} is not valid UTF-8 text")
    return name


def _is_utf8(text: str) -> bool:
    """False for text holding lone surrogates (a non-UTF-8 argv), which SQLite cannot store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_value(value: object) -> Value:
    if value is None or isinstance(value, str | int | float):
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise ValueError(
                f"a memory value must fit in a 64-bit integer, not {value} (store it as text)"
            )
        if isinstance(value, str) and not _is_utf8(value):
            raise ValueError("a memory value is not valid UTF-8 text")
        return value
    raise TypeError(
        f"a memory value must be str, int, float or None, not {type(value).__name__}"
        " (encode structured values as JSON)"
    )


def _fts_query(query: str) -> str:
    """Quote every word so user text never reaches FTS5 as query syntax."""
    words = query.split()
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def _decayed(confidence: float, since: str, half_life_days: float, now: datetime) -> float:
    age_days = (now - datetime.fromisoformat(since)).total_seconds() / 86400.0
    return float(confidence * 0.5 ** (max(age_days, 0.0) / half_life_days))


class MinnaMemory:
    """An entity/attribute/value memory on SQLite, shared safely with other tools.

    Every connection uses WAL and a busy timeout; writes go through short
    `BEGIN IMMEDIATE` transactions. The schema version lives in `PRAGMA
    user_version`; a file with a newer schema is refused before anything is
    written.
    """

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
        self.readonly = readonly or (self.path != ":memory:" and _is_readonly(self.path))
        self._prepare_path()
        self._open()

    # -- connection -------------------------------------------------------

    def _prepare_path(self) -> None:
        if self.path == ":memory:":
            return
        path = Path(self.path)
        if path.is_dir():
            raise StoreError(f"{self.path} is a directory, not a database file", self.path)
        if path.exists():
            with path.open("rb") as f:
                head = f.read(len(SQLITE_HEADER))
            if head and head != SQLITE_HEADER:
                raise StoreError(f"{self.path} is not a SQLite database", self.path)
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
                uri = Path(self.path).absolute().as_uri() + "?mode=ro"
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
        try:
            self._check_schema(conn)
            if not self.readonly:
                # Only now, with the file known to be ours (or empty), change its mode.
                conn.execute("PRAGMA journal_mode=WAL")
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
            raise StoreError(
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
                for statement in _statements(MIGRATIONS[step]):
                    conn.execute(statement)
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
            raise StoreError(
                f"{self.path} is read-only and its {name} schema is at version {version}; "
                "open it writable once to upgrade it",
                self.path,
            )
        with self.transaction():
            version = current()
            refuse_newer(version)
            for step in range(version, len(migrations)):
                for statement in _statements(migrations[step]):
                    conn.execute(statement)
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
        if self._pid != os.getpid():
            # A connection inherited through fork() must not be used: open our own.
            self._conn = None
            self._depth = 0
            self._lock = threading.RLock()
            self._open()
            assert self._conn is not None
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> MinnaMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MinnaMemory({self.path!r})"

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write transaction (`BEGIN IMMEDIATE`); nested calls join it.

        A nested block runs in a savepoint, so an error caught inside the outer
        block undoes only the nested part.
        """
        with self._lock:
            conn = self.connection
            if self.readonly:
                raise StoreError(f"{self.path} is read-only; nothing was written", self.path)
            if self._depth:
                name = f"minna_{self._depth}"
                conn.execute(f"SAVEPOINT {name}")
                self._depth += 1
                try:
                    yield conn
                except BaseException:
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
                    raise
                else:
                    conn.execute(f"RELEASE {name}")
                finally:
                    self._depth -= 1
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as e:
                raise _translate(e, self.path) from e
            self._depth = 1
            changes = conn.total_changes
            try:
                yield conn
                # Look at the index backlog only every FTS_BATCH of our own changes (rows
                # and the triggers' updates): two queries per commit cost ~10% of a move.
                self._unindexed += conn.total_changes - changes
                if self._unindexed >= FTS_BATCH:
                    self._index_fts(conn, FTS_BATCH)
                    self._unindexed = 0
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as e:
                _rollback(conn)
                raise _translate(e, self.path) from e
            except BaseException:
                _rollback(conn)
                raise
            finally:
                self._depth = 0

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

    # -- memories -----------------------------------------------------------

    def store(
        self,
        entity: str,
        attribute: str,
        value: Value,
        source: str | None = "user",
        confidence: float = 1.0,
        context: str | None = None,
    ) -> int:
        """Append one fact; returns its memory id. Older values stay in the log."""
        return self.store_many([(entity, attribute, value, source, context)], confidence)[0]

    def store_many(
        self,
        facts: Sequence[tuple[str, str, Value, str | None, str | None]],
        confidence: float = 1.0,
        created_at: str | None = None,
    ) -> list[int]:
        """Append several (entity, attribute, value, source, context) facts atomically."""
        if not 0.0 <= float(confidence) <= 1.0:
            raise ValueError("confidence must be between 0 and 1")
        stamp = created_at or utcnow()
        rows = [
            (
                _check_name("entity", e),
                _check_name("attribute", a),
                _check_value(v),
                s,
                float(confidence),
                c,
                stamp,
            )
            for e, a, v, s, c in facts
        ]
        ids: list[int] = []
        with self.transaction() as conn:
            for row in rows:
                cursor = conn.execute(
                    "INSERT INTO memories (entity, attribute, value, source, confidence,"
                    " context, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
                ids.append(int(cursor.lastrowid or 0))
        return ids

    def append(
        self,
        facts: Sequence[tuple[str, str, Value, str | None, str | None]],
        created_at: str,
        confidence: float = 1.0,
    ) -> None:
        """Append pre-checked facts inside the caller's open transaction (no savepoint)."""
        if not self._depth:
            raise RuntimeError("MinnaMemory.append needs an open transaction()")
        self.connection.executemany(
            "INSERT INTO memories (entity, attribute, value, source, confidence,"
            " context, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(e, a, v, s, confidence, c, created_at) for e, a, v, s, c in facts],
        )

    def current(self, entity: str, attribute: str) -> Value:
        """The newest value of (entity, attribute), or None: one index seek."""
        row = self.connection.execute(
            "SELECT value FROM memories WHERE entity = ? AND attribute = ?"
            " ORDER BY id DESC LIMIT 1",
            (entity, attribute),
        ).fetchone()
        return None if row is None else row[0]

    def recall(
        self,
        entity: str | None = None,
        attribute: str | None = None,
        limit: int | None = 10,
        include_decay: bool = False,
        half_life_days: float = 90,
        min_confidence: float = 0.0,
    ) -> list[dict[str, Any]]:
        """Memories matching entity and/or attribute, newest first.

        With `include_decay`, confidence halves every `half_life_days` since the
        memory was verified (or created). `limit=None` returns all.
        """
        if half_life_days <= 0:
            raise ValueError("half_life_days must be positive")
        where, args = [], []
        if entity is not None:
            where.append("entity = ?")
            args.append(entity)
        if attribute is not None:
            where.append("attribute = ?")
            args.append(attribute)
        sql = "SELECT * FROM memories"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        now = datetime.now(UTC)
        out: list[dict[str, Any]] = []
        with self.reading() as conn:
            for row in _dict_rows(conn.execute(sql, args)):
                if include_decay:
                    row["confidence"] = _decayed(
                        row["confidence"],
                        row["verified_at"] or row["created_at"],
                        half_life_days,
                        now,
                    )
                if row["confidence"] < min_confidence:
                    continue
                out.append(row)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def search(self, query: str, limit: int = 10) -> list[dict[str, Any]]:
        """Full-text search over entity, attribute and value (FTS5), best match first.

        Every memory is searched: the index is filled in batches at commit, and the
        few newest memories not in it yet are searched from a temporary index.
        """
        match = _fts_query(query)
        if not match:
            return []
        with self.reading() as conn:
            upto, top = self._fts_range(conn)
            if top <= upto:
                cursor = conn.execute(
                    "SELECT m.* FROM memories_fts JOIN memories m ON m.id = memories_fts.rowid"
                    " WHERE memories_fts MATCH ? ORDER BY rank, m.id DESC LIMIT ?",
                    (match, limit),
                )
                return list(_dict_rows(cursor))
            # The newest memories are not in the index yet: search them from a
            # temporary one (a read, so it works on read-only files too).
            conn.execute("DROP TABLE IF EXISTS temp.memories_fts_tail")
            conn.execute(
                "CREATE VIRTUAL TABLE temp.memories_fts_tail USING fts5 (entity, attribute, value)"
            )
            try:
                conn.execute(
                    "INSERT INTO temp.memories_fts_tail (rowid, entity, attribute, value)"
                    " SELECT id, entity, attribute, value FROM memories WHERE id > ?",
                    (upto,),
                )
                cursor = conn.execute(
                    "SELECT * FROM ("
                    " SELECT m.*, f.rank AS fts_rank FROM memories_fts f"
                    " JOIN memories m ON m.id = f.rowid WHERE memories_fts MATCH ?1"
                    " UNION ALL"
                    " SELECT m.*, t.rank FROM temp.memories_fts_tail t"
                    " JOIN memories m ON m.id = t.rowid WHERE memories_fts_tail MATCH ?1"
                    ") ORDER BY fts_rank, id DESC LIMIT ?2",
                    (match, limit),
                )
                rows = list(_dict_rows(cursor))
            finally:
                conn.execute("DROP TABLE IF EXISTS temp.memories_fts_tail")
        for row in rows:
            del row["fts_rank"]
        return rows

    @staticmethod
    def _fts_range(conn: sqlite3.Connection) -> tuple[int, int]:
        """(the highest memory id in the full-text index, the highest memory id)."""
        top = int(conn.execute("SELECT coalesce(max(id), 0) FROM memories").fetchone()[0])
        try:
            row = conn.execute(
                "SELECT indexed_upto FROM memories_fts_state WHERE id = 1"
            ).fetchone()
        except sqlite3.OperationalError:
            # A read-only file from before batched indexing: its trigger indexed every row.
            return top, top
        return (0 if row is None else int(row[0])), top

    def _index_fts(self, conn: sqlite3.Connection, least: int = 1) -> None:
        """Inside a write transaction: add the memories above the mark to the full-text
        index once there are `least` of them.

        One FTS5 segment for many rows instead of one per commit; rows written by
        other processes or by plain SQL are picked up too.
        """
        upto, top = self._fts_range(conn)
        if top - upto >= least:
            conn.execute(
                "INSERT INTO memories_fts (rowid, entity, attribute, value)"
                " SELECT id, entity, attribute, value FROM memories WHERE id > ? ORDER BY id",
                (upto,),
            )
            conn.execute("UPDATE memories_fts_state SET indexed_upto = ? WHERE id = 1", (top,))

    def verify(self, memory_id: int) -> None:
        """Mark a memory as verified now, which resets its decay."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE memories SET verified_at = ? WHERE id = ?", (utcnow(), memory_id)
            )
            if cursor.rowcount == 0:
                raise MinnaTasksError(f"memory {memory_id} not found")

    # -- entities and relations ---------------------------------------------

    def add_entity(self, name: str, entity_type: str, aliases: Sequence[str] | None = None) -> int:
        """Register an entity (or add aliases to an existing one); returns its id."""
        _check_name("entity name", name)
        _check_name("entity type", entity_type)
        new_aliases = [_check_name("alias", a) for a in aliases or ()]
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT id, entity_type, aliases FROM entities WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                cursor = conn.execute(
                    "INSERT INTO entities (name, entity_type, aliases, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (name, entity_type, json.dumps(new_aliases), utcnow()),
                )
                entity_id = int(cursor.lastrowid or 0)
            else:
                entity_id = int(row[0])
                if row[1] != entity_type:
                    raise MinnaTasksError(
                        f"entity {name!r} exists with type {row[1]!r}, not {entity_type!r}"
                    )
                merged = list(dict.fromkeys([*json.loads(row[2]), *new_aliases]))
                conn.execute(
                    "UPDATE entities SET aliases = ? WHERE id = ?", (json.dumps(merged), entity_id)
                )
            for alias in new_aliases:
                owner = conn.execute(
                    "SELECT entity_id FROM entity_aliases WHERE alias = ?", (alias,)
                ).fetchone()
                if owner is not None and owner[0] != entity_id:
                    raise MinnaTasksError(f"alias {alias!r} already names another entity")
                conn.execute(
                    "INSERT OR IGNORE INTO entity_aliases (alias, entity_id) VALUES (?, ?)",
                    (alias, entity_id),
                )
        return entity_id

    def get_entity(self, name_or_alias: str) -> dict[str, Any] | None:
        """The entity with this name or alias: {id, name, entity_type, aliases, created_at}."""
        row = self.connection.execute(
            "SELECT * FROM entities WHERE name = ? UNION ALL "
            "SELECT e.* FROM entities e JOIN entity_aliases a ON a.entity_id = e.id"
            " WHERE a.alias = ? LIMIT 1",
            (name_or_alias, name_or_alias),
        ).fetchone()
        if row is None:
            return None
        entity = dict(zip(("id", "name", "entity_type", "aliases", "created_at"), row, strict=True))
        entity["aliases"] = json.loads(entity["aliases"])
        return entity

    def relate(self, from_entity: str, to_entity: str, rel_type: str) -> int:
        """Record a typed relation between two entities; returns its id."""
        row = (
            _check_name("from_entity", from_entity),
            _check_name("to_entity", to_entity),
            _check_name("rel_type", rel_type),
            utcnow(),
        )
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO relations (from_entity, to_entity, rel_type, created_at)"
                " VALUES (?, ?, ?, ?)",
                row,
            )
            return int(cursor.lastrowid or 0)

    def get_relations(
        self, entity: str, rel_type: str | None = None, direction: str = "both"
    ) -> list[dict[str, Any]]:
        """Relations touching `entity` (`direction` 'out', 'in' or 'both'), oldest first."""
        if direction not in ("out", "in", "both"):
            raise ValueError("direction must be 'out', 'in' or 'both'")
        sides = {"out": ["from_entity"], "in": ["to_entity"], "both": ["from_entity", "to_entity"]}[
            direction
        ]
        where = "(" + " OR ".join(f"{side} = :entity" for side in sides) + ")"
        if rel_type is not None:
            where += " AND rel_type = :rel_type"
        cursor = self.connection.execute(
            f"SELECT * FROM relations WHERE {where} ORDER BY id",
            {"entity": entity, "rel_type": rel_type},
        )
        return list(_dict_rows(cursor))

    # -- sessions and preferences -------------------------------------------

    def summarize_session(
        self, session_id: str, summary: str, topics: Sequence[str] | None = None
    ) -> int:
        """Keep a session's summary for later context; returns its id."""
        row = (
            _check_name("session_id", session_id),
            str(summary),
            json.dumps(list(topics or [])),
            utcnow(),
        )
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO sessions (session_id, summary, topics, created_at)"
                " VALUES (?, ?, ?, ?)",
                row,
            )
            return int(cursor.lastrowid or 0)

    def get_context(self, limit: int = 5) -> list[dict[str, Any]]:
        """The newest session summaries: {session_id, summary, topics, created_at}."""
        cursor = self.connection.execute(
            "SELECT session_id, summary, topics, created_at FROM sessions ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        rows = list(_dict_rows(cursor))
        for row in rows:
            row["topics"] = json.loads(row["topics"])
        return rows

    def set_preference(self, key: str, value: Value, category: str = "general") -> None:
        """Set a user preference (the newest value wins)."""
        row = (_check_name("key", key), _check_value(value), category, utcnow())
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO preferences (key, value, category, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " category = excluded.category, updated_at = excluded.updated_at",
                row,
            )

    def get_preference(self, key: str, default: Value = None) -> Value:
        row = self.connection.execute(
            "SELECT value FROM preferences WHERE key = ?", (key,)
        ).fetchone()
        return default if row is None else row[0]

    def get_preferences(self, category: str | None = None) -> dict[str, Value]:
        sql, args = "SELECT key, value FROM preferences", []
        if category is not None:
            sql, args = sql + " WHERE category = ?", [category]
        return dict(self.connection.execute(sql + " ORDER BY key", args).fetchall())


def _statements(script: str) -> list[str]:
    """Split a migration into statements (sqlite3.complete_statement knows triggers)."""
    out, buffer = [], ""
    for line in script.splitlines(keepends=True):
        if not buffer and line.strip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            out.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        out.append(buffer.strip())
    return out


def _dict_rows(cursor: sqlite3.Cursor) -> Iterator[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))


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


def _translate(error: sqlite3.DatabaseError, path: str) -> MinnaTasksError:
    """Turn SQLite's errors into ours, with a message naming the file."""
    text = str(error)
    code = getattr(error, "sqlite_errorcode", None)
    if "locked" in text or "busy" in text or code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreBusy(
            f"{path} is busy: another process held the write lock too long; nothing was written",
            path,
        )
    if "full" in text or code == sqlite3.SQLITE_FULL:
        return StoreFull(f"{path} is full ({text}); nothing was written", path)
    if "readonly" in text or "read-only" in text:
        return StoreError(f"{path} is read-only; nothing was written", path)
    if "not a database" in text or "malformed" in text:
        return StoreError(f"{path} is not a usable SQLite database ({text})", path)
    return StoreError(f"{path}: {text}", path)
