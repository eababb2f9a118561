"""state_machine_loop: the seed's loop with results, verification, errors and leases."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from minna_tasks import Task, TaskStore, state_machine_loop
from minna_tasks.memory import utcnow


def test_loop_completes_everything_with_results(store: TaskStore) -> None:
    store.add_many([{"title": f"n={i}", "payload": {"n": i}} for i in range(5)])
    seen: list[str] = []

    def execute(task: Task) -> int:
        assert task.status == "in_progress"  # persisted before processing
        assert store.get(task.id).status == "in_progress"
        seen.append(task.id)
        return int(task.payload["n"]) ** 2

    def verify(task: Task) -> bool:
        assert task.status == "review"
        return bool(task.result == task.payload["n"] ** 2)

    summary = state_machine_loop(store, execute, verify, worker="w")
    assert summary == {
        "completed": 5,
        "failed": 0,
        "retried": 0,
        "released": 0,
        "blocked": 0,
        "totals": {"pending": 0, "in_progress": 0, "review": 0, "failed": 0, "completed": 5},
    }
    assert len(seen) == 5
    for task in store.list():
        assert task.result == task.payload["n"] ** 2
        assert [h.to_state for h in store.history(task.id)] == [
            "pending",
            "in_progress",
            "review",
            "completed",
        ]
        assert {h.actor for h in store.history(task.id)[1:]} == {"w"}


def test_failed_verification_retries_then_fails(store: TaskStore) -> None:
    flaky = store.add("flaky", max_attempts=3)
    hopeless = store.add("hopeless", max_attempts=2)
    calls: dict[str, int] = {}

    def execute(task: Task) -> str:
        calls[task.id] = calls.get(task.id, 0) + 1
        return f"try {calls[task.id]}"

    def verify(task: Task) -> bool:
        return task.id == flaky.id and task.result == "try 2"

    summary = state_machine_loop(store, execute, verify)
    assert (summary["completed"], summary["failed"], summary["retried"]) == (1, 1, 2)
    assert calls == {flaky.id: 2, hopeless.id: 2}
    assert store.get(flaky.id).attempts == 1
    assert (store.get(hopeless.id).status, store.get(hopeless.id).attempts) == ("failed", 2)


def test_execute_error_is_recorded_as_a_failed_attempt(store: TaskStore) -> None:
    task = store.add("boom", max_attempts=2)

    def execute(task: Task) -> None:
        raise RuntimeError("disk on fire")

    summary = state_machine_loop(store, execute)
    assert summary["failed"] == 1
    failed = store.get(task.id)
    assert (failed.attempts, failed.error) == (2, "RuntimeError: disk on fire")
    assert [h.to_state for h in store.history(task.id)] == [
        "pending",
        "in_progress",
        "pending",
        "in_progress",
        "failed",
    ]
    assert store.history(task.id)[2].note == "execute failed"


def test_verify_error_counts_as_failed_attempt(store: TaskStore) -> None:
    task = store.add("x", max_attempts=1)

    def verify(task: Task) -> bool:
        raise ValueError("cannot check")

    state_machine_loop(store, lambda t: 1, verify)
    assert (store.get(task.id).status, store.get(task.id).error) == (
        "failed",
        "ValueError: cannot check",
    )


def test_no_verify_accepts_the_result(store: TaskStore) -> None:
    store.add("x")
    assert state_machine_loop(store, lambda t: None)["completed"] == 1


def test_max_tasks_and_stop(store: TaskStore) -> None:
    store.add_many(["a", "b", "c"])
    summary = state_machine_loop(store, lambda t: 1, max_tasks=2)
    assert (summary["completed"], summary["totals"]["pending"]) == (2, 1)


def test_heartbeat_keeps_a_long_execute_alive(store: TaskStore) -> None:
    task = store.add("slow")
    leases: list[str] = []

    def execute(t: Task) -> str:
        leases.append(store.get(t.id).lease_expires_at or "")
        time.sleep(0.5)  # several heartbeat intervals of 0.05 s
        leases.append(store.get(t.id).lease_expires_at or "")
        return "done"

    state_machine_loop(store, execute, lease_seconds=0.3, heartbeat_seconds=0.05)
    assert leases[1] > leases[0]
    assert store.get(task.id).status == "completed"
    beats = [
        m
        for m in store.memory.recall(task.id, "lease_expires_at", limit=None)
        if m["context"] == "heartbeat"
    ]
    assert len(beats) >= 3


def test_keyboard_interrupt_releases_the_task(store: TaskStore) -> None:
    task = store.add("interrupted")

    def execute(t: Task) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        state_machine_loop(store, execute, worker="w")
    released = store.get(task.id)
    assert (released.status, released.attempts, released.owner) == ("pending", 0, None)
    assert store.history(task.id)[-1].note == "interrupted"


def test_loop_recovers_dead_workers_on_start(store: TaskStore) -> None:
    task = store.add("orphan")
    store.claim("dead", lease_seconds=0.01)
    time.sleep(0.05)
    summary = state_machine_loop(store, lambda t: "ok", worker="new")
    assert summary["completed"] == 1
    assert store.get(task.id).attempts == 1


def test_lost_lease_does_not_crash_the_loop(store: TaskStore, db_path: Path) -> None:
    """Another worker recovers our task mid-execute; we must not overwrite its move."""
    a = store.add("a")
    other = TaskStore(db_path)

    def execute(t: Task) -> str:
        from datetime import UTC, datetime, timedelta

        other.recover(now=datetime.now(UTC) + timedelta(hours=1))
        other.claim("thief")
        return "late"

    try:
        state_machine_loop(store, execute, worker="me", max_tasks=1)
        stolen = store.get(a.id)
        assert (stolen.status, stolen.owner) == ("in_progress", "thief")
    finally:
        other.close()


def _wait_until(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _heartbeats(db: Path, task_id: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(
            conn.execute(
                "SELECT count(*) FROM memories WHERE entity = ? AND context = 'heartbeat'",
                (task_id,),
            ).fetchone()[0]
        )
    finally:
        conn.close()


@pytest.mark.sqlite_only
def test_heartbeat_keeps_going_through_a_busy_file(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another connection holds the write lock during heartbeats: they are postponed,
    not given up, and the task completes under the same lease."""
    caplog.set_level(logging.INFO, logger="minna_tasks.loop")
    with TaskStore(db_path, timeout=0.05) as store:
        task = store.add("slow")

        def execute(t: Task) -> str:
            holder = sqlite3.connect(db_path, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            try:
                _wait_until(
                    lambda: sum("postponed" in r.getMessage() for r in caplog.records) >= 2,
                    "a postponed heartbeat",
                )
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            before = _heartbeats(db_path, t.id)
            _wait_until(lambda: _heartbeats(db_path, t.id) > before, "a heartbeat after the lock")
            return "done"

        summary = state_machine_loop(
            store, execute, worker="w", lease_seconds=60, heartbeat_seconds=0.02
        )
        assert summary["completed"] == 1
        assert store.get(task.id).result == "done"
        assert not [r for r in caplog.records if "lost the lease" in r.getMessage()]


@pytest.mark.sqlite_only
def test_a_lease_that_ran_out_while_the_file_was_busy_stores_no_result(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="minna_tasks.loop")
    with TaskStore(db_path, timeout=0.05) as store:
        task = store.add("slow")

        def execute(t: Task) -> str:
            holder = sqlite3.connect(db_path, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            try:
                expires = t.lease_expires_at or ""
                _wait_until(lambda: utcnow() > expires, "the lease to run out")
                count = len(caplog.records)
                _wait_until(
                    lambda: (
                        any("postponed" in r.getMessage() for r in caplog.records[count:])
                        or not threading_alive("heartbeat-")
                    ),
                    "a heartbeat after the lease ran out",
                )
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            return "too late"

        summary = state_machine_loop(
            store, execute, worker="w", lease_seconds=0.2, heartbeat_seconds=0.02, max_tasks=1
        )
        assert summary["completed"] == 0
        left = store.get(task.id)
        # The result was not stored and the task never reached review: whoever recovers
        # the expired lease decides what happens next.
        assert (left.status, left.result) == ("in_progress", None)
        assert any("lost the lease" in r.getMessage() for r in caplog.records)
        (recovered,) = store.recover()
        assert (recovered.status, recovered.attempts) == ("pending", 1)


def threading_alive(prefix: str) -> bool:
    return any(t.name.startswith(prefix) for t in threading.enumerate())


def test_a_lost_lease_is_known_before_the_result_is_stored(db_path: Path) -> None:
    """The task was recovered and handed back to the queue mid-execute: the loop does not
    try to store its result (it would be refused anyway) and leaves the task alone."""
    with TaskStore(db_path) as store, TaskStore(db_path) as other:
        task = store.add("a")

        def execute(t: Task) -> str:
            from datetime import UTC, datetime, timedelta

            other.recover(now=datetime.now(UTC) + timedelta(hours=1))
            _wait_until(lambda: not threading_alive("heartbeat-"), "the heartbeat to notice")
            return "late"

        summary = state_machine_loop(
            store, execute, worker="me", max_tasks=1, heartbeat_seconds=0.02
        )
        assert (summary["completed"], summary["failed"], summary["retried"]) == (0, 0, 0)
        left = store.get(task.id)
        assert (left.status, left.result, left.attempts) == ("pending", None, 1)
        assert [h.to_state for h in store.history(task.id)] == ["pending", "in_progress", "pending"]
