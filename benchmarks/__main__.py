"""`python -m benchmarks [--quick]`: run every section, print a markdown table, write JSON."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from . import core, deps, growth, procs, reads, rss, startup, waiting
from ._util import Results, Scratch, Sizes, machine

SECTIONS = (
    "limits",
    "cycle",
    "processes",
    "growth",
    "reads",
    "bulk",
    "memory",
    "startup",
    "deps",
    "waiting",
)
RESULTS_DIR = Path(__file__).parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in seconds")
    parser.add_argument(
        "--only", action="append", choices=SECTIONS, help="run only this section (repeatable)"
    )
    parser.add_argument("--rounds", type=int, help="rounds per figure (default 5, quick 2)")
    parser.add_argument(
        "--out", type=Path, help="JSON file to write (default: benchmarks/results/<date>.json)"
    )
    parser.add_argument("--scratch", type=Path, help="folder for the benchmark databases")
    args = parser.parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.rounds:
        from dataclasses import replace

        sizes = replace(sizes, rounds=args.rounds)
    only = set(args.only or SECTIONS)
    res = Results()
    scratch = Scratch(args.scratch)
    began = time.perf_counter()
    try:
        _run(res, sizes, scratch, only)
    finally:
        scratch.cleanup()
    _targets(res)
    doc = {
        "machine": machine(),
        "quick": args.quick,
        "sizes": {k: v for k, v in vars(sizes).items()},
        "seconds": round(time.perf_counter() - began, 1),
        "figures": [f.to_dict() for f in res.figures.values() if f.samples],
        "ratios": {k: res.ratio(k) for k, f in res.figures.items() if f.baseline and f.samples},
        "targets": [t.to_dict() for t in res.targets],
        "notes": res.extra,
    }
    out = args.out or RESULTS_DIR / (
        datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + ("-quick" if args.quick else "") + ".json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(render(doc))
    print(f"\nresults: {out}", file=sys.stderr)
    return 0


def _run(res: Results, sizes: Sizes, scratch: Scratch, only: set[str]) -> None:  # noqa: C901
    def step(name: str) -> bool:
        if name in only:
            print(f"[{time.strftime('%H:%M:%S')}] {name} ...", file=sys.stderr, flush=True)
            return True
        return False

    if step("limits"):
        core.run_limits(res, sizes, scratch)
    if step("cycle"):
        core.run_cycle(res, sizes, scratch)
    if step("processes"):
        procs.run_processes(res, sizes, scratch)
    files = {}
    if step("growth") or {"reads", "bulk"} & only:
        if "growth" not in only:
            sizes_for_files = sizes
            from dataclasses import replace

            sizes_for_files = replace(sizes, rounds=1)
            files = growth.run_growth(res, sizes_for_files, scratch)
        else:
            files = growth.run_growth(res, sizes, scratch)
    big = files[max(files)] if files else None
    if big is not None and step("reads"):
        reads.run_reads(res, sizes, big)
    if step("bulk"):
        reads.run_add_many(res, sizes, scratch)
        if big is not None:
            reads.run_export_import(res, sizes, scratch, big)
    _run_processes_from_outside(res, sizes, scratch, step)


def _run_processes_from_outside(
    res: Results, sizes: Sizes, scratch: Scratch, step: Callable[[str], bool]
) -> None:
    """The sections that measure the command line from a fresh process, then the
    dependency section (which builds its own files)."""
    if step("memory"):
        rss.run_rss(res, sizes, scratch)
    if step("startup"):
        startup.run_startup(res, sizes, scratch)
    if step("deps"):  # builds its own files
        deps.run_deps(res, sizes, scratch)
    if step("waiting"):
        waiting.run_waiting(res, sizes, scratch)


def _targets(res: Results) -> None:
    """The issue's targets, each computed from figures of this run."""
    waiting.targets(res)
    f = res.figures

    def med(key: str) -> float | None:
        return f[key].median if key in f and f[key].samples else None

    res.target(
        "TaskStore cycle / bare-SQL cycle",
        res.ratio("store_cycle", "bare_cycle"),
        0.5,
        True,
        "cycles/s, same run, same backlog",
    )
    lq = res.ratio("store_cycle", "litequeue_cycle")
    res.target("TaskStore cycle / litequeue pop+done", lq, 2.0, True, "at the same backlog")
    keys = [k for k in f if k.startswith("growth_cycle_") and f[k].samples]
    if len(keys) >= 2:
        first, last = keys[0], keys[-1]
        tag_first, tag_last = first.rsplit("_", 1)[1], last.rsplit("_", 1)[1]
        res.target(
            f"cycle rate at {tag_last} / at {tag_first}",
            res.ratio(last, first),
            0.65,
            True,
            "cycles/s (the lead's 1.5x cost bound means >= 0.667)",
        )
        res.target(
            f"bare-SQL cycle rate at {tag_last} / at {tag_first} (for reference)",
            res.ratio(f"growth_bare_cycle_{tag_last}", f"growth_bare_cycle_{tag_first}"),
            0.65,
            True,
            "the same growth without minna-tasks: the disk's share",
        )
        res.target(
            f"status read cost at {tag_last} / at {tag_first}",
            res.ratio(f"growth_read_{tag_last}", f"growth_read_{tag_first}"),
            1.5,
            False,
            "memory.recall(entity, 'status', limit=1)",
        )
    res.target(
        "4 processes / 1 process throughput",
        res.ratio("loop_4", "loop_1"),
        0.9,
        True,
        "state_machine_loop, no-op execute",
    )
    p99, mx, locked = med("claim_p99_4"), None, None
    if "claim_max_4" in f and f["claim_max_4"].samples:
        mx = f["claim_max_4"].high
    if "locked_4" in f and f["locked_4"].samples:
        locked = float(sum(f["locked_4"].samples))
    res.target("claim wait p99, 4 processes (ms)", p99, 5.0, False, "median over rounds")
    res.target("claim wait max, 4 processes (ms)", mx, 1000.0, False, "worst round")
    res.target(
        "locked errors reaching the caller, 4 processes",
        locked,
        1.0,
        False,
        "sum over rounds; target zero",
    )
    res.target(
        "tasks view fetched into Python (ms)",
        med("view_tasks"),
        100.0,
        False,
        f.get("view_tasks").size if "view_tasks" in f else "",
    )
    res.target(
        "tasks view stepped inside SQLite (ms)",
        med("view_sqlite"),
        100.0,
        False,
        f.get("view_sqlite").size if "view_sqlite" in f else "",
    )
    res.target(
        "minna-tasks list / bare python start",
        med("start_list_ratio"),
        3.0,
        False,
        'spawn to exit, against python -c "import sqlite3"',
    )
    res.target(
        "minna-tasks mcp answers initialize (ms)",
        med("start_mcp_initialize"),
        500.0,
        False,
        "spawn to answer",
    )
    res.target(
        "minna-tasks mcp answers server/discover (ms)",
        med("start_mcp_discover"),
        500.0,
        False,
        "spawn to answer, 2026-07-28 clients",
    )
    res.target(
        "run, 4 workers / 1 worker, empty queue",
        med("start_run_ratio"),
        1.5,
        False,
        "spawn to exit",
    )
    res.target(
        "add_many (s)",
        med("add_many"),
        5.0,
        False,
        f.get("add_many").size if "add_many" in f else "",
    )


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def render(doc: dict) -> str:  # type: ignore[type-arg]
    """The markdown report: machine, figures with ratios, targets."""
    m = doc["machine"]
    lines = [
        f"minna-tasks benchmarks, {m['date']}{' (quick sizes)' if doc['quick'] else ''}: "
        f"{m['cores']} cores ({m['cpu']}), SQLite {m['sqlite']}, Python {m['python']}, "
        f"WAL synchronous={m['synchronous']}; median and min-max of the rounds; "
        f"ratio = median / baseline median.",
        "",
        "| section | figure | size | rounds | median | min-max | unit | baseline | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for fig in doc["figures"]:
        ratio = doc["ratios"].get(fig["key"])
        lines.append(
            f"| {fig['section']} | {fig['label']} | {fig['size']} | {fig['rounds']} | "
            f"{_num(fig['median'])} | {_num(fig['min'])}-{_num(fig['max'])} | {fig['unit']} | "
            f"{fig['baseline'] or ''} | {_num(ratio) + 'x' if ratio is not None else ''} |"
        )
    lines += ["", "| target | measured | threshold | met |", "|---|---|---|---|"]
    for t in doc["targets"]:
        sign = ">=" if t["higher_is_better"] else "<"
        lines.append(
            f"| {t['name']} ({t['detail']}) | {_num(t['value'])} | {sign} "
            f"{_num(t['threshold'])} | {'yes' if t['met'] else 'NO'} |"
        )
    if doc["notes"]:
        lines += ["", "Notes: " + json.dumps(doc["notes"], default=str)]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
