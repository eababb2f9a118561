"""Task ids and the names other tools already use in the same memory."""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Iterator, Sequence

from ..errors import IdTaken


def id_owner(conn: sqlite3.Connection, name: str) -> str | None:
    """What already uses this name: an entity's type ('task' for a task; aliases count),
    '' for facts another tool stored with no entity row, or None when the name is free."""
    row = conn.execute(
        "SELECT entity_type FROM entities WHERE name = ? UNION ALL SELECT e.entity_type"
        " FROM entity_aliases a JOIN entities e ON e.id = a.entity_id WHERE a.alias = ?",
        (name, name),
    ).fetchone()
    if row is not None:
        return str(row[0])
    fact = conn.execute("SELECT 1 FROM memories WHERE entity = ? LIMIT 1", (name,)).fetchone()
    return None if fact is None else ""


def owners(conn: sqlite3.Connection, names: Sequence[str]) -> dict[str, str]:
    """`id_owner` for many names at once: {name: owner} for the names in use."""
    owners: dict[str, str] = {}
    for start in range(0, len(names), 500):
        chunk = builtins.list(names[start : start + 500])
        marks = ", ".join("?" * len(chunk))
        for (name,) in conn.execute(
            f"SELECT DISTINCT entity FROM memories WHERE entity IN ({marks})", chunk
        ):
            owners[name] = ""
        for name, entity_type in conn.execute(
            f"SELECT name, entity_type FROM entities WHERE name IN ({marks}) UNION ALL"
            " SELECT a.alias, e.entity_type FROM entity_aliases a"
            f" JOIN entities e ON e.id = a.entity_id WHERE a.alias IN ({marks})",
            chunk + chunk,
        ):
            owners[name] = str(entity_type)
    return owners


def free_ids(
    conn: sqlite3.Connection, next_seq: int, count: int, reserved: set[str]
) -> Iterator[str]:
    """`count` automatic ids `t-N` from `next_seq` on, skipping names already in use."""
    while count > 0:
        candidates = [f"t-{n}" for n in range(next_seq, next_seq + count)]
        next_seq += count
        used = owners(conn, candidates).keys() | reserved
        for task_id in candidates:
            if task_id not in used:
                count -= 1
                yield task_id


def id_taken(conn: sqlite3.Connection, name: str) -> IdTaken:
    """A task id that names another tool's entity or facts: its history would mix with theirs."""
    return IdTaken(name, id_owner(conn, name) or "")
