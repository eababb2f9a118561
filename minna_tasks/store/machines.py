"""The state machine a file holds: recorded the first time a store opens it, replaced only
as a recorded step, so every process and every front drives its tasks by the same rules.
The table holding them is each engine's (engines/sqlite/machines.py, engines/postgres/
schema.py); this module keeps the rules."""

from __future__ import annotations

import json
from pathlib import Path

from ..engines import is_postgres_url
from ..engines.base import TaskOperations
from ..errors import InvalidStateMachine, StoreError, StoreReadOnly
from ..memory import MinnaMemory
from ..states import StateMachine


def dumps(machine: StateMachine) -> str:
    """The stored form: the definition as JSON with sorted keys (states and events keep
    their declared order, which is what lists and messages show)."""
    return json.dumps(machine.to_dict(), sort_keys=True, ensure_ascii=False)


def loads(text: str, where: str) -> StateMachine:
    try:
        return StateMachine.from_dict(json.loads(text))
    except (ValueError, InvalidStateMachine) as e:
        raise StoreError(f"{where} holds a state machine that cannot be read: {e}", where) from None


def read(ops: TaskOperations, where: str) -> StateMachine | None:
    """The file's current machine, or None when none was recorded yet (a new or 0.1 file)."""
    definition = ops.machine_definition()
    return None if definition is None else loads(definition, where)


def record(
    ops: TaskOperations,
    machine: StateMachine,
    stamp: str,
    actor: str | None = None,
    note: str | None = None,
) -> None:
    """Append `machine` as the file's current one (inside a write transaction)."""
    ops.record_machine(dumps(machine), actor, note, stamp)


def file_machine(path: str) -> StateMachine:
    """The machine of the store at `path` (a file or a server URL), read without writing
    (the default one for a file that does not exist, is empty or has none recorded yet)."""
    if not is_postgres_url(path) and (not Path(path).is_file() or Path(path).stat().st_size == 0):
        return StateMachine()  # nothing to read, and a read creates nothing
    try:
        memory = MinnaMemory(path, readonly=True)
    except StoreReadOnly:
        # An older schema cannot be read read-only: open it as the read commands do (which
        # upgrade a store they may write) rather than guess at a machine.
        memory = MinnaMemory(path)
    try:
        with memory.reading():  # an engine's error arrives as ours (StoreError...)
            return read(memory.task_ops, memory.path) or StateMachine()
    finally:
        memory.close()
