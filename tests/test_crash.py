"""Crash injection: SIGKILL real worker processes at random moments, hundreds of times.

Between rounds the dead workers' tasks are recovered (`recover(now=later)`);
afterwards the file is intact, every task ends completed or failed, every
history is a valid walk of the default machine, nothing is held by a dead
worker, and a bulk write killed half-way left all or none of itself.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from minna_tasks import TaskStore, state_machine_loop

from .reliability_workers import (
    ROOT,
    integrity,
    projection_errors,
    settle,
    start,
    wait_for,
    walk_errors,
)

KILLS = 200
HELD = ("in_progress", "review")


def later() -> datetime:
    """A time past every lease the workers took (they lease for 60 s)."""
    return datetime.now(UTC) + timedelta(hours=1)


def kill(pid: int) -> None:
    """SIGKILL a zygote's child and wait until it is gone (the kernel reaps it)."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, f"worker {pid} survived SIGKILL"
        time.sleep(0.001)


def check_final(store: TaskStore) -> None:
    """Every task ended, no task held, every history a valid walk, projection right."""
    problems: list[str] = []
    for task in store.list():
        if task.status not in ("completed", "failed") or task.owner is not None:
            problems.append(f"{task.id}: {task.status} owned by {task.owner}")
        problems.extend(walk_errors(store, task.id))
        problems.extend(projection_errors(store, task))
    assert problems == []


@pytest.mark.slow
def test_sigkill_loop_workers_200_times(db_path: Path, tmp_path: Path) -> None:
    rng = random.Random(7)
    with TaskStore(db_path) as store:
        store.add_many([{"title": f"crash {i}", "max_attempts": 5} for i in range(2000)])
    ready = tmp_path / "ready"
    ready.mkdir()
    zygote = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability_workers", "zygote", str(db_path), str(ready)],
        cwd=ROOT,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert zygote.stdin is not None
    assert zygote.stdout is not None
    kills = recovered = early = 0
    round_no = 0
    try:
        with TaskStore(db_path) as store:
            while kills < KILLS:
                round_no += 1
                names = [f"r{round_no}w{i}" for i in range(2)]
                pids = []
                for name in names:
                    zygote.stdin.write(name + "\n")
                    zygote.stdin.flush()
                    pids.append(int(zygote.stdout.readline()))
                for name, pid in zip(names, pids, strict=True):
                    if rng.random() < 0.2:
                        early += 1  # during start-up, recover or the first claim
                        time.sleep(rng.random() * 0.01)
                    else:
                        deadline = time.monotonic() + 30
                        while not (ready / name).exists():
                            assert time.monotonic() < deadline, f"{name} never started work"
                            time.sleep(0.001)
                        time.sleep(rng.random() * 0.02)
                    kill(pid)
                    kills += 1
                # Only this round's dead workers may hold tasks; recover gives them back.
                settle(store)
                held = store.list(status=HELD)
                assert {t.owner for t in held} <= set(names)
                back = store.recover(now=later())
                assert {t.id for t in back} == {t.id for t in held}
                assert all(t.status in ("pending", "failed") and t.owner is None for t in back)
                recovered += len(back)
                assert store.list(status=HELD) == []
                if round_no % 20 == 0:
                    assert integrity(db_path) == "ok"
                if store.stats()["pending"] < 100:
                    store.add_many([f"top-up {round_no}.{i}" for i in range(500)])
            zygote.stdin.close()
            assert zygote.wait(timeout=30) == 0
            # Kills landed while tasks were held, many times over.
            assert recovered > KILLS // 2
            assert integrity(db_path) == "ok"
            summary = state_machine_loop(store, lambda t: "ok", worker="survivor")
            totals = summary["totals"]
            assert totals["pending"] == totals["in_progress"] == totals["review"] == 0
            check_final(store)
            attempts = sum(
                1 for t in store.list() for step in store.history(t.id) if step.actor == "recover"
            )
            assert attempts == recovered  # every recovery is on record
    finally:
        if zygote.poll() is None:
            zygote.kill()
            zygote.wait()
        zygote.stdout.close()
    assert integrity(db_path) == "ok"


def _kill_during_add_many(
    db_path: Path, tmp_path: Path, count: int, delay: float | None
) -> tuple[int, float]:
    """Kill an add_many of `count` tasks `delay` s after it starts (None: let it finish).

    Returns how many tasks it left and how long the process ran after starting the call.
    """
    with TaskStore(db_path) as store:
        before = sum(store.stats().values())
    ready = tmp_path / f"ready-{count}-{delay}"
    proc = start("add_many", str(db_path), str(count), str(ready))
    wait_for(ready, proc)
    began = time.monotonic()
    if delay is not None:
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    elapsed = time.monotonic() - began
    assert proc.returncode in (0, -signal.SIGKILL), err
    assert integrity(db_path) == "ok"
    with TaskStore(db_path) as store:
        added = sum(store.stats().values()) - before
        titles = len(store.memory.recall(attribute="title", limit=None)) - before
        assert titles == added  # no triples without their task, no task without triples
        assert added in (0, count), f"kill after {delay} s left {added} of {count} tasks"
        assert all(t.status == "pending" and t.owner is None for t in store.list())
    return added, elapsed


@pytest.mark.slow
def test_sigkill_during_add_many_of_50k_leaves_none(db_path: Path, tmp_path: Path) -> None:
    rng = random.Random(11)
    for _ in range(2):
        added, _ = _kill_during_add_many(db_path, tmp_path, 50_000, 0.5 + rng.random() * 4)
        assert added == 0


@pytest.mark.slow
def test_sigkill_during_add_many_leaves_all_or_none(db_path: Path, tmp_path: Path) -> None:
    """Kills spread over the whole call, commit included: each leaves all or none."""
    added, duration = _kill_during_add_many(db_path, tmp_path, 5000, None)
    assert added == 5000
    rng = random.Random(13)
    outcomes = [
        _kill_during_add_many(db_path, tmp_path, 5000, rng.random() * duration * 1.2)[0]
        for _ in range(8)
    ]
    assert set(outcomes) <= {0, 5000}
    assert 0 in outcomes  # the kills did land inside the call


@pytest.mark.sqlite_only
@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])
def test_every_reported_commit_survives_sigkill(
    db_path: Path, tmp_path: Path, synchronous: str
) -> None:
    """A process crash loses no committed transition, under either durability setting."""
    with TaskStore(db_path, synchronous=synchronous) as store:
        level = store.memory.connection.execute("PRAGMA synchronous").fetchone()[0]
        assert level == {"NORMAL": 1, "FULL": 2}[synchronous]
    proc = start("commit_and_report", str(db_path), synchronous)
    assert proc.stdout is not None
    reported = [proc.stdout.readline().strip() for _ in range(random.randint(50, 150))]
    proc.send_signal(signal.SIGKILL)
    # Read the rest through the same buffered stream: communicate() reads the pipe's
    # file descriptor directly and would lose what readline() had already read ahead.
    rest = proc.stdout.read()
    proc.stdout.close()
    assert proc.stderr is not None
    proc.stderr.close()
    proc.wait(timeout=30)
    # Lines printed before the kill landed; a line cut short by the kill is not a report.
    reported += [line.strip() for line in rest.splitlines(keepends=True) if line.endswith("\n")]
    assert integrity(db_path) == "ok"
    with TaskStore(db_path) as store:
        tasks = {t.id: t for t in store.list()}
        for task_id in reported:
            assert tasks[task_id].status == "in_progress"
            assert tasks[task_id].owner == "w"
        # At most one task was added and not yet reported (killed between its two commits
        # or before its print): it is pending or in_progress, never half-written.
        unreported = set(tasks) - set(reported)
        assert len(unreported) <= 1
        assert all(walk_errors(store, task_id) == [] for task_id in tasks)
