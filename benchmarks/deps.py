"""Dependencies: claiming with most of the queue blocked, and completing a task that
unblocks others, each against the same work with no dependencies (same run, same size).

Claims (and cycles) are measured round by round, interleaved between the two stores,
so drift on a shared machine hits both alike.
"""

from __future__ import annotations

import time

from minna_tasks import TaskStore

from ._util import Results, Scratch, Sizes

FANOUT = 10  # dependents per task in the unblocking cycle


def _claim_rate(store: TaskStore, n: int) -> float:
    """Claims per second; each claimed task is handed back (untimed), so every claim
    sees the same queue."""
    spent = 0.0
    for _ in range(n):
        start = time.perf_counter()
        task = store.claim("bench")
        spent += time.perf_counter() - start
        assert task is not None
        store.release(task.id, "bench")
    return n / spent


def _cycle_rate(store: TaskStore, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        task = store.claim("bench")
        assert task is not None
        assert task.priority == 1  # a task others wait for (or its twin without any)
        store.transition(task.id, "review", expected="in_progress", actor="bench")
        store.transition(task.id, "completed", expected="review", actor="bench")
    return n / (time.perf_counter() - start)


def _claim_stores(scratch: Scratch, total: int, blocked: int) -> tuple[TaskStore, TaskStore]:
    """Two stores of `total` pending tasks: in one, `blocked` of them wait for a held task."""
    ready = TaskStore(scratch.path("deps-none-blocked"))
    ready.add_many([f"task {i}" for i in range(total)])
    waiting = TaskStore(scratch.path("deps-most-blocked"))
    gate = waiting.add("gate", priority=100)
    assert waiting.claim("gatekeeper") is not None  # held: its dependents stay blocked
    waiting.add_many(
        [{"title": f"blocked {i}", "depends_on": [gate.id]} for i in range(blocked)]
        + [f"ready {i}" for i in range(total - blocked)]
    )
    assert waiting.readiness() == {"ready": total - blocked, "blocked": blocked}
    return ready, waiting


def _cycle_stores(scratch: Scratch, heads: int) -> tuple[TaskStore, TaskStore]:
    """Two stores of `heads` tasks of priority 1 and FANOUT tasks per head of priority 0:
    in one, each head's FANOUT tasks depend on it; in the other, they depend on nothing."""
    plain = TaskStore(scratch.path("deps-cycle-plain"))
    fanned = TaskStore(scratch.path("deps-cycle-fanout"))
    for store, linked in ((plain, False), (fanned, True)):
        specs: list[dict[str, object]] = []
        for h in range(heads):
            specs.append({"title": f"head {h}", "task_id": f"h-{h}", "priority": 1})
            specs.extend(
                {"title": f"next {h}.{k}", **({"depends_on": [f"h-{h}"]} if linked else {})}
                for k in range(FANOUT)
            )
        store.add_many(specs)
    return plain, fanned


def run_deps(res: Results, sizes: Sizes, scratch: Scratch) -> None:
    total = sizes.big_tasks
    blocked = total * 99 // 100
    claims = sizes.cycles
    res.figure(
        "claim_none_blocked",
        "6 dependencies",
        "claim, no task blocked",
        "ops/s",
        f"{claims} claims/round, {total} pending",
    )
    res.figure(
        "claim_most_blocked",
        "6 dependencies",
        "claim, 99% of the pending tasks blocked",
        "ops/s",
        f"{claims} claims/round, {total} pending, {blocked} blocked",
        baseline="claim_none_blocked",
    )
    res.figure(
        "cycle_no_dependents",
        "6 dependencies",
        "cycle claim->review->completed, task with no dependents",
        "ops/s",
        f"{sizes.cycles} cycles/round",
    )
    res.figure(
        "cycle_unblocks_10",
        "6 dependencies",
        f"cycle claim->review->completed, task that unblocks {FANOUT}",
        "ops/s",
        f"{sizes.cycles} cycles/round",
        baseline="cycle_no_dependents",
    )
    ready, waiting = _claim_stores(scratch, total, blocked)
    try:
        for _ in range(sizes.rounds):
            res.add("claim_none_blocked", _claim_rate(ready, claims))
            res.add("claim_most_blocked", _claim_rate(waiting, claims))
    finally:
        ready.close()
        waiting.close()
    plain, fanned = _cycle_stores(scratch, sizes.cycles * sizes.rounds)
    try:
        for _ in range(sizes.rounds):
            res.add("cycle_no_dependents", _cycle_rate(plain, sizes.cycles))
            res.add("cycle_unblocks_10", _cycle_rate(fanned, sizes.cycles))
    finally:
        plain.close()
        fanned.close()
    claim = res.ratio("claim_most_blocked")
    cycle = res.ratio("cycle_unblocks_10")
    res.target(
        "claim cost, 99% blocked / none blocked",
        None if not claim else 1 / claim,
        1.5,
        False,
        f"{total} pending; cost = 1 / claims per second",
    )
    res.target(
        f"cycle cost, task unblocking {FANOUT} / task with none",
        None if not cycle else 1 / cycle,
        2.0,
        False,
        "claim -> review -> completed",
    )
