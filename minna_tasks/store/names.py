"""Task ids and the names other tools already use in the same memory."""

from __future__ import annotations

from collections.abc import Iterator

from ..engines.base import TaskOperations
from ..errors import IdTaken


def free_ids(ops: TaskOperations, next_seq: int, count: int, reserved: set[str]) -> Iterator[str]:
    """`count` automatic ids `t-N` from `next_seq` on, skipping names already in use."""
    while count > 0:
        candidates = [f"t-{n}" for n in range(next_seq, next_seq + count)]
        next_seq += count
        used = ops.owners(candidates).keys() | reserved
        for task_id in candidates:
            if task_id not in used:
                count -= 1
                yield task_id


def id_taken(ops: TaskOperations, name: str) -> IdTaken:
    """A task id that names another tool's entity or facts: its history would mix with theirs."""
    return IdTaken(name, ops.id_owner(name) or "")
