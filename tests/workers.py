"""Worker programs run as real processes by the concurrency and crash tests.

Usage: python -m tests.workers MODE DB [ARGS...]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from minna_tasks import MinnaTasksError, Task, TaskStore, TransitionConflict, state_machine_loop


def wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(0.001)


def move(db: str, task_id: str, worker: str, go: str) -> int:
    """Try to claim one specific task at a signal; exit 0 if we got it, 3 on conflict."""
    store = TaskStore(db)
    wait_for(Path(go))
    try:
        store.transition(task_id, "in_progress", expected="pending", actor=worker)
    except TransitionConflict:
        return 3
    finally:
        store.close()
    return 0


def loop(db: str, log: str, worker: str) -> int:
    """Work the queue; append every executed task id to `log` (one line each)."""
    store = TaskStore(db)
    with open(log, "a", buffering=1) as out:

        def execute(task: Task) -> dict[str, str]:
            out.write(f"{task.id} {task.attempts}\n")
            return {"by": worker}

        try:
            state_machine_loop(store, execute, lambda t: t.result["by"] == worker, worker=worker)
        except MinnaTasksError as e:  # would include 'database is locked' (StoreBusy)
            print(f"ERROR {e}", file=sys.stderr)
            return 4
        finally:
            store.close()
    return 0


def _mark(marker: str, text: str) -> None:
    """Write `marker` whole or not at all: a test that sees it exist may read it at once."""
    part = Path(marker + ".part")
    part.write_text(text)
    os.replace(part, marker)


def hang(db: str, marker: str, where: str) -> int:
    """Claim a task and hang in execute or in verify until killed."""
    store = TaskStore(db)

    def stall(task: Task) -> bool:
        _mark(marker, task.id)
        time.sleep(3600)
        return True

    if where == "execute":
        state_machine_loop(store, stall, worker=f"hang-{os.getpid()}", lease_seconds=60)
    else:
        state_machine_loop(
            store, lambda t: "done", stall, worker=f"hang-{os.getpid()}", lease_seconds=60
        )
    return 0


def stall(db: str, marker: str, go: str, worker: str) -> int:
    """Work the queue as `worker`, stalling in execute (after writing `marker`) until `go`
    exists; print the loop's summary as JSON."""
    store = TaskStore(db)

    def execute(task: Task) -> str:
        _mark(marker, str(task.claim_token))
        wait_for(Path(go))
        return "late result"

    try:
        summary = state_machine_loop(store, execute, worker=worker, lease_seconds=60)
    finally:
        store.close()
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    sys.exit({"move": move, "loop": loop, "hang": hang, "stall": stall}[mode](*args))
