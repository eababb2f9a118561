"""The seed's worker loop: claim (persisted first) -> execute -> review -> verify."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from .errors import MinnaTasksError, TransitionConflict
from .records import Task
from .states import TaskState
from .store import TaskStore
from .store.waiting import Follower

log = logging.getLogger(__name__)

Execute = Callable[[Task], Any]
Verify = Callable[[Task], bool]


def default_worker() -> str:
    """A worker name unique on this machine: host and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


class _Heartbeat:
    """Extends a task's lease from a background thread while `execute` runs."""

    def __init__(
        self, store: TaskStore, task_id: str, worker: str, lease: float, interval: float
    ) -> None:
        self.store, self.task_id, self.worker = store, task_id, worker
        self.lease, self.interval = lease, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{task_id}", daemon=True)
        self.lost: MinnaTasksError | None = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.store.heartbeat(self.task_id, self.worker, self.lease)
            except MinnaTasksError as e:  # lease lost, or the file is busy: stop quietly
                self.lost = e
                return

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()


def state_machine_loop(
    store: TaskStore,
    execute: Execute,
    verify: Verify | None = None,
    worker: str | None = None,
    *,
    lease_seconds: float = 300,
    heartbeat_seconds: float | None = None,
    max_tasks: int | None = None,
    stop: threading.Event | None = None,
    on_change: Callable[[Task], None] | None = None,
    follow: bool = False,
) -> dict[str, int]:
    """Work the queue until no task is pending; return the counts per state.

    Each task is claimed (and so persisted) before any work. `execute(task)`
    returns a result, stored as the task moves to review; `verify(task)` sees
    the task with that result and decides completed, or a failed attempt (back
    to pending, or failed once `max_attempts` is reached). An exception in
    `execute` or `verify` is recorded as the task's error and counts as a
    failed attempt. Expired leases of dead workers are recovered on start and
    whenever the queue looks empty. KeyboardInterrupt releases the task in hand.
    With `follow=True` an empty queue is waited on (holding no lock) until `stop`
    is set, and expired leases are recovered as they expire.
    """
    worker = worker or default_worker()
    interval = heartbeat_seconds if heartbeat_seconds is not None else max(lease_seconds / 3, 0.05)
    report = on_change or (lambda task: None)
    done = 0
    store.recover()
    while max_tasks is None or done < max_tasks:
        if stop is not None and stop.is_set():
            break
        task = store.claim(worker, lease_seconds)
        if task is None and follow:
            task = _follower(store, worker, lease_seconds, stop).next_task()
            if task is None:  # stopped
                break
        if task is not None and stop is not None and stop.is_set():
            store.release(task.id, worker, note="stopped")  # claimed as the stop came
            break
        if task is None:
            if store.recover():
                continue
            break
        done += 1
        report(task)
        try:
            report(_work(store, task, worker, execute, verify, lease_seconds, interval))
        except TransitionConflict as e:
            # The lease was lost (recovered by someone else): that worker owns it now.
            log.warning("%s: %s", worker, e)
    return store.stats()


def _follower(
    store: TaskStore, worker: str, lease: float, stop: threading.Event | None
) -> Follower:
    return Follower(store, worker, lease, stop if stop is not None else threading.Event())


def _work(
    store: TaskStore,
    task: Task,
    worker: str,
    execute: Execute,
    verify: Verify | None,
    lease: float,
    interval: float,
) -> Task:
    claimed = store.machine.claimed or TaskState.IN_PROGRESS
    try:
        with _Heartbeat(store, task.id, worker, lease, interval):
            result = execute(task)
    except KeyboardInterrupt:
        store.release(task.id, worker, note="interrupted")
        raise
    except Exception as e:  # noqa: BLE001 - any error in user code is a failed attempt
        return store.fail(
            task.id, worker, error=_describe(e), note="execute failed", expected=claimed
        )
    task = store.transition(
        task.id, TaskState.REVIEW, expected=claimed, actor=worker, note="executed", result=result
    )
    try:
        ok = True if verify is None else bool(verify(task))
    except KeyboardInterrupt:
        store.release(task.id, worker, note="interrupted")
        raise
    except Exception as e:  # noqa: BLE001
        return store.fail(
            task.id, worker, error=_describe(e), note="verify failed", expected=TaskState.REVIEW
        )
    if ok:
        return store.transition(
            task.id, TaskState.COMPLETED, expected=TaskState.REVIEW, actor=worker, note="verified"
        )
    return store.fail(task.id, worker, note="verification failed", expected=TaskState.REVIEW)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
