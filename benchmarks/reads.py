"""Sections 6 and 7: reads over 100 k tasks, add_many, and JSON export/import with history."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from minna_tasks import TaskStore

from . import bare
from ._util import Results, Scratch, Sizes, copy_db


def run_reads(res: Results, sizes: Sizes, big: Path) -> None:
    """The `tasks` view and TaskStore.list over the big file (fresh connections, like a tool)."""
    with TaskStore(big) as store:
        n = len(store.list())
    size = f"{n} tasks"
    res.figure(
        "view_tasks",
        "6 reads",
        "SELECT * FROM tasks (the view), all rows",
        "ms",
        size,
        baseline="view_raw",
    )
    res.figure(
        "view_raw", "6 reads", "baseline: SELECT * FROM task_current (the table)", "ms", size
    )
    res.figure(
        "view_sqlite",
        "6 reads",
        "the tasks view stepped inside SQLite (max() of every column, no Python rows)",
        "ms",
        size,
        baseline="view_tasks",
        note="what the view costs SQLite itself; the rest of a fetch is Python objects",
    )
    res.figure(
        "list_pending",
        "6 reads",
        "TaskStore.list(status='pending')",
        "ms",
        size,
        baseline="list_raw",
    )
    res.figure("list_raw", "6 reads", "baseline: bare SELECT of the pending rows", "ms", size)
    res.figure(
        "list_all", "6 reads", "TaskStore.list() (every task)", "ms", size, baseline="view_tasks"
    )
    for _ in range(sizes.rounds):
        conn = sqlite3.connect(big)
        try:
            res.add("view_raw", _query_ms(conn, "SELECT * FROM task_current"))
            res.add("view_tasks", _query_ms(conn, "SELECT * FROM tasks"))
            res.add("view_sqlite", _query_ms(conn, VIEW_SCAN))
            res.add(
                "list_raw",
                _query_ms(conn, "SELECT * FROM task_current WHERE status = 'pending' ORDER BY seq"),
            )
        finally:
            conn.close()
        with TaskStore(big) as store:
            res.add("list_pending", _ms(lambda: store.list(status="pending")))  # noqa: B023
            res.add("list_all", _ms(lambda: store.list()))  # noqa: B023


# Every column of every row of the view, reduced in SQLite so no Python row is built.
VIEW_SCAN = (
    "SELECT count(*), max(id), max(title), max(description), max(status), max(priority),"
    " max(attempts), max(max_attempts), max(owner), max(lease_expires_at), max(error),"
    " max(payload), max(result), max(created_at), max(updated_at)"
    " FROM (SELECT * FROM tasks)"
)


def _query_ms(conn: sqlite3.Connection, sql: str) -> float:
    start = time.perf_counter()
    conn.execute(sql).fetchall()
    return (time.perf_counter() - start) * 1000


def _ms(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def run_add_many(res: Results, sizes: Sizes, scratch: Scratch) -> None:
    n = sizes.add_many
    res.figure(
        "add_many",
        "7 bulk",
        "TaskStore.add_many (one transaction)",
        "s",
        f"{n} tasks, 7 triples each",
        baseline="bare_add",
    )
    res.figure(
        "bare_add",
        "7 bulk",
        "baseline: bare executemany of the same triples",
        "s",
        f"{n * 7} triples",
    )
    specs = [{"title": f"task {i}", "payload": {"n": 1}} for i in range(n)]
    for _ in range(sizes.bulk_rounds):
        conn = bare.create(scratch.path("bare-add"), 0)
        ids = [f"t-{i}" for i in range(n)]
        start = time.perf_counter()
        bare.add_tasks(conn, ids)
        res.add("bare_add", time.perf_counter() - start)
        conn.close()
        with TaskStore(scratch.path("add-many")) as store:
            start = time.perf_counter()
            store.add_many(specs, actor="bench")
            res.add("add_many", time.perf_counter() - start)


def _cli() -> list[str]:
    return [sys.executable, "-m", "minna_tasks"]


def _env(db: Path) -> dict[str, str]:
    return {**os.environ, "MINNA_DB": str(db)}


def cli_has(command: str) -> bool:
    """True when the `minna-tasks` command line offers this command (it is built in parallel)."""
    done = subprocess.run([*_cli(), command, "--help"], capture_output=True, check=False)
    return done.returncode == 0


def run_export_import(res: Results, sizes: Sizes, scratch: Scratch, big: Path) -> None:
    use_cli = cli_has("export") and cli_has("import")
    how = "minna-tasks export/import" if use_cli else "TaskStore.facts/restore + json (no CLI yet)"
    res.extra["export_import_via"] = how
    with TaskStore(big) as store:
        tasks = len(store.list())
        triples = int(
            store.memory.connection.execute("SELECT count(*) FROM memories").fetchone()[0]
        )
    size = f"{tasks} tasks, {triples} triples"
    res.figure(
        "export", "7 bulk", f"JSON export with history ({how})", "s", size, baseline="bare_export"
    )
    res.figure("bare_export", "7 bulk", "baseline: json.dump of every memories row", "s", size)
    res.figure(
        "import", "7 bulk", f"JSON import with history ({how})", "s", size, baseline="bare_import"
    )
    res.figure("bare_import", "7 bulk", "baseline: bare executemany of every triple", "s", size)
    for _ in range(sizes.bulk_rounds):
        out = scratch.path("export").with_name("tasks.json")
        start = time.perf_counter()
        if use_cli:
            subprocess.run(
                [*_cli(), "export", str(out)], check=True, capture_output=True, env=_env(big)
            )
        else:
            _export_core(big, out)
        res.add("export", time.perf_counter() - start)
        raw = out.with_name("raw.json")
        start = time.perf_counter()
        rows = _bare_export(big, raw)
        res.add("bare_export", time.perf_counter() - start)
        target = scratch.path("import")
        TaskStore(target).close()
        start = time.perf_counter()
        if use_cli:
            subprocess.run(
                [*_cli(), "import", str(out)], check=True, capture_output=True, env=_env(target)
            )
        else:
            _import_core(out, target)
        res.add("import", time.perf_counter() - start)
        with TaskStore(target) as check:
            if len(check.list()) != tasks:
                raise RuntimeError("import did not write every task")
        conn = bare.create(scratch.path("bare-import"), 0)
        start = time.perf_counter()
        data = json.loads(raw.read_text())
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(bare.INSERT, data)
        conn.execute("COMMIT")
        res.add("bare_import", time.perf_counter() - start)
        conn.close()
        del rows
        shutil.rmtree(out.parent, ignore_errors=True)
        for suffix in ("", "-wal", "-shm"):
            Path(str(target) + suffix).unlink(missing_ok=True)


def _export_core(db: Path, out: Path) -> None:
    with TaskStore(db) as store:
        doc = {
            "format": "minna-tasks",
            "version": 1,
            "tasks": [
                {"id": t.id, "created_at": t.created_at, "facts": store.facts(t.id)}
                for t in store.iter()
            ],
        }
    out.write_text(json.dumps(doc))


def _import_core(src: Path, db: Path) -> None:
    doc = json.loads(src.read_text())
    with TaskStore(db) as store:
        store.restore(doc["tasks"])


def _bare_export(db: Path, out: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT entity, attribute, value, source, context, created_at FROM memories ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    out.write_text(json.dumps(rows))
    return len(rows)


def big_copy(scratch: Scratch, src: Path) -> Path:
    dst = scratch.path("big")
    copy_db(src, dst)
    return dst
