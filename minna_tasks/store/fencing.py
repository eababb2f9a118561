"""Fencing tokens: each claim's token, and the check that refuses a superseded one.

A claim's token is the memory id of the status row that claimed the task. Memory
ids only grow, so a later claim of the same task (by any worker, even one with the
same name) always has another token, and a worker that paused past its lease
cannot move the task its successor now holds. The token is a task field
(`claim_token`) written as a triple, so history, `as_of` and export/import keep it.
"""

from __future__ import annotations

from ..errors import ClaimSuperseded
from ..records import Task, check_int
from ..states import StateMachine

ATTRIBUTE = "claim_token"


def check_token(task: Task, token: int | None, machine: StateMachine) -> None:
    """Refuse `token` unless it is the token of the claim holding `task` now (no token
    given: no check, the library's simple style)."""
    if token is None:
        return
    token = check_int("token", token)
    if task.claim_token == token and task.status in machine.held:
        return
    raise ClaimSuperseded(
        task.id,
        task.status,
        task.owner if task.status in machine.held else None,
        token,
        task.claim_token,
        machine.allowed(task.status),
    )
