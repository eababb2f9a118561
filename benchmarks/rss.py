"""Section 8: peak memory of `minna-tasks run` stays flat as the queue grows.

The worker is run at a small and a ten times larger queue, each in a fresh
helper process that reports the peak RSS of its children
(`RUSAGE_CHILDREN`), so nothing of this process is counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from minna_tasks import TaskStore

from ._util import Results, Scratch, Sizes
from .reads import cli_has

# Runs argv[2:] with MINNA_DB=argv[1] and prints the children's peak RSS in KiB.
PROBE = """
import os, resource, subprocess, sys
env = {**os.environ, "MINNA_DB": sys.argv[1]}
done = subprocess.run(sys.argv[2:], env=env, capture_output=True, text=True)
if done.returncode != 0:
    sys.exit(f"worker failed ({done.returncode}): {done.stderr.strip()[-500:]}")
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""

# The library loop, for when the command line has no `run` yet.
LOOP = """
import os
from minna_tasks import TaskStore, state_machine_loop
with TaskStore(os.environ["MINNA_DB"]) as store:
    state_machine_loop(store, lambda task: {"ok": True})
"""


def worker_argv() -> tuple[list[str], str]:
    if cli_has("run"):
        return [sys.executable, "-m", "minna_tasks", "run", "--", "true"], "minna-tasks run -- true"
    return [sys.executable, "-c", LOOP], "state_machine_loop in a fresh process (no CLI run yet)"


def peak_rss_mb(db: Path, argv: list[str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(db), *argv],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
    )
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def run_rss(res: Results, sizes: Sizes, scratch: Scratch) -> None:
    argv, how = worker_argv()
    res.extra["rss_via"] = how
    small, large = sizes.rss_tasks
    res.figure("rss_small", "8 memory", f"peak RSS of {how}", "MB", f"{small} tasks")
    res.figure(
        "rss_large",
        "8 memory",
        f"peak RSS of {how}",
        "MB",
        f"{large} tasks",
        baseline="rss_small",
        note="flat means a ratio near 1.0",
    )
    for _ in range(sizes.rss_rounds):
        for key, n in (("rss_small", small), ("rss_large", large)):
            db = scratch.path(f"rss-{n}")
            with TaskStore(db) as store:
                store.add_many([{"title": f"task {i}", "payload": {"n": i}} for i in range(n)])
            res.add(key, peak_rss_mb(db, argv))
            with TaskStore(db) as store:
                stats = store.stats()
            if stats["completed"] != n:
                raise RuntimeError(f"the worker left tasks undone: {json.dumps(stats)}")
