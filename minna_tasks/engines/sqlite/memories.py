"""SQLite's memory operations (engines/memories.py): the SQL MinnaMemory runs.

Written in the subset SQLite and PostgreSQL share (`?` parameters), so the PostgreSQL
implementation (engines/postgres/memories.py) inherits all of it, through its dialect's
translation, but full-text search and the few spellings named on the class below.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..base import Connected
from ..memories import (
    COUNTED_TABLES,
    ENTITY_COLUMNS,
    MEMORY_COLUMNS,
    RELATION_SIDES,
    ROW_COLUMNS,
    MemoryRecord,
    MemoryRow,
    Value,
)
from . import fulltext

INSERT_MEMORY = (
    f"INSERT INTO memories ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join('?' * len(ROW_COLUMNS))})"
)
SELECT_MEMORIES = f"SELECT {', '.join(MEMORY_COLUMNS)} FROM memories"
_E_COLUMNS = ", ".join(f"e.{c}" for c in ENTITY_COLUMNS)
SELECT_ENTITIES = f"SELECT {', '.join(ENTITY_COLUMNS)} FROM entities"
ENTITY_NAMED = f"{SELECT_ENTITIES} WHERE name = ?"
ENTITY_NAMED_OR_ALIASED = (
    f"{ENTITY_NAMED} UNION ALL SELECT {_E_COLUMNS}"
    " FROM entities e JOIN entity_aliases a ON a.entity_id = e.id WHERE a.alias = ? LIMIT 1"
)
# The count of each counted table, one statement per table (constant names).
COUNT_SQL = {table: f"SELECT count(*) FROM {table}" for table in COUNTED_TABLES}


class SqliteMemories:
    """The memory's storage operations on a SQLite engine (see MemoryOperations)."""

    def __init__(self, db: Connected) -> None:
        self.db = db

    # What another engine spells differently (constants, spliced into the shared SQL):
    # how a value is told apart from another in conflicting() (quote() keeps its type),
    # a match that ignores case (SQLite's LIKE does), and how text is ordered (SQLite
    # compares bytes, whatever the locale).
    DISTINCT_VALUE = "quote(m.value)"
    LIKE = "LIKE"
    BYTEWISE = ""

    # -- the fact log -------------------------------------------------------

    def append(self, row: MemoryRow) -> int:
        return int(self.db.connection.execute(INSERT_MEMORY, row).lastrowid or 0)

    def append_many(self, rows: Iterable[MemoryRow]) -> None:
        self.db.connection.executemany(INSERT_MEMORY, rows)

    def append_claim(self, rows: Sequence[MemoryRow], status: int, token: int) -> int:
        # The rows up to the status row, the status row alone to learn its id, the rest.
        conn = self.db.connection
        if status:
            conn.executemany(INSERT_MEMORY, rows[:status])
        found = int(conn.execute(INSERT_MEMORY, rows[status]).lastrowid or 0)
        rest = list(rows[status + 1 :])
        e, a, _, s, c, ctx, at = rest[token - status - 1]
        rest[token - status - 1] = (e, a, found, s, c, ctx, at)
        conn.executemany(INSERT_MEMORY, rest)
        return found

    def current(self, entity: str, attribute: str) -> Value:
        row = self.db.connection.execute(
            "SELECT value FROM memories WHERE entity = ? AND attribute = ?"
            " ORDER BY id DESC LIMIT 1",
            (entity, attribute),
        ).fetchone()
        return None if row is None else row[0]

    def recall(self, entity: str | None, attribute: str | None) -> Iterator[MemoryRecord]:
        where, args = [], []
        if entity is not None:
            where.append("entity = ?")
            args.append(entity)
        if attribute is not None:
            where.append("attribute = ?")
            args.append(attribute)
        sql = SELECT_MEMORIES
        if where:
            sql += " WHERE " + " AND ".join(where)
        return iter(self.db.connection.execute(sql + " ORDER BY id DESC", args))

    def search(self, query: str, limit: int) -> list[MemoryRecord]:
        return fulltext.search(self.db.connection, query, limit)

    def verify(self, memory_id: int, stamp: str) -> bool:
        cursor = self.db.connection.execute(
            "UPDATE memories SET verified_at = ? WHERE id = ?", (stamp, memory_id)
        )
        return bool(cursor.rowcount)

    def conflicting(
        self, entity: str | None, attribute: str | None, skip_type: str
    ) -> list[tuple[str, str]]:
        where = [
            "NOT EXISTS (SELECT 1 FROM entities e WHERE e.name = m.entity AND e.entity_type = ?)"
        ]
        args = [skip_type]
        if entity is not None:
            where.append("m.entity = ?")
            args.append(entity)
        if attribute is not None:
            where.append("m.attribute = ?")
            args.append(attribute)
        rows = self.db.connection.execute(
            "SELECT m.entity, m.attribute FROM memories m WHERE "
            + " AND ".join(where)
            + f" GROUP BY m.entity, m.attribute HAVING count(DISTINCT {self.DISTINCT_VALUE}) > 1"
            f" ORDER BY m.entity{self.BYTEWISE}, m.attribute{self.BYTEWISE}",
            args,
        ).fetchall()
        return [(str(name), str(attr)) for name, attr in rows]

    def values(self, entity: str, attribute: str) -> list[tuple[int, Value]]:
        rows = self.db.connection.execute(
            "SELECT id, value FROM memories WHERE entity = ? AND attribute = ? ORDER BY id",
            (entity, attribute),
        ).fetchall()
        return [(int(memory_id), value) for memory_id, value in rows]

    def counts(self) -> dict[str, int]:
        return {
            table: int(self.db.connection.execute(sql).fetchone()[0])
            for table, sql in COUNT_SQL.items()
        }

    def entity_types(self) -> dict[str, int]:
        rows = self.db.connection.execute(
            "SELECT entity_type, count(*) FROM entities GROUP BY entity_type"
            f" ORDER BY entity_type{self.BYTEWISE}"
        ).fetchall()
        return {str(kind): int(count) for kind, count in rows}

    # -- entities and relations ----------------------------------------------

    def entity(self, name: str, by_alias: bool = True) -> dict[str, Any] | None:
        conn = self.db.connection
        if by_alias:
            row = conn.execute(ENTITY_NAMED_OR_ALIASED, (name, name)).fetchone()
        else:
            row = conn.execute(ENTITY_NAMED, (name,)).fetchone()
        return None if row is None else _entity(row)

    def add_entity(
        self, name: str, entity_type: str, aliases: Sequence[str], created_at: str
    ) -> int:
        cursor = self.db.connection.execute(
            "INSERT INTO entities (name, entity_type, aliases, created_at) VALUES (?, ?, ?, ?)",
            (name, entity_type, json.dumps(list(aliases)), created_at),
        )
        return int(cursor.lastrowid or 0)

    def set_aliases(self, entity_id: int, aliases: Sequence[str]) -> None:
        self.db.connection.execute(
            "UPDATE entities SET aliases = ? WHERE id = ?", (json.dumps(list(aliases)), entity_id)
        )

    def alias_owner(self, alias: str) -> int | None:
        row = self.db.connection.execute(
            "SELECT entity_id FROM entity_aliases WHERE alias = ?", (alias,)
        ).fetchone()
        return None if row is None else int(row[0])

    def claim_alias(self, alias: str, entity_id: int) -> None:
        self.db.connection.execute(
            "INSERT OR IGNORE INTO entity_aliases (alias, entity_id) VALUES (?, ?)",
            (alias, entity_id),
        )

    def find_entities(
        self, pattern: str | None, entity_type: str | None, limit: int
    ) -> list[dict[str, Any]]:
        where, args = [], []
        if pattern is not None:
            like = "%" + pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append(
                f"(e.name {self.LIKE} ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM entity_aliases a"
                f" WHERE a.entity_id = e.id AND a.alias {self.LIKE} ? ESCAPE '\\'))"
            )
            args += [like, like]
        if entity_type is not None:
            where.append("e.entity_type = ?")
            args.append(entity_type)
        sql = f"SELECT {_E_COLUMNS} FROM entities e"
        if where:
            sql += " WHERE " + " AND ".join(where)
        order = f" ORDER BY e.name{self.BYTEWISE}, e.id LIMIT ?"
        rows = self.db.connection.execute(sql + order, [*args, limit]).fetchall()
        return [_entity(row) for row in rows]

    def of_type(self, names: Sequence[str], entity_type: str) -> list[str]:
        marks = ", ".join("?" * len(names))
        rows = self.db.connection.execute(
            f"SELECT name FROM entities WHERE name IN ({marks}) AND entity_type = ?"
            f" ORDER BY name{self.BYTEWISE}",
            [*names, entity_type],
        ).fetchall()
        return [str(row[0]) for row in rows]

    def relate(self, from_entity: str, to_entity: str, rel_type: str, at: str) -> int:
        cursor = self.db.connection.execute(
            "INSERT INTO relations (from_entity, to_entity, rel_type, created_at)"
            " VALUES (?, ?, ?, ?)",
            (from_entity, to_entity, rel_type, at),
        )
        return int(cursor.lastrowid or 0)

    def relations(
        self, names: Sequence[str], direction: str, rel_type: str | None
    ) -> list[dict[str, Any]]:
        sides = RELATION_SIDES[direction]
        marks = ", ".join("?" * len(names))
        where = " OR ".join(f"{side} IN ({marks})" for side in sides)
        args: list[str] = [n for _ in sides for n in names]
        if rel_type is not None:
            where = f"({where}) AND rel_type = ?"
            args.append(rel_type)
        cursor = self.db.connection.execute(
            "SELECT id, from_entity, to_entity, rel_type, created_at FROM relations"
            f" WHERE {where} ORDER BY id",
            args,
        )
        return list(dict_rows(cursor))

    # -- sessions and preferences ----------------------------------------------

    def add_session(
        self,
        session_id: str,
        summary: str,
        topics: Sequence[str],
        entity_ids: Sequence[int | str],
        created_at: str,
    ) -> int:
        cursor = self.db.connection.execute(
            "INSERT INTO sessions (session_id, summary, topics, entity_ids, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                session_id,
                summary,
                json.dumps(list(topics)),
                json.dumps(list(entity_ids)),
                created_at,
            ),
        )
        return int(cursor.lastrowid or 0)

    def sessions(self, limit: int) -> list[dict[str, Any]]:
        cursor = self.db.connection.execute(
            "SELECT id, session_id, summary, topics, entity_ids, created_at FROM sessions"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        rows = list(dict_rows(cursor))
        for row in rows:
            row["topics"] = json.loads(row["topics"])
            row["entity_ids"] = json.loads(row["entity_ids"])
        return rows

    def set_preference(self, category: str, key: str, value: Value, updated_at: str) -> None:
        self.db.connection.execute(
            "INSERT INTO preferences (category, key, value, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (category, key) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at",
            (category, key, value, updated_at),
        )

    def preference(self, category: str, key: str) -> tuple[Value] | None:
        row = self.db.connection.execute(
            "SELECT value FROM preferences WHERE category = ? AND key = ?", (category, key)
        ).fetchone()
        return None if row is None else (row[0],)

    def preferences(self, category: str | None) -> list[dict[str, Any]]:
        sql, args = "SELECT category, key, value, updated_at FROM preferences", []
        if category is not None:
            sql, args = sql + " WHERE category = ?", [category]
        order = f" ORDER BY category{self.BYTEWISE}, key{self.BYTEWISE}"
        return list(dict_rows(self.db.connection.execute(sql + order, args)))


def _entity(row: Iterable[Any]) -> dict[str, Any]:
    entity = dict(zip(ENTITY_COLUMNS, row, strict=True))
    entity["aliases"] = json.loads(entity["aliases"])
    return entity


def dict_rows(cursor: Any) -> Iterator[dict[str, Any]]:
    """A cursor's rows as {column: value} dicts."""
    names = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))
