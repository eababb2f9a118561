"""Tell MCP subscribers about task changes made by any process on the file.

A background task of the server waits (in a worker thread, holding no lock) for
the file to change, reads which tasks changed since it last looked, and
publishes them. The server's own tool calls reach subscribers the same way, so
every change is told once, in commit order, whoever made it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio

from .engines.feed import ChangeDetector, Position
from .errors import MinnaTasksError
from .store import TaskStore
from .store.changes import HELD_RECHECK, touched

log = logging.getLogger(__name__)

# How long one wait in the worker thread lasts: the most a shutdown waits for it.
WAIT_SLICE = 0.25

Notify = Callable[[list[str]], Awaitable[None]]


async def _relay(
    store: TaskStore,
    notify: Notify,
    stop: threading.Event,
    detector: ChangeDetector,
    position: Position,
) -> None:
    """Until stopped: after each change to the file, `notify` the ids of the tasks that
    changed (nothing when only other memories changed)."""
    held = 0  # the feed keeps changes back (see engines/feed.py Batch.held)
    while not stop.is_set():
        try:
            wait = HELD_RECHECK if held else WAIT_SLICE
            if await anyio.to_thread.run_sync(detector.wait, wait, stop) or held:
                task_ids, position, held, _ = touched(store, position)
                if task_ids:
                    await notify(task_ids)
        except MinnaTasksError as e:  # e.g. the file is busy: try again, never stop serving
            log.warning("change notifications: %s", e)
            await anyio.sleep(WAIT_SLICE)


@asynccontextmanager
async def relaying(store: TaskStore, notify: Notify) -> AsyncIterator[None]:
    """Relay changes for as long as the block (the server's lifespan) lasts."""
    stop = threading.Event()
    # The starting point is taken before the server answers anything: no change is missed.
    with store.memory.change_feed().detector() as detector:
        position = touched(store).position
        async with anyio.create_task_group() as group:
            group.start_soon(_relay, store, notify, stop, detector, position)
            try:
                yield
            finally:
                stop.set()
