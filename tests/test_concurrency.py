"""Real processes on one file: one claim per task, cooperating loops, SIGKILL recovery."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from minna_tasks import TaskStore, state_machine_loop
from minna_tasks.engines import is_postgres_url

ROOT = Path(__file__).resolve().parent.parent


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.workers", *args],
        cwd=ROOT,
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def integrity(path: Path) -> str:
    """PRAGMA integrity_check, or on PostgreSQL the projection against a replay."""
    if is_postgres_url(str(path)):
        from tests.pg import pg_integrity

        return pg_integrity(str(path))
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def test_eight_processes_move_one_task_exactly_one_wins(db_path: Path, tmp_path: Path) -> None:
    with TaskStore(db_path) as store:
        task = store.add("contested")
    go = tmp_path / "go"
    procs = [start("move", str(db_path), task.id, f"w{i}", str(go)) for i in range(8)]
    time.sleep(0.5)  # let every process open the store and wait at the line
    go.touch()
    errors = [p.communicate(timeout=60)[1] for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0] + [3] * 7, errors
    winner = f"w{codes.index(0)}"
    with TaskStore(db_path) as store:
        assert store.get(task.id).owner == winner
        assert [h.to_state for h in store.history(task.id)] == ["pending", "in_progress"]


def test_four_loops_execute_2000_tasks_exactly_once(db_path: Path, tmp_path: Path) -> None:
    with TaskStore(db_path) as store:
        store.add_many([f"task {i}" for i in range(2000)])
    logs = [tmp_path / f"log{i}" for i in range(4)]
    procs = [start("loop", str(db_path), str(log), f"worker-{i}") for i, log in enumerate(logs)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert "locked" not in err
    executed = Counter(line.split()[0] for log in logs for line in log.read_text().splitlines())
    assert len(executed) == 2000
    assert set(executed.values()) == {1}
    with TaskStore(db_path) as store:
        assert store.stats()["completed"] == 2000
        # Every worker took part, and each task's completion is by its executor.
        assert all(log.read_text() for log in logs)
    assert integrity(db_path) == "ok"


def _kill_in(db_path: Path, tmp_path: Path, where: str) -> None:
    with TaskStore(db_path) as store:
        store.add_many([f"task {i}" for i in range(5)])
    marker = tmp_path / "marker"
    proc = start("hang", str(db_path), str(marker), where)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert integrity(db_path) == "ok"
    task_id = marker.read_text()
    stuck_state = "in_progress" if where == "execute" else "review"
    with TaskStore(db_path) as store:
        stuck = store.get(task_id)
        assert stuck.status == stuck_state
        assert stuck.owner is not None
        assert stuck.owner.startswith("hang-")
        # The dead worker's lease is live: a plain recover leaves it alone.
        assert store.recover() == []
        recovered = store.recover(now=datetime.now(UTC) + timedelta(minutes=5))
        assert [(t.id, t.status, t.attempts) for t in recovered] == [(task_id, "pending", 1)]
        summary = state_machine_loop(store, lambda t: "ok", worker="survivor")
        assert summary["completed"] == 5
        assert sum(summary["totals"].values()) == 5
        assert store.list(status=["in_progress", "review"]) == []


def test_sigkill_in_execute_loses_nothing(db_path: Path, tmp_path: Path) -> None:
    _kill_in(db_path, tmp_path, "execute")


def test_sigkill_between_review_and_completed_loses_nothing(db_path: Path, tmp_path: Path) -> None:
    _kill_in(db_path, tmp_path, "verify")
