"""Soak: 4 worker processes on one file work 10 k tasks with injected failures.

Failures of execution and verification are decided by a seeded hash of (task,
attempt), so the test knows every task's final state and attempt count in
advance, whatever the scheduling, and checks each one against the store and
against the execution log the workers write.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from minna_tasks import TaskStore

from .reliability_workers import decide, integrity, start, walk_errors

TASKS = 10_000
WORKERS = 4
SEED = "soak-1"
FAIL_PERCENT = 15
MAX_ATTEMPTS = 3


def expected_outcome(task_id: str) -> tuple[str, int, int]:
    """(final status, final attempts, number of executions) for one task."""
    for attempt in range(MAX_ATTEMPTS):
        executed, verified = decide(SEED, task_id, attempt, FAIL_PERCENT)
        if executed and verified:
            return "completed", attempt, attempt + 1
    return "failed", MAX_ATTEMPTS, MAX_ATTEMPTS


def read_log(logs: list[Path]) -> dict[str, list[tuple[int, str, int, int]]]:
    runs: dict[str, list[tuple[int, str, int, int]]] = defaultdict(list)
    for log in logs:
        for line in log.read_text().splitlines():
            task_id, attempt, worker, begin, end = line.split()
            runs[task_id].append((int(attempt), worker, int(begin), int(end)))
    return runs


@pytest.mark.slow
def test_soak_4_processes_10k_tasks_with_failures(db_path: Path, tmp_path: Path) -> None:
    with TaskStore(db_path) as store:
        ids = [t.id for t in store.add_many([f"soak {i}" for i in range(TASKS)])]
    logs = [tmp_path / f"worker{i}.log" for i in range(WORKERS)]
    procs = [
        start("soak", str(db_path), str(log), f"w{i}", SEED, str(FAIL_PERCENT))
        for i, log in enumerate(logs)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=400)
        assert proc.returncode == 0, err
    runs = read_log(logs)
    assert set(runs) == set(ids)  # none lost, nothing executed that was not added
    expected = {task_id: expected_outcome(task_id) for task_id in ids}
    assert sum(n for _, _, n in expected.values()) == sum(map(len, runs.values()))
    # The seed injects both outcomes in quantity.
    finals = [status for status, _, _ in expected.values()]
    assert 200 < finals.count("failed") < 1000
    assert sum(len(r) > 1 for r in runs.values()) > 1000

    problems: list[str] = []
    with TaskStore(db_path) as store:
        tasks = {t.id: t for t in store.list()}
        assert store.stats() == {
            "pending": 0,
            "in_progress": 0,
            "review": 0,
            "completed": finals.count("completed"),
            "failed": finals.count("failed"),
        }
        for task_id in ids:
            task = tasks[task_id]
            status, attempts, executions = expected[task_id]
            if (task.status, task.attempts, task.owner) != (status, attempts, None):
                problems.append(f"{task_id}: {task.status}/{task.attempts}/{task.owner}")
            attempt_numbers = [a for a, _, _, _ in sorted(runs[task_id], key=lambda r: r[2])]
            # Every execution saw its own attempt number, in order: each is accounted for.
            if attempt_numbers != list(range(executions)):
                problems.append(f"{task_id}: executions at attempts {attempt_numbers}")
            intervals = sorted((b, e) for _, _, b, e in runs[task_id])
            for (_, end), (begin, _) in zip(intervals, intervals[1:], strict=False):
                if begin <= end:
                    problems.append(f"{task_id}: executed by two workers at once")
            history = store.history(task_id)
            claims = sum(step.to_state == "in_progress" for step in history)
            if claims != executions or history[-1].to_state != status:
                problems.append(f"{task_id}: {claims} claims for {executions} executions")
            problems.extend(walk_errors(store, task_id))
    assert problems == []
    # Every worker took part.
    assert {w for r in runs.values() for _, w, _, _ in r} == {f"w{i}" for i in range(WORKERS)}
    assert integrity(db_path) == "ok"
