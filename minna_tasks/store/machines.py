"""The state machine a file holds: recorded the first time a store opens it, replaced only
as a recorded step, so every process and every front drives its tasks by the same rules."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ..errors import InvalidStateMachine, StoreError
from ..states import StateMachine

# A TASK_MIGRATIONS step: one row per machine the file has had; the newest one rules.
MACHINE_DDL = """
    CREATE TABLE IF NOT EXISTS task_machines (
        id INTEGER PRIMARY KEY,
        definition TEXT NOT NULL,
        actor TEXT,
        note TEXT,
        created_at TEXT NOT NULL
    );
"""


def dumps(machine: StateMachine) -> str:
    """The stored form: the definition as JSON with sorted keys (states and events keep
    their declared order, which is what lists and messages show)."""
    return json.dumps(machine.to_dict(), sort_keys=True, ensure_ascii=False)


def loads(text: str, where: str) -> StateMachine:
    try:
        return StateMachine.from_dict(json.loads(text))
    except (ValueError, InvalidStateMachine) as e:
        raise StoreError(f"{where} holds a state machine that cannot be read: {e}", where) from None


def read(conn: sqlite3.Connection, where: str) -> StateMachine | None:
    """The file's current machine, or None when none was recorded yet (a new or 0.1 file)."""
    if not conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'task_machines'"
    ).fetchone():
        return None
    row = conn.execute("SELECT definition FROM task_machines ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else loads(row[0], where)


def record(
    conn: sqlite3.Connection,
    machine: StateMachine,
    stamp: str,
    actor: str | None = None,
    note: str | None = None,
) -> None:
    """Append `machine` as the file's current one (inside a write transaction)."""
    conn.execute(
        "INSERT INTO task_machines (definition, actor, note, created_at) VALUES (?, ?, ?, ?)",
        (dumps(machine), actor, note, stamp),
    )


def states_in_use(conn: sqlite3.Connection) -> dict[str, int]:
    """How many tasks are in each state, for the states that hold any."""
    return {
        str(status): int(count)
        for status, count in conn.execute(
            "SELECT status, count(*) FROM task_current GROUP BY status"
        )
    }


def file_machine(path: str) -> StateMachine:
    """The machine of the file at `path`, read without writing (the default one for a file
    that does not exist or has none recorded yet)."""
    if not Path(path).exists():
        return StateMachine()
    uri = Path(path).absolute().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as e:
        raise StoreError(f"cannot open {path}: {e}", path) from None
    try:
        return read(conn, path) or StateMachine()
    except sqlite3.DatabaseError as e:
        raise StoreError(f"cannot read the state machine of {path}: {e}", path) from None
    finally:
        conn.close()
