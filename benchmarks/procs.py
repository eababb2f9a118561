"""Section 3b: `state_machine_loop` in 1, 2 and 4 processes on one file.

Each worker is a process started with 'spawn' that opens its own TaskStore,
waits on a shared start event, then runs the loop with a no-op `execute` until
the queue is empty. Every `claim()` call is timed (the wait for the write lock
is inside it), and every error that reaches the caller is counted.
"""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import time
from pathlib import Path
from typing import Any

from minna_tasks import MinnaTasksError, StoreBusy, Task, TaskStore, state_machine_loop

from ._util import Results, Scratch, Sizes, percentile

PROCESSES = (1, 2, 4)


class TimedStore(TaskStore):
    """A TaskStore that records how long each claim() call took (the lock wait included)."""

    claim_waits: list[float]

    def claim(self, worker: str, lease_seconds: float = 300) -> Task | None:
        start = time.perf_counter()
        try:
            return super().claim(worker, lease_seconds)
        finally:
            self.claim_waits.append(time.perf_counter() - start)


def _execute(task: Task) -> dict[str, bool]:
    return {"ok": True}


def worker(path: str, name: str, start: Any, out: Any) -> None:
    """One worker process: open, wait for the start signal, work the queue, report."""
    store = TimedStore(path)
    store.claim_waits = []
    locked = other = 0
    start.wait()
    began = time.monotonic()
    while True:
        try:
            state_machine_loop(store, _execute, worker=name)
            break
        except StoreBusy:
            locked += 1
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                locked += 1
            else:
                other += 1
                break
        except MinnaTasksError:
            other += 1
            break
    ended = time.monotonic()
    store.close()
    out.put(
        {
            "name": name,
            "began": began,
            "ended": ended,
            "waits": store.claim_waits,
            "locked": locked,
            "errors": other,
        }
    )


def run_processes(res: Results, sizes: Sizes, scratch: Scratch) -> None:
    n = sizes.proc_tasks
    for p in PROCESSES:
        base = None if p == 1 else "loop_1"
        res.figure(
            f"loop_{p}",
            "3 minna-tasks",
            f"state_machine_loop, {p} process(es)",
            "ops/s",
            f"{n} tasks/round",
            baseline=base,
            note="cycles/s from the start signal to the last worker done",
        )
        res.figure(
            f"claim_p50_{p}",
            "3 minna-tasks",
            f"claim wait p50, {p} process(es)",
            "ms",
            f"{n} claims/round",
        )
        res.figure(
            f"claim_p99_{p}",
            "3 minna-tasks",
            f"claim wait p99, {p} process(es)",
            "ms",
            f"{n} claims/round",
        )
        res.figure(
            f"claim_max_{p}",
            "3 minna-tasks",
            f"claim wait max, {p} process(es)",
            "ms",
            f"{n} claims/round",
        )
        res.figure(
            f"locked_{p}",
            "3 minna-tasks",
            f"'database is locked' errors reaching the caller, {p} process(es)",
            "count",
            f"{n} tasks/round",
        )
    ctx = mp.get_context("spawn")
    for _ in range(sizes.proc_rounds):
        for p in PROCESSES:
            path = scratch.path(f"loop-{p}")
            with TaskStore(path) as store:
                store.add_many([{"title": f"task {i}", "payload": {"n": i}} for i in range(n)])
            _one(res, ctx, path, p, n)


def _one(res: Results, ctx: Any, path: Path, p: int, n: int) -> None:
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(str(path), f"w{i}", start, out)) for i in range(p)]
    for proc in procs:
        proc.start()
    time.sleep(0.5 + 0.3 * p)  # let every worker import and open its store first
    start.set()
    reports = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    waits = [w * 1000 for r in reports for w in r["waits"]]
    elapsed = max(r["ended"] for r in reports) - min(r["began"] for r in reports)
    with TaskStore(path) as store:
        done = store.stats()["completed"]
    if done != n:
        raise RuntimeError(f"{p} processes completed {done} of {n} tasks")
    res.add(f"loop_{p}", n / elapsed)
    res.add(f"claim_p50_{p}", percentile(waits, 50))
    res.add(f"claim_p99_{p}", percentile(waits, 99))
    res.add(f"claim_max_{p}", max(waits))
    res.add(f"locked_{p}", sum(r["locked"] + r["errors"] for r in reports))
