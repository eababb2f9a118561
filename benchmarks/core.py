"""Sections 1-4: the commit limit, the bare-SQL cycle, TaskStore, and litequeue.

All single-process figures are measured round by round, interleaved (bare,
store, litequeue in each round), so drift on a shared machine hits them alike.
Before each round every contender gets the same number of fresh tasks, so the
pending backlog is the same at the start of every round.
"""

from __future__ import annotations

import time

from minna_tasks import TaskStore

from . import bare
from ._util import Results, Scratch, Sizes


def run_limits(res: Results, sizes: Sizes, scratch: Scratch) -> None:
    res.figure(
        "commit_normal",
        "1 limit",
        "raw single-row commit, WAL synchronous=NORMAL",
        "ops/s",
        f"{sizes.commits_normal} commits",
    )
    res.figure(
        "commit_full",
        "1 limit",
        "raw single-row commit, WAL synchronous=FULL",
        "ops/s",
        f"{sizes.commits_full} commits",
        baseline="commit_normal",
    )
    normal, full = scratch.path("commit-normal"), scratch.path("commit-full")
    for _ in range(sizes.rounds):
        res.add("commit_normal", bare.commit_rate(normal, "NORMAL", sizes.commits_normal))
        res.add("commit_full", bare.commit_rate(full, "FULL", sizes.commits_full))


def _store_cycle(store: TaskStore, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        task = store.claim("bench")
        assert task is not None
        store.transition(
            task.id, "review", expected="in_progress", actor="bench", result={"ok": True}
        )
        store.transition(task.id, "completed", expected="review", actor="bench")
    return n / (time.perf_counter() - start)


def _store_transition(store: TaskStore, n: int) -> float:
    claimed = []
    for _ in range(n):
        task = store.claim("bench")
        assert task is not None
        claimed.append(task.id)
    start = time.perf_counter()
    for task_id in claimed:
        store.transition(
            task_id, "review", expected="in_progress", actor="bench", result={"ok": True}
        )
    return n / (time.perf_counter() - start)


def run_cycle(res: Results, sizes: Sizes, scratch: Scratch) -> None:
    backlog, b = sizes.backlog, sizes.cycles
    size = f"{b} cycles/round, {backlog} pending backlog"
    res.figure(
        "bare_cycle",
        "2 data shape",
        "bare-SQL cycle claim->review->completed (3 tx, 8 triples, same index)",
        "ops/s",
        size,
        baseline="commit_normal",
        note="ratio: cycles/s over single commits/s (a cycle is 3 commits)",
    )
    res.figure(
        "bare_transition",
        "2 data shape",
        "bare-SQL transition in_progress->review",
        "ops/s",
        f"{b} transitions/round",
        baseline="commit_normal",
    )
    res.figure(
        "store_cycle",
        "3 minna-tasks",
        "TaskStore cycle claim->review->completed",
        "ops/s",
        size,
        baseline="bare_cycle",
    )
    res.figure(
        "store_transition",
        "3 minna-tasks",
        "TaskStore.transition in_progress->review",
        "ops/s",
        f"{b} transitions/round",
        baseline="bare_transition",
    )

    bare_conn = bare.create(scratch.path("bare-cycle"), 0)
    store = TaskStore(scratch.path("store-cycle"))
    queue = _litequeue(scratch, res)
    n_bare = 0
    try:
        _fill(store, bare_conn, queue, backlog, 0)
        n_bare = backlog
        bare_next = 0  # oldest pending bare task: the bare "claim" knows the queue order
        for _ in range(sizes.rounds):
            # Refill so every round starts at the same backlog (2 x b consumed per round).
            _fill(store, bare_conn, queue, 2 * b, n_bare)
            n_bare += 2 * b
            start = time.perf_counter()
            for i in range(bare_next, bare_next + b):
                bare.cycle(bare_conn, f"t-{i}")
            res.add("bare_cycle", b / (time.perf_counter() - start))
            bare_next += b
            res.add("store_cycle", _store_cycle(store, b))
            if queue is not None:
                res.add("litequeue_cycle", _litequeue_cycle(queue, b))
            ids = [f"t-{i}" for i in range(bare_next, bare_next + b)]
            for task_id in ids:
                bare.claim(bare_conn, task_id)
            start = time.perf_counter()
            for task_id in ids:
                bare.review(bare_conn, task_id)
            res.add("bare_transition", b / (time.perf_counter() - start))
            bare_next += b
            res.add("store_transition", _store_transition(store, b))
    finally:
        bare_conn.close()
        store.close()
        if queue is not None:
            queue.conn.close()


def _fill(store: TaskStore, bare_conn: object, queue: object, n: int, offset: int) -> None:
    import sqlite3

    store.add_many([{"title": f"task {i}", "payload": {"n": 1}} for i in range(n)], actor="bench")
    assert isinstance(bare_conn, sqlite3.Connection)
    bare.add_tasks(bare_conn, [f"t-{i}" for i in range(offset, offset + n)])
    if queue is not None:
        with queue.transaction():  # type: ignore[attr-defined]
            for i in range(n):
                queue.put(f'{{"n": {offset + i}}}')  # type: ignore[attr-defined]


def _litequeue(scratch: Scratch, res: Results) -> object | None:
    try:
        from litequeue import LiteQueue
    except ImportError:  # the `bench` extra is not installed: say so, measure the rest
        res.extra["litequeue"] = "not installed (pip install -e '.[bench]')"
        return None
    res.figure(
        "litequeue_cycle",
        "4 alternative",
        "litequeue pop + done",
        "ops/s",
        "same backlog and rounds as the TaskStore cycle",
        baseline="store_cycle",
        note="ratio: litequeue over TaskStore (target: TaskStore >= 2x, ratio <= 0.5)",
    )
    return LiteQueue(str(scratch.path("litequeue")))


def _litequeue_cycle(queue: object, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        message = queue.pop()  # type: ignore[attr-defined]
        assert message is not None
        queue.done(message.message_id)  # type: ignore[attr-defined]
    return n / (time.perf_counter() - start)
