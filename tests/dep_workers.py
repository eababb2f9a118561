"""Worker programs for the dependency tests, run as real processes.

Usage: python -m tests.dep_workers MODE DB [ARGS...]
"""

from __future__ import annotations

import sys
import time

from minna_tasks import DependencyError, Task, TaskNotFound, TaskStore, state_machine_loop


def diamond(db: str, log: str, worker: str) -> int:
    """Work the queue; log each executed task with whether its dependencies were all
    completed when it started (1) or not (0)."""
    store = TaskStore(db)
    with open(log, "a", buffering=1) as out:

        def execute(task: Task) -> str:
            ready = all(store.get(dep).status == "completed" for dep in task.depends_on)
            out.write(f"{task.id} {int(ready)} {worker}\n")
            time.sleep(0.2)  # long enough for the other workers to look for work meanwhile
            return worker

        try:
            state_machine_loop(store, execute, worker=worker, lease_seconds=60)
        finally:
            store.close()
    return 0


def complete_all(db: str, count: str) -> int:
    """Claim and complete tasks until `count` are done (racing `depend_all`)."""
    store = TaskStore(db)
    done = 0
    try:
        while done < int(count):
            task = store.claim("completer")
            if task is None:
                time.sleep(0.001)
                continue
            store.transition(task.id, "review", actor="completer")
            store.transition(task.id, "completed", actor="completer")
            done += 1
    finally:
        store.close()
    return 0


def depend_all(db: str, waiting: str, count: str) -> int:
    """Make `waiting` depend on d-0 .. d-(count-1), one change per transaction."""
    store = TaskStore(db)
    try:
        for i in range(int(count)):
            try:
                store.depend(waiting, f"d-{i}", actor="planner")
            except (DependencyError, TaskNotFound) as e:
                print(f"ERROR {e}", file=sys.stderr)
                return 4
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    sys.exit(
        {"diamond": diamond, "complete_all": complete_all, "depend_all": depend_all}[mode](*args)
    )
