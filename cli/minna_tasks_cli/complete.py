"""Shell completion of task ids and state names (click's `shell_complete=`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

import click
from click.shell_completion import CompletionItem

from minna_tasks import MinnaMemory, MinnaTasksError, TaskStore
from minna_tasks.dbpath import resolve_db

LIMIT = 200


@contextmanager
def _store(ctx: click.Context) -> Iterator[TaskStore | None]:
    """The file named on the command line so far, opened read-only (completion never writes)."""
    store = None
    with suppress(MinnaTasksError, OSError, ValueError):
        memory = MinnaMemory(resolve_db(ctx.find_root().params.get("db")), readonly=True)
        try:
            store = TaskStore(memory)
        except (MinnaTasksError, OSError, ValueError):
            memory.close()
    try:
        yield store
    finally:
        if store is not None:
            store.memory.close()


def task_ids(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Ids of the tasks in the file that start with what was typed, with their titles."""
    with _store(ctx) as store:
        if store is None:
            return []
        found = [t for t in store.list() if t.id.startswith(incomplete)][:LIMIT]
        return [CompletionItem(t.id, help=f"{t.status}: {t.title}") for t in found]


def states(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The state names of the file's machine that start with what was typed."""
    with _store(ctx) as store:
        names = store.machine.states if store is not None else _default_states()
        return [CompletionItem(s) for s in names if s.startswith(incomplete)]


def _default_states() -> tuple[str, ...]:
    from minna_tasks import StateMachine

    return tuple(StateMachine().states)
