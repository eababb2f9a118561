"""SQLite-flavoured SQL of the memory and the store, translated for PostgreSQL.

The store's SQL is written once, in the portable subset both engines share, with
SQLite's `?` and `:name` parameters. Here it becomes psycopg's `%s` / `%(name)s`; the
few SQLite-only forms (INSERT OR IGNORE, the last row id, the catalogue) get their
PostgreSQL spelling, and a memory's or preference's `value` is sent as JSONB.
Translations are cached: the same few dozen statements run over and over.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, NamedTuple

# Tables whose rows have a BIGSERIAL id the caller may ask for (cursor.lastrowid).
ID_TABLES = frozenset({"memories", "entities", "relations", "sessions", "task_machines"})
# Tables whose `value` column is JSONB.
JSON_VALUE_TABLES = frozenset({"memories", "preferences"})

_INSERT = re.compile(
    r"^\s*INSERT\s+(?P<ignore>OR\s+IGNORE\s+)?INTO\s+(?P<table>\w+)\s*\((?P<columns>[^)]*)\)"
    r"\s*(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_CATALOGUE = re.compile(
    r"SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '(\w+)'", re.IGNORECASE
)


class Statement(NamedTuple):
    """A translated statement: its text, the parameter positions that take JSONB,
    whether it returns the new row's id, and for a plain one-row INSERT ... VALUES its
    text up to VALUES and its row of placeholders (for multi-row inserts)."""

    sql: str
    json_params: tuple[int, ...]
    returns_id: bool
    head: str = ""
    row: str = ""


# Rows per multi-row INSERT (PostgreSQL takes at most 65535 parameters per statement).
MANY_ROWS = 500


def many(statement: Statement, count: int) -> str:
    """One INSERT of `count` rows for a one-row INSERT ... VALUES statement: one round
    trip and one statement instead of `count` (executemany of the store's bulk writes)."""
    return f"{statement.head} VALUES " + ", ".join([statement.row] * count)


def _placeholders(sql: str) -> tuple[str, int]:
    """`?` -> `%s`, `:name` -> `%(name)s`, `%` -> `%%`, outside quoted text; returns the
    new text and the number of positional parameters."""
    out: list[str] = []
    count = 0
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            j = sql.index(c, i + 1) if c in sql[i + 1 :] else n - 1
            out.append(sql[i : j + 1].replace("%", "%%"))
            i = j + 1
            continue
        if c == "?":
            out.append("%s")
            count += 1
        elif c == "%":
            out.append("%%")
        elif c == ":" and i + 1 < n and (sql[i + 1].isalpha() or sql[i + 1] == "_"):
            if i > 0 and sql[i - 1] == ":":  # a PostgreSQL cast (::)
                out.append(c)
            else:
                m = re.match(r"\w+", sql[i + 1 :])
                assert m is not None
                out.append(f"%({m.group()})s")
                i += 1 + len(m.group())
                continue
        else:
            out.append(c)
        i += 1
    return "".join(out), count


@lru_cache(maxsize=512)
def translate(sql: str) -> Statement:
    """The PostgreSQL form of one statement of the store's SQL."""
    sql = _CATALOGUE.sub(
        r"SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema()"
        r" AND tablename = '\1'",
        sql,
    )
    json_params: tuple[int, ...] = ()
    returns_id = False
    m = _INSERT.match(sql)
    if m:
        table = m.group("table").lower()
        columns = [c.strip().lower() for c in m.group("columns").split(",")]
        rest = m.group("rest").strip()
        if table in JSON_VALUE_TABLES and "value" in columns and rest.upper().startswith("VALUES"):
            json_params = (columns.index("value"),)
        if m.group("ignore"):
            sql = f"INSERT INTO {m.group('table')} ({m.group('columns')}) {rest}"
            sql += " ON CONFLICT DO NOTHING"
        if (
            table in ID_TABLES
            and rest.upper().startswith("VALUES")
            and "RETURNING" not in rest.upper()
        ):
            sql += " RETURNING id"
            returns_id = True
    text, _ = _placeholders(sql)
    head = row = ""
    values = re.fullmatch(r"(?is)(.*?)\s+VALUES\s*(\([^()]*\))", text.removesuffix(" RETURNING id"))
    if m and not m.group("ignore") and values:
        head, row = values.group(1), values.group(2)
    return Statement(text, json_params, returns_id, head, row)


def adapt(statement: Statement, params: Any) -> Any:
    """The parameters with the JSONB ones wrapped (None stays SQL NULL)."""
    if not statement.json_params or params is None or isinstance(params, dict):
        return params
    from psycopg.types.json import Jsonb

    values = list(params)
    for index in statement.json_params:
        if values[index] is not None:
            values[index] = Jsonb(values[index])
    return values
