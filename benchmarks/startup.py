"""Section 9: what one command costs from spawn, as agents call the CLI in loops.

Every figure is wall time from spawn, next to a bare `python -c "import sqlite3"`
started the same way in the same round: `minna-tasks list` on a small file,
`minna-tasks mcp` until it answers `initialize` and until it answers
`server/discover` (the 2026-07-28 protocol's first request; both answered while
the SDK still loads), and `run` on an empty queue with one and with four workers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from minna_tasks import TaskStore

from ._util import Results, Scratch, Sizes

SCRIPT = str(Path(sys.executable).with_name("minna-tasks"))
# Each sample is the median of this many starts (a start is tens of milliseconds).
STARTS = 5

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "minna-tasks-benchmarks", "version": "1"},
    },
}
DISCOVER = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "server/discover",
    "params": {
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {
                "name": "minna-tasks-benchmarks",
                "version": "1",
            },
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    },
}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _wall_ms(argv: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=True)
    return (time.perf_counter() - began) * 1000


def _interleaved(commands: dict[str, list[str]]) -> dict[str, list[float]]:
    """STARTS starts of each command, taken in turn (bare, list, bare, list, ...), so
    that a burst of load on a shared machine hits all of them alike."""
    times: dict[str, list[float]] = {key: [] for key in commands}
    for _ in range(STARTS):
        for key, argv in commands.items():
            times[key].append(_wall_ms(argv))
    return times


def _mcp_answer_ms(db: Path, request: dict[str, object]) -> float:
    """Time from spawning `minna-tasks mcp` to its answer to `request`."""
    began = time.perf_counter()
    with subprocess.Popen(
        [SCRIPT, "--db", str(db), "mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        answer = proc.stdout.readline()
        elapsed = (time.perf_counter() - began) * 1000
        proc.stdin.close()
        proc.wait(timeout=60)
    if '"result"' not in answer:
        raise RuntimeError(f"minna-tasks mcp did not answer {request['method']}: {answer!r}")
    return elapsed


def _mcp_rounds(db: Path, bare: list[str]) -> dict[str, list[float]]:
    """STARTS answers to `initialize` and to `server/discover`, each after a bare start."""
    times: dict[str, list[float]] = {"bare": [], "initialize": [], "discover": []}
    for _ in range(STARTS):
        times["bare"].append(_wall_ms(bare))
        times["initialize"].append(_mcp_answer_ms(db, INITIALIZE))
        times["discover"].append(_mcp_answer_ms(db, DISCOVER))
    return times


def _compile_project() -> None:
    """Compile the project's modules as an install does (pip writes the .pyc files; an
    editable checkout under PYTHONDONTWRITEBYTECODE=1 never would), so that every start
    measures the command, not the compiler."""
    import compileall

    import minna_tasks_cli

    import minna_tasks

    for package in (minna_tasks, minna_tasks_cli):
        compileall.compile_dir(Path(package.__file__).parent, quiet=1)


def run_startup(res: Results, sizes: Sizes, scratch: Scratch) -> None:
    _compile_project()
    bare = [sys.executable, "-c", "import sqlite3"]
    res.figure("start_bare", "9 startup", 'python -c "import sqlite3"', "ms", "spawn to exit")
    res.figure(
        "start_list",
        "9 startup",
        "minna-tasks list",
        "ms",
        "20 tasks, spawn to exit",
        baseline="start_bare",
    )
    res.figure(
        "start_list_json",
        "9 startup",
        "minna-tasks list --json",
        "ms",
        "20 tasks, spawn to exit",
        baseline="start_bare",
    )
    res.figure(
        "start_mcp_initialize",
        "9 startup",
        "minna-tasks mcp answers initialize",
        "ms",
        "spawn to answer",
        baseline="start_bare",
    )
    res.figure(
        "start_mcp_discover",
        "9 startup",
        "minna-tasks mcp answers server/discover (2026-07-28 clients)",
        "ms",
        "spawn to answer",
        baseline="start_bare",
    )
    res.figure(
        "start_mcp_ratio",
        "9 startup",
        "minna-tasks mcp answers initialize / the bare start just before it",
        "x",
        "median of pairs",
    )
    res.figure(
        "start_mcp_discover_ratio",
        "9 startup",
        "minna-tasks mcp answers server/discover / the same bare start",
        "x",
        "median of pairs",
    )
    res.figure("start_run_1", "9 startup", "run -- true, 1 worker", "ms", "empty queue")
    res.figure(
        "start_run_4",
        "9 startup",
        "run -- true, 4 workers",
        "ms",
        "empty queue",
        baseline="start_run_1",
    )
    res.figure(
        "start_list_ratio",
        "9 startup",
        "minna-tasks list / the bare start just before it",
        "x",
        "median of pairs",
    )
    res.figure(
        "start_run_ratio",
        "9 startup",
        "run with 4 workers / with 1 just before it",
        "x",
        "median of pairs",
    )
    db = scratch.path("startup")
    with TaskStore(db) as store:
        store.add_many([f"task {i}" for i in range(20)])
    empty = scratch.path("startup-empty")
    TaskStore(empty).close()
    for _ in range(sizes.rounds):
        times = _interleaved(
            {
                "start_bare": bare,
                "start_list": [SCRIPT, "--db", str(db), "list"],
                "start_list_json": [SCRIPT, "--db", str(db), "list", "--json"],
            }
        )
        for key, values in times.items():
            res.add(key, _median(values))
        # The ratio of each start to the bare start just before it, robust to load bursts.
        pairs = zip(times["start_list"], times["start_bare"], strict=True)
        res.add("start_list_ratio", _median([t / b for t, b in pairs]))
        mcp = _mcp_rounds(db, bare)
        res.add("start_mcp_initialize", _median(mcp["initialize"]))
        res.add("start_mcp_discover", _median(mcp["discover"]))
        pairs = zip(mcp["initialize"], mcp["bare"], strict=True)
        res.add("start_mcp_ratio", _median([t / b for t, b in pairs]))
        pairs = zip(mcp["discover"], mcp["bare"], strict=True)
        res.add("start_mcp_discover_ratio", _median([t / b for t, b in pairs]))
        runs = _interleaved(
            {
                f"start_run_{n}": [
                    SCRIPT,
                    "--db",
                    str(empty),
                    "run",
                    "--workers",
                    str(n),
                    "--",
                    "true",
                ]
                for n in (1, 4)
            }
        )
        for key, values in runs.items():
            res.add(key, _median(values))
        pairs = zip(runs["start_run_4"], runs["start_run_1"], strict=True)
        res.add("start_run_ratio", _median([t / b for t, b in pairs]))
