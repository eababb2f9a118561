"""The change feed under concurrent writers on PostgreSQL: ids are drawn at insert, not
at commit, so transactions commit out of id order; `changes()`, `watch()`, `minna-tasks
watch` and the MCP relay must still see every change exactly once, in a stable order.

Real transactions on a real cluster (tests/pg.py), real writer processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from minna_tasks import TaskStore, Transition
from minna_tasks.store.changes import changes, touched

from .test_waiting import DEADLINE, python, until

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).with_name("minna-tasks")


def open_transaction(url: str) -> Any:
    """A plain psycopg connection with a transaction left open (a plain-SQL writer)."""
    import psycopg

    return psycopg.connect(url, autocommit=False)


def append_status(conn: Any, task_id: str, status: str) -> int:
    """A status row written by plain SQL (the projection's triggers keep the task right);
    its memory id. The transaction stays open."""
    row = conn.execute(
        "INSERT INTO memories (entity, attribute, value, source, created_at)"
        " VALUES (%s, 'status', to_jsonb(%s::text), 'plain-sql', %s) RETURNING id",
        (task_id, status, datetime.now(UTC).isoformat()),
    ).fetchone()
    return int(row[0])


def test_a_change_committed_out_of_id_order_is_never_skipped(pg_url: str) -> None:
    with TaskStore(pg_url) as store:
        a, b = store.add("a"), store.add("b")
        start = store.changes()[-1].cursor
        x, y = open_transaction(pg_url), open_transaction(pg_url)
        try:
            x_id = append_status(x, a.id, "in_progress")
            y_id = append_status(y, b.id, "in_progress")
            assert x_id < y_id
            y.commit()  # the higher id is committed first
            # Readers that start between the two commits.
            early = store.changes(since=start)
            stop = threading.Event()
            seen: list[Transition] = []
            watcher = threading.Thread(
                target=lambda: seen.extend(store.watch(since=start, stop=stop))
            )
            watcher.start()
            with TaskStore(pg_url) as other:
                live: list[Transition] = []
                from_now = threading.Thread(target=lambda: live.extend(other.watch(stop=stop)))
                from_now.start()
                time.sleep(0.2)  # let both watchers read the log with X still open
                x.commit()
                until(lambda: len(seen) >= 2 and x_id in [c.cursor for c in live], what="both")
                time.sleep(0.2)  # room for a duplicate to show up, should there be one
                stop.set()
                watcher.join(DEADLINE)
                from_now.join(DEADLINE)
        finally:
            x.close()
            y.close()
        # Resuming from the last cursor the early read returned gives the rest, once.
        resumed = early + store.changes(since=early[-1].cursor if early else start)
        complete = store.changes(since=start)
    assert sorted(c.cursor or 0 for c in complete) == [x_id, y_id]
    assert [c.cursor for c in resumed] == [c.cursor for c in complete]
    assert [c.cursor for c in seen] == [c.cursor for c in complete]
    # A watch from "now" may include Y (committed just before it, but held back behind X):
    # never twice, and never without X.
    assert sorted(c.cursor or 0 for c in live) in ([x_id], [x_id, y_id])
    assert [(c.task_id, c.from_state, c.to_state) for c in complete] == [
        (a.id, "pending", "in_progress"),
        (b.id, "pending", "in_progress"),
    ]


def test_the_mcp_relay_sees_a_change_committed_out_of_id_order(pg_url: str) -> None:
    with TaskStore(pg_url) as store:
        a, b = store.add("a"), store.add("b")
        position = touched(store).position
        x, y = open_transaction(pg_url), open_transaction(pg_url)
        try:
            append_status(x, a.id, "in_progress")
            append_status(y, b.id, "in_progress")
            y.commit()
            first = touched(store, position)
            x.commit()
            # Read again as the relay does, until nothing is held back (an unrelated
            # transaction, e.g. an autovacuum's, may hold the rows a moment longer).
            seen: list[str] = []
            at = first.position

            def relay() -> bool:
                nonlocal at
                batch = touched(store, at)
                seen.extend(batch.rows)
                at = batch.position
                return len(seen) >= 2 and not batch.held

            until(relay, what="the relay's reads")
        finally:
            x.close()
            y.close()
    assert first.rows == []
    assert first.held
    assert sorted(seen) == [a.id, b.id]


def test_paging_a_long_feed_by_cursor_gives_each_change_once(pg_url: str) -> None:
    with TaskStore(pg_url) as store:
        for i in range(30):
            store.add(f"t{i}")
        for _ in range(10):
            store.claim("w")
        complete = store.changes()
        paged: list[Transition] = []
        cursor = 0
        while page := changes(store, since=cursor, limit=7):
            paged += page
            cursor = page[-1].cursor or 0
    assert len(complete) == 40
    assert paged == complete
    assert [c.cursor for c in paged] == [c.cursor for c in complete]


WRITER = """
import random, sys, time
from minna_tasks import TaskStore
url, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(name)
with TaskStore(url) as store:
    for i in range(count):
        # Keep each transaction open a little after its rows took their ids, so
        # commits overtake each other out of id order.
        with store.memory.transaction():
            task = store.add(f"{name}-{i}")
            time.sleep(rng.random() * 0.004)
        claimed = store.claim(name)
        if claimed is not None:
            with store.memory.transaction():
                store.transition(claimed.id, "review", actor=name, token=claimed.claim_token)
                time.sleep(rng.random() * 0.004)
            store.transition(claimed.id, "completed", actor=name, token=claimed.claim_token)
"""


def test_several_writer_processes_one_watcher_every_change_seen_once(pg_url: str) -> None:
    writers, per_writer = 4, 40
    with TaskStore(pg_url):
        pass  # create the schema before the processes race to
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    watcher = subprocess.Popen(
        [str(SCRIPT), "--db", pg_url, "watch", "--json", "--since", since],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(watcher.stdout or ()))
    reader.start()
    procs = [python(WRITER, pg_url, f"w{n}", str(per_writer)) for n in range(writers)]
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
        with TaskStore(pg_url) as store:
            expected = store.changes()
        # Every task was added and most were claimed and completed: a long log.
        assert len(expected) >= writers * per_writer
        until(lambda: len(lines) >= len(expected), what="the watcher to print every change")
        time.sleep(0.5)  # room for a duplicate to show up, should there be one
    finally:
        watcher.terminate()
        watcher.communicate(timeout=DEADLINE)
        reader.join(DEADLINE)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    printed = [json.loads(line) for line in lines]
    cursors = [p["cursor"] for p in printed]
    assert len(cursors) == len(set(cursors)), "a change was printed twice"
    assert cursors == [c.cursor for c in expected]  # the same order as changes()
    # Per task, the feed follows the task's own history.
    for change in expected:
        assert change.from_state != change.to_state
    by_task: dict[str, list[str]] = {}
    for p in printed:
        by_task.setdefault(p["task_id"], []).append(p["to_state"])
    assert all(states[0] == "pending" for states in by_task.values())


def test_a_store_from_before_the_feed_migration_keeps_its_data_and_its_feed(
    pg_url: str,
) -> None:
    """A database written before memory step 3 (no txid) and tasks step 5 (the recount
    guard): opened again, both migrate, every change stays in the feed, and changes
    made afterwards come after the old ones."""
    with TaskStore(pg_url) as store:
        first = store.add("a")
        second = store.add("b", depends_on=[first.id])
        store.claim("w")
        before = store.changes()
    with open_transaction(pg_url) as conn:  # back to the schema of the previous release
        conn.execute("ALTER TABLE memories DROP COLUMN txid")
        conn.execute("DROP FUNCTION task_deps_recount(TEXT[])")
        conn.execute("ALTER FUNCTION task_deps_recount_listed(TEXT[]) RENAME TO task_deps_recount")
        conn.execute("UPDATE schema_components SET version = 2 WHERE name = 'memory'")
        conn.execute("UPDATE schema_components SET version = 4 WHERE name = 'tasks'")
        conn.commit()
    with TaskStore(pg_url) as store:
        assert store.changes() == before
        assert [c.cursor for c in store.changes()] == [c.cursor for c in before]
        task = store.get(first.id)
        assert task is not None
        store.transition(task.id, "review", actor="w", token=task.claim_token)
        store.transition(task.id, "completed", actor="w")
        after = store.changes(since=before[-1].cursor)
        assert store.get(second.id).blocked_by == ()  # the recount still counts
        assert store.claim("w2").id == second.id
    assert [(c.task_id, c.to_state) for c in after] == [
        (first.id, "review"),
        (first.id, "completed"),
    ]
    with open_transaction(pg_url) as conn:
        versions = dict(conn.execute("SELECT name, version FROM schema_components").fetchall())
    assert versions["memory"] >= 3
    assert versions["tasks"] >= 5
