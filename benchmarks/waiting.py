"""Section "waiting": workers that wait for work (issue 13).

- Pickup latency: process A waits in `claim(wait=...)`; this process (B) adds a
  task at random gaps; the time from B's commit (its `add` returned) to A
  holding the task (its `claim` returned), on the system-wide monotonic clock.
- Idle cost: a process waiting in `claim(wait=...)` (and one following loop) on
  an empty queue: its CPU time as % of one core, and whether the file or its WAL
  changed at all.
- Throughput: `minna-tasks run --follow --workers 4` while a producer adds tasks at
  an even rate; every task must be executed once and none left pending.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from minna_tasks import TaskStore, state_machine_loop

from ._util import Results, Scratch, Sizes, percentile

CLI = str(Path(sys.executable).with_name("minna-tasks"))


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in (path, path.with_name(path.name + "-wal")):
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()


def _waiter(path: str, n: int, ready: Any, out: Any) -> None:
    """Process A: claim n tasks, each with a wait; report (task number, when held)."""
    held: list[tuple[int, float]] = []
    with TaskStore(path) as store:
        ready.set()
        while len(held) < n:
            task = store.claim("A", wait=60)
            now = time.monotonic()
            if task is None:
                break
            held.append((int(task.payload["i"]), now))
    out.put(held)


def run_latency(res: Results, sizes: Sizes, scratch: Scratch) -> None:
    n = sizes.wait_tasks
    size = f"{n} tasks, gaps 20-80 ms"
    res.figure("pickup_p50", "waiting", "pickup latency p50 (B commits -> A holds)", "ms", size)
    res.figure("pickup_p99", "waiting", "pickup latency p99", "ms", size)
    res.figure("pickup_max", "waiting", "pickup latency max", "ms", size)
    ctx = mp.get_context("spawn")
    for _ in range(sizes.wait_rounds):
        path = scratch.path("pickup")
        TaskStore(path).close()
        ready, out = ctx.Event(), ctx.Queue()
        proc = ctx.Process(target=_waiter, args=(str(path), n, ready, out))
        proc.start()
        ready.wait(60)
        committed: dict[int, float] = {}
        rng = random.Random(13)
        with TaskStore(path) as store:
            for i in range(n):
                time.sleep(rng.uniform(0.02, 0.08))  # A is idle at every stage of its backoff
                store.add(f"task {i}", payload={"i": i})
                committed[i] = time.monotonic()
        held = out.get(timeout=120)
        proc.join(60)
        lat = [(at - committed[i]) * 1000 for i, at in held]
        if len(lat) != n:
            res.extra["pickup_missing"] = n - len(lat)
        res.add("pickup_p50", percentile(lat, 50))
        res.add("pickup_p99", percentile(lat, 99))
        res.add("pickup_max", max(lat))


def _idle_claim(path: str, seconds: float, ready: Any, out: Any) -> None:
    with TaskStore(path) as store:
        ready.set()
        began, cpu = time.monotonic(), time.process_time()
        assert store.claim("idle", wait=seconds) is None
        out.put((time.process_time() - cpu, time.monotonic() - began))


def _idle_loop(path: str, seconds: float, ready: Any, out: Any) -> None:
    with TaskStore(path) as store:
        stop = threading.Event()
        ready.set()
        began, cpu = time.monotonic(), time.process_time()
        timer = threading.Timer(seconds, stop.set)
        timer.start()
        state_machine_loop(store, lambda t: None, worker="idle", follow=True, stop=stop)
        out.put((time.process_time() - cpu, time.monotonic() - began))


def run_idle(res: Results, sizes: Sizes, scratch: Scratch) -> None:
    seconds = sizes.idle_seconds
    size = f"{seconds:g} s, empty queue"
    cases = (("claim", _idle_claim, "claim(wait=...)"), ("loop", _idle_loop, "follow loop"))
    for key, _, label in cases:
        res.figure(f"idle_cpu_{key}", "waiting", f"idle CPU, {label}", "% of a core", size)
        res.figure(f"idle_writes_{key}", "waiting", f"bytes changed while idle, {label}", "", size)
    ctx = mp.get_context("spawn")
    for _ in range(sizes.wait_rounds):
        for key, target, _ in cases:
            path = scratch.path(f"idle-{key}")
            with TaskStore(path) as store:
                store.add("held by someone else")
                store.claim("other", lease_seconds=3600)  # a live lease: nothing to recover
            ready, out = ctx.Event(), ctx.Queue()
            proc = ctx.Process(target=target, args=(str(path), seconds, ready, out))
            proc.start()
            ready.wait(60)
            time.sleep(0.2)  # let the opening finish its own writes (views) before the digest
            before = _digest(path)
            cpu, wall = out.get(timeout=seconds + 120)
            after = _digest(path)
            proc.join(60)
            res.add(f"idle_cpu_{key}", 100 * cpu / wall)
            res.add(f"idle_writes_{key}", 0.0 if before == after else 1.0)


def run_follow(res: Results, sizes: Sizes, scratch: Scratch) -> None:
    n, rate = sizes.follow_tasks, sizes.follow_rate
    size = f"{n} tasks added at {rate:g}/s, 4 workers, CMD = sh"
    res.figure("follow_rate", "waiting", "run --follow throughput", "tasks/s", size)
    res.figure("follow_lag", "waiting", "last add -> all completed", "s", size)
    res.figure("follow_e2e_p50", "waiting", "add -> completed p50", "ms", size)
    res.figure("follow_e2e_p99", "waiting", "add -> completed p99", "ms", size)
    res.figure("follow_lost", "waiting", "tasks not executed exactly once", "", size)
    for _ in range(sizes.follow_rounds):
        path = scratch.path("follow")
        log = path.with_name("executed.log")
        TaskStore(path).close()
        run = subprocess.Popen(
            [CLI, "--db", str(path), "run", "--follow", "--workers", "4", "--no-progress", "--"]
            + [f'echo "$MINNA_TASK_ID" >> "{log}"'],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        with TaskStore(path) as store:
            warmup = _warm_up(store, 4)
            began = time.monotonic()
            for i in range(n):
                delay = began + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                store.add(f"task {i}")
            last_add = time.monotonic()
            deadline = last_add + 60 + n / rate * 2
            while store.stats()["completed"] < n + warmup and time.monotonic() < deadline:
                time.sleep(0.05)
            done = time.monotonic()
            stats = store.stats()
            changes = store.changes()
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=120)
        created = {c.task_id: c.at for c in changes if c.from_state is None}
        finished = {c.task_id: c.at for c in changes if c.to_state == "completed"}
        measured = [f"t-{i}" for i in range(warmup + 1, warmup + n + 1)]
        e2e = [_ms(created[t], finished[t]) for t in measured if t in finished]
        lines = log.read_text().split() if log.exists() else []
        lost = abs(n + warmup - len(set(lines))) + (len(lines) - len(set(lines)))
        res.add("follow_rate", (stats["completed"] - warmup) / (done - began))
        res.add("follow_lag", done - last_add)
        res.add("follow_e2e_p50", percentile(e2e, 50))
        res.add("follow_e2e_p99", percentile(e2e, 99))
        res.add("follow_lost", float(lost + stats["pending"] + (run.returncode != 0)))
        if run.returncode != 0:
            res.extra["follow_exit"] = [run.returncode, err[-500:]]


def _warm_up(store: TaskStore, workers: int) -> int:
    """Add warm-up tasks until `workers` distinct workers have completed one (the worker
    processes are started and waiting); the number of warm-up tasks."""
    added, seen = 0, set()
    deadline = time.monotonic() + 120
    while len(seen) < workers and time.monotonic() < deadline:
        if len(store.queue(limit=1)) == 0:
            store.add("warm-up")
            added += 1
        time.sleep(0.02)
        seen = {t.owner for t in store.list(status="in_progress")} | seen
        seen |= {c.actor for c in store.changes() if c.to_state == "completed"}
    return added


def _ms(start: str, end: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() * 1000


def run_waiting(res: Results, sizes: Sizes, scratch: Scratch) -> None:
    run_latency(res, sizes, scratch)
    run_idle(res, sizes, scratch)
    run_follow(res, sizes, scratch)


def targets(res: Results) -> None:
    """The issue's targets for this section."""
    f = res.figures

    def med(key: str) -> float | None:
        return f[key].median if key in f and f[key].samples else None

    res.target("pickup latency p50 (ms)", med("pickup_p50"), 20.0, False, "median over rounds")
    res.target("pickup latency p99 (ms)", med("pickup_p99"), 100.0, False, "median over rounds")
    res.target(
        "idle CPU of a waiting claim (% of a core)", med("idle_cpu_claim"), 2.0, False, "median"
    )
    res.target(
        "idle CPU of a following loop (% of a core)", med("idle_cpu_loop"), 2.0, False, "median"
    )
    for key in ("idle_writes_claim", "idle_writes_loop"):
        if key in f and f[key].samples:
            res.target(
                f"rounds where the file changed while idle ({key[12:]})",
                float(sum(f[key].samples)),
                1.0,
                False,
                "target zero",
            )
    if "follow_lost" in f and f["follow_lost"].samples:
        res.target(
            "tasks not executed exactly once, or left pending (run --follow)",
            float(sum(f["follow_lost"].samples)),
            1.0,
            False,
            "target zero",
        )
