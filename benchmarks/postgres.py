"""`python -m benchmarks.postgres [--quick] [--url URL]`: the PostgreSQL figures.

1. cycle: claim -> review -> completed through TaskStore against the same three steps
   in bare SQL on the same server (a status-column queue claimed with FOR UPDATE SKIP
   LOCKED, as procrastinate and pgqueuer do); target >= 0.5x.
2. processes: `state_machine_loop` in 1, 4 and 16 worker processes, each `execute`
   sleeping 10 ms (the stand-in for an agent's work), on PostgreSQL and on SQLite;
   target on PostgreSQL: 16 workers >= 8x one.
3. pickup: a worker waiting for work (LISTEN) claims a task another process adds;
   target p99 <= 50 ms.

Without --url a throwaway cluster is started (tests/pg.py) with pinned settings; the
settings in force are reported either way. Figures are medians of rounds measured in
this run; ratios compare figures of the same run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from minna_tasks import Task, TaskStore, state_machine_loop
from minna_tasks.engines import mask_url

from ._util import percentile

RESULTS_DIR = Path(__file__).parent / "results"
PROCESSES = (1, 4, 16)
WORK_SECONDS = 0.010
WARM_UP = 20  # cycles run before the clock starts (psycopg prepares after 5 uses)


@dataclass(frozen=True)
class Sizes:
    rounds: int = 3
    cycles: int = 500
    tasks_per_worker: int = 25
    pickups: int = 100

    @classmethod
    def quick(cls) -> Sizes:
        return cls(rounds=1, cycles=30, tasks_per_worker=4, pickups=10)


# -- 1. the cycle against bare SQL ----------------------------------------------------

BARE = """
DROP TABLE IF EXISTS bare_jobs;
CREATE TABLE bare_jobs (
    id BIGSERIAL PRIMARY KEY,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    lease_expires_at TEXT,
    result JSONB
);
CREATE INDEX bare_jobs_queue ON bare_jobs (priority DESC, id) WHERE status = 'todo';
"""
BARE_CLAIM = """
UPDATE bare_jobs SET status = 'doing', owner = %s, lease_expires_at = %s
WHERE id = (SELECT id FROM bare_jobs WHERE status = 'todo'
            ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id
"""


def bare_cycles(url: str, n: int) -> float:
    """Cycles per second of the bare queue: each step its own READ COMMITTED transaction."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(BARE)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO bare_jobs (status) VALUES ('todo')", [()] * (n + WARM_UP))
        for i in range(n + WARM_UP):
            if i == WARM_UP:
                start = time.perf_counter()
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
                row = conn.execute(BARE_CLAIM, ("w", "2030-01-01T00:00:00+00:00")).fetchone()
            assert row is not None
            with conn.transaction():
                conn.execute(
                    "UPDATE bare_jobs SET status = 'review', result = '{\"ok\": true}'"
                    " WHERE id = %s AND status = 'doing'",
                    row,
                )
            with conn.transaction():
                conn.execute(
                    "UPDATE bare_jobs SET status = 'done', owner = NULL, lease_expires_at = NULL"
                    " WHERE id = %s AND status = 'review'",
                    row,
                )
        elapsed = time.perf_counter() - start
        conn.execute("DROP TABLE bare_jobs")
    return n / elapsed


def store_cycles(url: str, n: int) -> float:
    """Cycles per second through TaskStore: claim, review with a result, completed."""
    with TaskStore(url) as store:
        store.add_many([f"cycle {i}" for i in range(n + WARM_UP)])
        for i in range(n + WARM_UP):
            if i == WARM_UP:  # statements prepared, caches warm
                start = time.perf_counter()
            task = store.claim("w")
            assert task is not None
            store.transition(task.id, "review", actor="w", result={"ok": True})
            store.transition(task.id, "completed", actor="w")
        return n / (time.perf_counter() - start)


# -- 2. loops in 1, 4 and 16 processes -------------------------------------------------


def _sleepy(task: Task) -> dict[str, bool]:
    time.sleep(WORK_SECONDS)
    return {"ok": True}


def _loop_worker(location: str, name: str, ready: Any, start: Any, done: Any) -> None:
    store = TaskStore(location)
    try:
        ready.put(name)
        start.wait()
        cpu = time.process_time()
        summary = state_machine_loop(store, _sleepy, worker=name)
        done.put((summary["completed"], time.process_time() - cpu))
    finally:
        store.close()


@dataclass
class LoopRun:
    """One timed run of the loop: the rate and the CPU it took per task (the workers'
    own, start-up excluded; the server's when its process can be read)."""

    tasks_per_s: float
    client_cpu_ms: float
    server_cpu_ms: float | None


def loop_run(
    location: str, workers: int, tasks: int, server_cpu: Callable[[], float] | None = None
) -> LoopRun:
    """`workers` processes working `tasks` tasks (started first, timed from a start signal)."""
    with TaskStore(location) as store:
        store.add_many([f"work {i}" for i in range(tasks)])
    ctx = mp.get_context("spawn")
    ready, start, done = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_loop_worker, args=(location, f"w{i}", ready, start, done))
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    for _ in procs:  # every process has imported and opened its store
        ready.get(timeout=300)
    server_before = server_cpu() if server_cpu else 0.0
    began = time.perf_counter()
    start.set()
    reports = [done.get(timeout=600) for _ in procs]
    elapsed = time.perf_counter() - began
    server = server_cpu() - server_before if server_cpu else None
    for p in procs:
        p.join(timeout=60)
    completed = sum(n for n, _ in reports)
    assert completed == tasks, (completed, tasks)
    return LoopRun(
        tasks / elapsed,
        sum(cpu for _, cpu in reports) / tasks * 1000,
        None if server is None else server / tasks * 1000,
    )


# -- 3. pickup latency -----------------------------------------------------------------


def _waiter(url: str, count: int, ready: Any, out: Any) -> None:
    store = TaskStore(url)
    try:
        ready.set()
        for _ in range(count):
            task = store.claim("waiter", wait=30)  # LISTEN/NOTIFY on PostgreSQL
            assert task is not None
            out.put((task.id, time.monotonic()))
            store.transition(task.id, "review", actor="waiter", result="picked up")
            store.transition(task.id, "completed", actor="waiter")
    finally:
        store.close()


def pickup_latencies(url: str, count: int) -> list[float]:
    """Seconds from a task's commit in one process to its claim in a waiting one."""
    ctx = mp.get_context("spawn")
    ready, out = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_waiter, args=(url, count, ready, out))
    proc.start()
    ready.wait(60)
    latencies = []
    with TaskStore(url) as store:
        for i in range(count):
            time.sleep(0.05)  # the waiter is waiting again
            task = store.add(f"pickup {i}")
            added = time.monotonic()
            got_id, got_at = out.get(timeout=60)
            assert got_id == task.id
            latencies.append(got_at - added)
    proc.join(timeout=60)
    return latencies


# -- running ---------------------------------------------------------------------------


def _server_cpu(postmaster: int) -> float:
    """CPU seconds of a server we started (Linux /proc): see `server_cpu` in main."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile: its time is in the postmaster's now
        pid = int(stat.parent.name)
        if pid == postmaster:
            total += sum(int(f) for f in fields[11:15])  # own and reaped children's
        elif int(fields[1]) == postmaster:
            total += sum(int(f) for f in fields[11:13])  # a live backend's own
    return total / os.sysconf("SC_CLK_TCK")


def server_settings(url: str) -> dict[str, str]:
    import psycopg

    names = [
        "server_version",
        "fsync",
        "synchronous_commit",
        "full_page_writes",
        "shared_buffers",
        "max_connections",
        "default_transaction_isolation",
    ]
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT name, setting, coalesce(unit, '') FROM pg_settings WHERE name = ANY(%s)",
            (names,),
        ).fetchall()
    return {name: f"{setting}{(' x ' + unit) if unit else ''}" for name, setting, unit in rows}


def cycle_figure(url_for: Any, sizes: Sizes) -> dict[str, Any]:
    """The store's cycle against the bare queue's, interleaved round by round."""
    ours: list[float] = []
    bare: list[float] = []
    for _ in range(sizes.rounds):  # interleaved, so a busy moment hurts both alike
        ours.append(store_cycles(url_for(), sizes.cycles))
        bare.append(bare_cycles(url_for(), sizes.cycles))
    return {
        "store_cycles_per_s": round(statistics.median(ours), 1),
        "bare_skip_locked_cycles_per_s": round(statistics.median(bare), 1),
        "ratio": round(statistics.median(ours) / statistics.median(bare), 3),
        # Each round's own ratio (store and bare measured back to back): the spread.
        "ratio_per_round": [round(o / b, 3) for o, b in zip(ours, bare, strict=True)],
    }


# Where the cycle's two processes run (see `pin` in main): a round trip between
# processes on one core costs ~20 us on the 2-core VM of RESULTS.md, between cores
# ~150 us (the idle core is woken), and the scheduler picks either, run by run.
PLACEMENTS = ("one core", "two cores")


def run(
    url_for: Any,
    sizes: Sizes,
    scratch: Path,
    server_cpu: Callable[[], float] | None = None,
    pin: Callable[[str | None], None] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["cycle"] = {**cycle_figure(url_for, sizes), "target": ">= 0.5"}
    if pin is not None:
        pinned: dict[str, Any] = {}
        for placement in PLACEMENTS:
            try:
                pin(placement)
                pinned[placement] = cycle_figure(url_for, sizes)
            except OSError as e:
                pinned[placement] = f"not measured: {e}"
            finally:
                pin(None)
        # The same figure with client and server pinned to one core, then to two.
        out["cycle"]["pinned"] = pinned
    for engine in ("postgresql", "sqlite"):
        rates: dict[int, float] = {}
        spread: dict[str, list[float]] = {}
        cpu: dict[str, dict[str, float | None]] = {}
        for workers in PROCESSES:
            runs = []
            for r in range(sizes.rounds):
                if engine == "postgresql":
                    location = url_for()
                else:
                    location = str(scratch / f"loop-{workers}-{r}.db")
                measure = server_cpu if engine == "postgresql" else None
                runs.append(loop_run(location, workers, workers * sizes.tasks_per_worker, measure))
            rates[workers] = statistics.median(r.tasks_per_s for r in runs)
            spread[str(workers)] = [round(r.tasks_per_s, 1) for r in runs]
            server = [r.server_cpu_ms for r in runs if r.server_cpu_ms is not None]
            cpu[str(workers)] = {
                "client_ms": round(statistics.median(r.client_cpu_ms for r in runs), 2),
                "server_ms": round(statistics.median(server), 2) if server else None,
            }
        out[f"processes_{engine}"] = {
            "tasks_per_s": {str(k): round(v, 1) for k, v in rates.items()},
            "tasks_per_s_per_round": spread,
            "ratio_16_to_1": round(rates[16] / rates[1], 2),
            # CPU per task (median of rounds): the workers' own, and the server's.
            "cpu_per_task": cpu,
            "target": ">= 8" if engine == "postgresql" else "(comparison)",
        }
    latencies = pickup_latencies(url_for(), sizes.pickups)
    out["pickup"] = {
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "max_ms": round(max(latencies) * 1000, 2),
        "samples": len(latencies),
        "target": "p99 <= 50 ms",
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.postgres", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--url", help="a server's database to create scratch databases on")
    parser.add_argument("--out", type=Path, help="JSON file to write")
    parser.add_argument("--rounds", type=int, help="rounds per figure (default 3)")
    parser.add_argument(
        "--tasks-per-worker", type=int, help="tasks per worker process in the loops (default 25)"
    )
    args = parser.parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.rounds:
        sizes = replace(sizes, rounds=args.rounds)
    if args.tasks_per_worker:
        sizes = replace(sizes, tasks_per_worker=args.tasks_per_worker)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.pg import Cluster, start_cluster

    cluster: Cluster | None = None
    server_cpu: Callable[[], float] | None = None
    pin: Callable[[str | None], None] | None = None
    if args.url:
        base_url = args.url
        import psycopg

        names = iter(range(1, 10_000))

        def url_for() -> str:
            # A fresh schema per figure on the given database.
            schema = f"bench_{int(time.time())}_{next(names)}"
            with psycopg.connect(base_url, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')  # type: ignore[arg-type]
            sep = "&" if "?" in base_url else "?"
            return f"{base_url}{sep}options=-csearch_path%3D{schema}"
    else:
        cluster = start_cluster()
        base_url = cluster.url()

        postmaster = int((cluster.folder / "data" / "postmaster.pid").read_text().split()[0])

        def url_for() -> str:
            assert cluster is not None
            return cluster.url(cluster.create_database())

        def server_cpu() -> float:
            """CPU seconds the server used so far: the postmaster, its live processes and
            those that ended (a backend's time moves to the postmaster's when it exits)."""
            return _server_cpu(postmaster)

        if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2:
            cpus = sorted(os.sched_getaffinity(0))

            def pin(placement: str | None) -> None:
                """Pin this process to one CPU and the server (the postmaster, whose
                backends inherit it at connection) to the same or another; None: undo."""
                server = {cpus[0] if placement == "one core" else cpus[1]}
                os.sched_setaffinity(postmaster, set(cpus) if placement is None else server)
                os.sched_setaffinity(0, set(cpus) if placement is None else {cpus[0]})

    began = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="minna-bench-") as scratch:
            figures = run(url_for, sizes, Path(scratch), server_cpu, pin)
        doc = {
            "server": mask_url(base_url),
            "settings": server_settings(base_url),
            "quick": args.quick,
            "sizes": vars(sizes),
            "seconds": round(time.perf_counter() - began, 1),
            "figures": figures,
        }
    finally:
        if cluster is not None:
            cluster.stop()
    out = args.out or RESULTS_DIR / (
        "postgres-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + ".json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
