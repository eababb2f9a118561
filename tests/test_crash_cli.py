"""Crash injection through the command line: SIGKILL `minna-tasks run` and `import`.

The real console script runs as a process group; a kill takes the parent and
its worker processes down at once, at a random moment. Afterwards the same
invariants as the library crash test hold, and an import killed half-way
left all of its tasks or none of them.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from minna_tasks import TaskStore

from .reliability_workers import integrity, walk_errors
from .test_crash import check_final

CLI = str(Path(sys.executable).with_name("minna-tasks"))
ROUNDS = 30
HELD = ("in_progress", "review")
# Ids ending in 3 always fail; ids ending in 7 fail verification on their first attempt.
# The sentinel (the lowest priority, so taken last) waits until its round's RELEASE file
# exists: a run that worked through the whole queue is still running when it is killed.
# Without it a fast machine drained 40 tasks within the kill's random delay and the run
# exited on its own.
COMMAND = (
    'touch "$READY"; '
    'if [ "$MINNA_TASK_TITLE" = sentinel ]; then '
    'until [ -e "$RELEASE" ]; do sleep 0.02; done; fi; '
    'case "$MINNA_TASK_ID" in *3) exit 1;; esac'
)
SENTINEL = {"title": "sentinel", "priority": -1, "max_attempts": 1000}
VERIFY = '[ "$MINNA_TASK_ATTEMPT" -gt 1 ] || case "$MINNA_TASK_ID" in *7) exit 1;; esac'


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The real console script in its own process group (so killpg takes its workers too)."""
    return subprocess.Popen(
        [CLI, *args],
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env=env,
    )


def killpg(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGKILL the whole group; the (stdout, stderr) it printed."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    output = proc.communicate(timeout=60)
    # Wait until every process of the group (spawned workers) is gone.
    deadline = time.monotonic() + 30
    while True:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return output
        assert time.monotonic() < deadline, "a worker survived SIGKILL"
        time.sleep(0.005)


@pytest.mark.slow
def test_sigkill_minna_tasks_run_at_random_moments(db_path: Path, tmp_path: Path) -> None:
    rng = random.Random(17)
    with TaskStore(db_path) as store:
        sentinel = store.add(**SENTINEL).id
        store.add_many([{"title": f"cli {i}", "max_attempts": 4} for i in range(150)])
    recovered = 0
    for round_no in range(ROUNDS):
        ready = tmp_path / f"ready{round_no}"
        release = tmp_path / f"release{round_no}"
        workers = 2 if round_no % 4 == 3 else 1
        env = {**os.environ, "READY": str(ready), "RELEASE": str(release)}
        proc = cli(
            "--db", str(db_path), "run", "--workers", str(workers), "--lease", "60",
            "--worker", f"r{round_no}", "--verify", VERIFY, "--", COMMAND,
            env=env,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not ready.exists() and proc.poll() is None:
            assert time.monotonic() < deadline, "run never started a task"
            time.sleep(0.005)
        assert proc.poll() is None, proc.communicate()
        time.sleep(rng.random() * 0.15)
        output = killpg(proc)
        release.touch()  # a sentinel the kill left running (its own session) ends
        assert proc.returncode == -signal.SIGKILL, output
        with TaskStore(db_path) as store:
            held = store.list(status=HELD)
            assert all((t.owner or "").startswith(f"r{round_no}") for t in held), held
            back = store.recover(now=datetime.now(UTC) + timedelta(hours=1))
            assert {t.id for t in back} == {t.id for t in held}
            recovered += len(back)
            assert store.list(status=HELD) == []
            if store.stats()["pending"] < 40:
                store.add_many([{"title": f"more {i}", "max_attempts": 4} for i in range(80)])
    assert recovered > ROUNDS // 2  # most kills caught a task in hand
    assert integrity(db_path) == "ok"
    # A last, unkilled run drains the queue; it reports the tasks that failed.
    done = subprocess.run(
        [CLI, "--db", str(db_path), "run", "--verify", VERIFY, "--", COMMAND],
        env={**os.environ, "READY": str(tmp_path / "last"), "RELEASE": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, done.stderr  # ids ending in 3 failed
    with TaskStore(db_path) as store:
        check_final(store)
        assert store.get(sentinel).status == "completed"
        for task in store.list():
            expected = "failed" if task.id.endswith("3") else None
            assert expected is None or task.status == expected
            if task.status == "completed":
                # ids ending in 7 always needed a second attempt (a kill may add more)
                assert not task.id.endswith("7") or task.attempts >= 1
    assert integrity(db_path) == "ok"


def document(count: int, prefix: str) -> dict[str, Any]:
    """An export document of `count` completed tasks, each with a nine-triple history."""
    stamp = "2026-01-02T03:04:05.000000+00:00"
    tasks = []
    for i in range(count):
        facts = [
            ("title", f"imported {i}"),
            ("description", ""),
            ("priority", 0),
            ("attempts", 0),
            ("max_attempts", 3),
            ("status", "pending"),
            ("status", "in_progress"),
            ("status", "review"),
            ("status", "completed"),
        ]
        tasks.append(
            {
                "id": f"{prefix}-{i}",
                "created_at": stamp,
                "history": [
                    {
                        "attribute": a,
                        "value": v,
                        "source": "gen",
                        "context": None,
                        "created_at": stamp,
                    }
                    for a, v in facts
                ],
            }
        )
    return {"format": "minna-tasks", "version": 1, "task_count": count, "tasks": tasks}


def write_locked(path: Path) -> bool:
    """True while another connection holds the file's write lock (a write is under way)."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as e:
        if "locked" not in str(e):
            raise
        return True
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()
    return False


@pytest.mark.slow
def test_sigkill_during_minna_tasks_import_leaves_all_or_none(
    db_path: Path, tmp_path: Path
) -> None:
    count = 5_000
    source = tmp_path / "big.json"
    source.write_text(json.dumps(document(count, "imp")))
    with TaskStore(db_path) as store:
        store.add("already here")
    rng = random.Random(19)
    inside = 0
    for kill_no in range(4):
        proc = cli("--db", str(db_path), "import", str(source))
        if kill_no < 3:
            # Kill while the import's one write transaction is open.
            deadline = time.monotonic() + 60
            while not write_locked(db_path) and proc.poll() is None:
                assert time.monotonic() < deadline, "the import never started writing"
                time.sleep(0.002)
            time.sleep(rng.random() * 0.2)
            inside += proc.poll() is None
            killpg(proc)
        else:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
            assert f"Imported {count} task(s)" in out
        assert integrity(db_path) == "ok"
        with TaskStore(db_path) as store:
            total = sum(store.stats().values())
            # Imported histories arrive whole: each a complete walk to completed.
            problems = [e for t in store.list(status="completed") for e in walk_errors(store, t.id)]
            assert problems == []
        assert total in (1, 1 + count), f"an import killed half-way left {total - 1} tasks"
        if kill_no < 3 and total == 1 + count:
            break  # it committed before the kill: all of it is there; nothing more to test
    assert inside >= 1  # at least one kill landed inside the write transaction
    assert total == 1 + count
