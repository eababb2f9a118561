"""Worker programs for the soak, crash and fault tests, run as real processes.

Usage: python -m tests.reliability_workers MODE ARGS...
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from minna_tasks import StateMachine, Task, TaskStore, state_machine_loop
from minna_tasks.engines import is_postgres_url

ROOT = Path(__file__).resolve().parent.parent


def decide(seed: str, task_id: str, attempt: int, fail_percent: int) -> tuple[bool, bool]:
    """Whether execution and verification succeed for this attempt of this task.

    Derived from a hash, not from a process's random state, so the test can
    predict every task's final state and attempt count whatever the scheduling.
    """
    digest = hashlib.sha256(f"{seed}/{task_id}/{attempt}".encode()).digest()
    return digest[0] % 100 >= fail_percent, digest[1] % 100 >= fail_percent


def soak(db: str, log: str, worker: str, seed: str, fail_percent: str) -> int:
    """Work the queue; log every execution as `id attempt worker start_ns end_ns`."""
    percent = int(fail_percent)
    store = TaskStore(db)
    with open(log, "a", buffering=1) as out:

        def execute(task: Task) -> dict[str, str]:
            start = time.monotonic_ns()
            ok, _ = decide(seed, task.id, task.attempts, percent)
            end = time.monotonic_ns()
            out.write(f"{task.id} {task.attempts} {worker} {start} {end}\n")
            if not ok:
                raise RuntimeError(f"injected failure of {task.id} at attempt {task.attempts}")
            return {"by": worker, "attempt": task.attempts}

        def verify(task: Task) -> bool:
            assert task.result == {"by": worker, "attempt": task.attempts}
            return decide(seed, task.id, task.attempts, percent)[1]

        try:
            state_machine_loop(store, execute, verify, worker=worker, lease_seconds=120)
        finally:
            store.close()
    return 0


def crashloop(db: str, ready: str, worker: str) -> int:
    """Work the queue with short random work until killed; touch `ready` on first claim."""
    store = TaskStore(db)
    rng = random.Random(os.getpid())

    def execute(task: Task) -> str:
        Path(ready).touch()
        time.sleep(rng.random() * 0.002)
        if rng.random() < 0.1:
            raise RuntimeError("injected execute failure")
        return "done"

    def verify(task: Task) -> bool:
        time.sleep(rng.random() * 0.002)
        return rng.random() >= 0.1

    state_machine_loop(store, execute, verify, worker=worker, lease_seconds=60)
    store.close()
    return 0


def zygote(db: str, ready_dir: str) -> int:
    """Fork a `crashloop` worker per name read from stdin and print its pid.

    Forking from a process that has imported everything makes a new worker
    cost milliseconds instead of an interpreter start, so a crash test can
    kill hundreds of them. Each child opens its own connection.
    """
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    for line in sys.stdin:
        name = line.strip()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = crashloop(db, str(Path(ready_dir) / name), name)
            finally:
                os._exit(code)
        print(pid, flush=True)
    return 0


def commit_and_report(db: str, synchronous: str) -> int:
    """Add and claim tasks one commit at a time; print each id once its commit returned."""
    store = TaskStore(db, synchronous=synchronous)
    for i in range(100_000):
        task = store.add(f"durable {i}")
        store.transition(task.id, "in_progress", actor="w")
        print(task.id, flush=True)
    store.close()
    return 0


def add_many(db: str, count: str, ready: str) -> int:
    """Add `count` tasks in one add_many call; touch `ready` just before it."""
    store = TaskStore(db)
    specs = [{"title": f"bulk {i}", "payload": {"n": i}} for i in range(int(count))]
    Path(ready).touch()
    store.add_many(specs)
    store.close()
    print("done")
    return 0


def hold_lock(db: str, ready: str, release: str) -> int:
    """Hold the write lock (`BEGIN IMMEDIATE`) until `release` exists, as another tool might."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    Path(ready).touch()
    deadline = time.monotonic() + 120
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    conn.execute("ROLLBACK")
    conn.close()
    return 0


# -- helpers for the tests (importing this module starts nothing) -------------------


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Run a mode of this module as a real process."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability_workers", *args],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 60) -> None:
    """Wait until `path` exists, failing early if `proc` died."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"worker exited {proc.returncode}: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear in {seconds} s")
        time.sleep(0.002)


def settle(store: TaskStore, seconds: float = 60) -> None:
    """Wait until the killed workers' work is final. On SQLite it is once they are dead;
    a PostgreSQL server may still be finishing a COMMIT a killed client sent, so wait
    until no other client session is left on the database."""
    if store.memory.engine != "postgresql":
        return
    deadline = time.monotonic() + seconds
    while True:
        with store.memory.reading() as conn:
            others = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            ).fetchone()[0]
        if not others:
            return
        assert time.monotonic() < deadline, f"{others} killed client session(s) linger"
        time.sleep(0.005)


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


def walk_errors(store: TaskStore, task_id: str) -> list[str]:
    """Where a task's history is not a valid walk of the default machine from `pending`."""
    machine = StateMachine()
    history = store.history(task_id)
    errors = []
    if not history or history[0].from_state is not None or history[0].to_state != "pending":
        errors.append(f"{task_id}: history does not start at pending: {history[:1]}")
    for step in history[1:]:
        assert step.from_state is not None
        if not machine.can_move(step.from_state, step.to_state):
            errors.append(f"{task_id}: {step.from_state} -> {step.to_state} at {step.at}")
    return errors


def projection_errors(store: TaskStore, task: Task) -> list[str]:
    """Where the trigger-kept current row differs from a replay of the task's triples."""
    replayed = store.as_of(task.id, "9999-01-01T00:00:00+00:00")
    differ = [
        f"{task.id}.{name}: {getattr(task, name)!r} != replayed {getattr(replayed, name)!r}"
        for name in ("status", "attempts", "owner", "lease_expires_at", "result", "error")
        if getattr(task, name) != getattr(replayed, name)
    ]
    return differ


MODES = {
    "soak": soak,
    "crashloop": crashloop,
    "zygote": zygote,
    "commit_and_report": commit_and_report,
    "add_many": add_many,
    "hold_lock": hold_lock,
}

if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    sys.exit(MODES[mode](*args))
