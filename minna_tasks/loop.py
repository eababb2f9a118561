"""The seed's worker loop: claim (persisted first) -> execute -> review -> verify."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType
from typing import Any

from . import defaults
from .errors import MinnaTasksError, StoreBusy, TransitionConflict
from .memory import utcnow
from .records import Task
from .store import TaskStore
from .store.waiting import next_task

log = logging.getLogger(__name__)

Execute = Callable[[Task], Any]
Verify = Callable[[Task], bool]


def default_worker() -> str:
    """A worker name unique on this machine: host and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


class _Heartbeat:
    """Extends the lease of the task in hand from a background thread while `execute` runs.

    A busy file (StoreBusy) is transient: it keeps trying, every interval, for as
    long as the lease it last took holds. A lost lease (the task was recovered,
    or is held by someone else now, or by a later claim under our own name: the
    claim's token tells) or a lease that ran out while the file stayed busy sets
    `lost`, which the loop reads before it stores a result.
    """

    def __init__(self, task: Task) -> None:
        self.task_id, self.token = task.id, task.claim_token
        self.expires = task.lease_expires_at
        self.lost: MinnaTasksError | None = None

    def beat(self, store: TaskStore, worker: str, lease: float) -> bool:
        """One extension of the lease; False once it is lost (no more beats)."""
        try:
            self.expires = store.heartbeat(
                self.task_id, worker, lease, token=self.token
            ).lease_expires_at
        except StoreBusy as e:
            if self.expires is not None and utcnow() >= self.expires:
                self.lost = e  # the lease ran out while the file stayed busy
                return False
            log.info("%s: heartbeat of %s postponed: %s", worker, self.task_id, e)
        except MinnaTasksError as e:  # the lease is lost: someone else owns the task
            self.lost = e
            return False
        return True


class _Heartbeats:
    """One heartbeat thread for a whole run of the loop, keeping one task at a time
    (named `heartbeat-<task id>` while it does). Reused task after task: a thread started
    and joined per task cost ~0.1 ms of CPU per task."""

    IDLE = "idle-heartbeat"

    def __init__(self, store: TaskStore, worker: str, lease: float, interval: float) -> None:
        self.store, self.worker, self.lease, self.interval = store, worker, lease, interval
        self._cond = threading.Condition()
        self._current: _Heartbeat | None = None
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def keep(self, heartbeat: _Heartbeat) -> _Keeping:
        """A context in which the lease of `heartbeat`'s task is extended every interval."""
        return _Keeping(self, heartbeat)

    def _start(self, heartbeat: _Heartbeat) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.IDLE, daemon=True)
                self._thread.start()
            self._current = heartbeat
            self._thread.name = f"heartbeat-{heartbeat.task_id}"
            self._cond.notify_all()

    def _stop(self, heartbeat: _Heartbeat) -> None:
        """Stop keeping `heartbeat`'s task; returns once no beat of it is under way."""
        with self._cond:
            if self._current is heartbeat:
                self._idle()
            self._cond.wait_for(lambda: not self._busy)

    def _idle(self) -> None:
        self._current = None
        if self._thread is not None:
            self._thread.name = self.IDLE
        self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._current is not None or self._closed)
                if self._closed:
                    return
                heartbeat = self._current
                if heartbeat is None or not self._still_kept(heartbeat):
                    continue
                self._busy = True
            kept = False
            try:
                kept = heartbeat.beat(self.store, self.worker, self.lease)
            finally:
                with self._cond:
                    self._busy = False
                    if not kept and self._current is heartbeat:
                        self._idle()
                    self._cond.notify_all()

    def _still_kept(self, heartbeat: _Heartbeat) -> bool:
        """Under the lock: wait one interval; True when `heartbeat` is still the one kept."""

        def moved() -> bool:
            return self._current is not heartbeat or self._closed

        return not self._cond.wait_for(moved, self.interval)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()


class _Keeping:
    """`with heartbeats.keep(heartbeat):` (see _Heartbeats)."""

    def __init__(self, owner: _Heartbeats, heartbeat: _Heartbeat) -> None:
        self.owner, self.heartbeat = owner, heartbeat

    def __enter__(self) -> _Heartbeat:
        self.owner._start(self.heartbeat)
        return self.heartbeat

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.owner._stop(self.heartbeat)


def state_machine_loop(
    store: TaskStore,
    execute: Execute,
    verify: Verify | None = None,
    worker: str | None = None,
    *,
    lease_seconds: float = defaults.LEASE_SECONDS,
    heartbeat_seconds: float | None = None,
    max_tasks: int | None = None,
    stop: threading.Event | None = None,
    on_change: Callable[[Task], None] | None = None,
    follow: bool = False,
) -> dict[str, Any]:
    """Work the queue until no task is queued; return a summary of what this run did.

    Each task is claimed (and so persisted) before any work. `execute(task)`
    returns a result, stored as the task moves to the machine's review state;
    `verify(task)` sees the task with that result and decides done, or a failed
    attempt (back to the queue, or failed once `max_attempts` is reached). On a
    machine with no review state, verify sees the result in hand and the task
    goes from claimed straight to done. An exception in `execute` or `verify` is
    recorded as the task's error and counts as a failed attempt. Expired leases
    of dead workers are recovered on start and whenever the queue looks empty.
    KeyboardInterrupt releases the task in hand. While nothing is ready but a held
    task may unblock waiting ones, the loop waits for it. With `follow=True` an
    empty queue is waited on (holding no lock) until `stop` is set, and expired
    leases are recovered as they expire; a task claimed as the stop comes is
    handed back.

    The summary: `completed`, `failed`, `retried` (failed attempts that went back
    to the queue), `released` (handed back), `blocked` (tasks left waiting behind a
    failed dependency) and `totals` (the whole store's {state: count}).
    """
    worker = worker or default_worker()
    interval = heartbeat_seconds if heartbeat_seconds is not None else max(lease_seconds / 3, 0.05)
    report = on_change or (lambda task: None)
    store.recover()
    heartbeats = _Heartbeats(store, worker, lease_seconds, interval)
    try:
        return _run(
            store,
            execute,
            verify,
            worker,
            lease_seconds,
            heartbeats,
            max_tasks,
            stop,
            report,
            follow,
        )
    finally:
        heartbeats.close()


def _run(
    store: TaskStore,
    execute: Execute,
    verify: Verify | None,
    worker: str,
    lease_seconds: float,
    heartbeats: _Heartbeats,
    max_tasks: int | None,
    stop: threading.Event | None,
    report: Callable[[Task], None],
    follow: bool,
) -> dict[str, Any]:
    """The loop of state_machine_loop (see there)."""
    summary = Summary()
    done = 0
    idle = 0.02  # seconds between looks while waiting for a held task; grows to 1
    while max_tasks is None or done < max_tasks:
        if stop is not None and stop.is_set():
            break
        task = store.claim(worker, lease_seconds)
        if task is None and follow:
            task = next_task(store, worker, lease_seconds, None, stop, recover=True)
            if task is None:  # stopped
                break
        if task is not None and stop is not None and stop.is_set():
            store.release(task.id, worker, note="stopped", token=task.claim_token)  # as stop came
            summary.counts["released"] += 1
            break
        if task is None:
            if store.recover():
                continue
            if waits_for_held(store, stop, idle):
                idle = min(idle * 2, 1.0)
                continue  # a task someone holds may unblock waiting ones
            break
        done += 1
        idle = 0.02
        report(task)
        try:
            after = _work(store, task, worker, execute, verify, heartbeats)
        except TransitionConflict as e:
            # The lease was lost (recovered by someone else): that worker owns it now.
            log.warning("%s: %s", worker, e)
            continue
        if after is not None:
            summary.count(store, after)
            report(after)
    return summary.result(store)


class Summary:
    """What one run of the loop did, counted from the state each task was left in
    (`released` and `blocked` are counted by the parts that hand tasks back or hold them)."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(("completed", "failed", "retried", "released", "blocked"), 0)

    def count(self, store: TaskStore, task: Task) -> None:
        machine = store.machine
        if task.status == machine.done:
            self.counts["completed"] += 1
        elif task.status == machine.failed:
            self.counts["failed"] += 1
        elif task.status == machine.initial:
            self.counts["retried"] += 1

    def result(self, store: TaskStore) -> dict[str, Any]:
        blocked = len(store.stranded())  # waiting behind a failed dependency
        return {**self.counts, "blocked": blocked, "totals": store.stats()}


def waits_for_held(store: TaskStore, stop: threading.Event | None, pause: float) -> bool:
    """After a claim found nothing ready: when a task has become ready since, or tasks
    wait for dependencies while some task is held (its completion may unblock them),
    pause briefly and return True: the loop tries again."""
    with store.snapshot():  # one snapshot: a completion between two reads ends no loop
        readiness = store.readiness()
        counts = store.stats()
    held = any(counts.get(state, 0) for state in store.machine.held)
    if not readiness["ready"] and not (readiness["blocked"] and held):
        return False
    if stop is not None:
        return not stop.wait(pause)
    threading.Event().wait(pause)
    return True


def _work(
    store: TaskStore,
    task: Task,
    worker: str,
    execute: Execute,
    verify: Verify | None,
    heartbeats: _Heartbeats,
) -> Task | None:
    """Work one claimed task; the task as left, or None when its lease was lost.
    Every move passes the claim's token: a claim that was superseded moves nothing."""
    machine = store.machine
    token = task.claim_token
    claimed, review = machine.claimed, machine.review
    heartbeat = _Heartbeat(task)
    try:
        with heartbeats.keep(heartbeat):
            result = execute(task)
    except KeyboardInterrupt:
        store.release(task.id, worker, note="interrupted", token=token)
        raise
    except Exception as e:  # noqa: BLE001 - any error in user code is a failed attempt
        if heartbeat.lost is not None:
            _lost(worker, task, heartbeat.lost)
            return None
        return store.fail(
            task.id,
            worker,
            error=_describe(e),
            note="execute failed",
            expected=claimed,
            token=token,
        )
    if heartbeat.lost is not None:
        _lost(worker, task, heartbeat.lost)
        return None
    waiting = claimed
    if review is None:
        # No review state: verify the result in hand; it is stored with the final move.
        task = replace(task, result=result)
    else:
        task = store.transition(
            task.id,
            review,
            expected=claimed,
            actor=worker,
            note="executed",
            result=result,
            token=token,
        )
        waiting = review
    try:
        ok = True if verify is None else bool(verify(task))
    except KeyboardInterrupt:
        store.release(task.id, worker, note="interrupted", token=token)
        raise
    except Exception as e:  # noqa: BLE001
        return store.fail(
            task.id, worker, error=_describe(e), note="verify failed", expected=waiting, token=token
        )
    if ok:
        return store.transition(
            task.id,
            machine.done,
            expected=waiting,
            actor=worker,
            note="verified",
            result=result if review is None else None,
            token=token,
        )
    return store.fail(task.id, worker, note="verification failed", expected=waiting, token=token)


def _lost(worker: str, task: Task, error: MinnaTasksError) -> None:
    log.warning("%s: lost the lease of %s; its result is not stored: %s", worker, task.id, error)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
