"""PostgreSQL's CPU per task, kept down without changing behaviour: the change listener's
connection is kept between waits (a new backend per wait cost ~2.9 ms of CPU), and the
dependency functions are PL/pgSQL (their plans kept for the session).

Real cluster (tests/pg.py), real writer processes.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any

import psycopg

from minna_tasks import TaskStore

from .test_waiting import DEADLINE, until


def listeners(url: str) -> list[tuple[int, str]]:
    """(backend pid, state) of the store's change-listener connections on this database."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, state FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'minna-tasks listen'"
        ).fetchall()
    return [(int(pid), str(state)) for pid, state in rows]


def add_from_another_process(url: str, title: str) -> None:
    code = "import sys; from minna_tasks import TaskStore; TaskStore(sys.argv[1]).add(sys.argv[2])"
    subprocess.run([sys.executable, "-c", code, url, title], check=True, timeout=120)


def test_waits_reuse_one_listener_connection_and_still_wake(pg_url: str) -> None:
    with TaskStore(pg_url) as store:
        for i in range(3):
            got: dict[str, Any] = {}

            def wait(got: dict[str, Any] = got) -> None:
                got["task"] = store.claim("w", wait=DEADLINE)

            waiter = threading.Thread(target=wait)
            waiter.start()
            until(lambda: listeners(pg_url), what="the waiter to listen")
            add_from_another_process(pg_url, f"job {i}")  # a commit from another backend
            waiter.join(DEADLINE)
            assert got["task"] is not None
            assert got["task"].title == f"job {i}"
            store.transition(got["task"].id, "review", actor="w", token=got["task"].claim_token)
            # One listener backend for every wait so far: kept, not reopened.
            assert len(listeners(pg_url)) == 1
        (pid, _), *_ = listeners(pg_url)
        assert store.claim("w", wait=0.05) is None
        assert [p for p, _ in listeners(pg_url)] == [pid]
    # Closing the store closes the kept listener too.
    until(lambda: not listeners(pg_url), what="the kept listener to close")


def test_a_kept_listener_does_not_listen_between_waits(pg_url: str) -> None:
    """Between waits the kept connection has undone its LISTEN: commits meanwhile queue
    nothing for it (an idle listener would hold PostgreSQL's notification queue back)."""
    with TaskStore(pg_url) as store:
        assert store.claim("w", wait=0.05) is None
        (pid, _), *_ = listeners(pg_url)
        memory: Any = store.memory  # a PostgreSQL memory (engines/postgres/database.py)
        kept = memory.take_listener()
        try:
            assert kept is not None
            assert kept.info.backend_pid == pid
            assert kept.execute("SELECT count(*) FROM pg_listening_channels()").fetchone() == (0,)
            store.add("meanwhile")
            assert list(kept.notifies(timeout=0.2)) == []
        finally:
            assert memory.keep_listener(kept)
        # And the next wait listens again: it is woken by a commit.
        task = store.claim("w", wait=DEADLINE)  # "meanwhile" is there already
        assert task is not None
        assert task.title == "meanwhile"


def test_dependency_functions_are_plpgsql_and_still_count(pg_url: str) -> None:
    with TaskStore(pg_url) as store:
        a = store.add("a")
        b = store.add("b", depends_on=[a.id])
        with psycopg.connect(pg_url, autocommit=True) as conn:
            languages: dict[str, str] = dict(
                conn.execute(
                    "SELECT p.proname, l.lanname FROM pg_proc p JOIN pg_language l"
                    " ON l.oid = p.prolang WHERE p.proname LIKE 'task_deps_%'"
                ).fetchall()
            )
        assert languages["task_deps_dependents"] == "plpgsql"
        assert languages["task_deps_recount_listed"] == "plpgsql"
        claimed = store.claim("w")
        assert claimed is not None
        assert claimed.id == a.id
        assert store.claim("w") is None  # b waits for a
        store.transition(a.id, "review", actor="w", token=claimed.claim_token)
        store.transition(a.id, "completed", actor="w", token=claimed.claim_token)
        nxt = store.claim("w")
        assert nxt is not None
        assert nxt.id == b.id


def test_a_store_migrated_before_the_plpgsql_functions_is_upgraded(pg_url: str) -> None:
    """A database at task schema 5 (SQL-language dependency functions) gets migration 6
    on open, its counts and tasks kept."""
    from minna_tasks.engines.postgres import dependencies, schema

    with TaskStore(pg_url) as store:
        a = store.add("a")
        b = store.add("b", depends_on=[a.id])
    old_functions = dependencies.MIGRATION[
        dependencies.MIGRATION.index("CREATE OR REPLACE FUNCTION task_deps_recount(") : (
            dependencies.MIGRATION.index("CREATE OR REPLACE FUNCTION task_deps_relations()")
        )
    ].replace("task_deps_recount(", "task_deps_recount_listed(")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(old_functions)
        conn.execute("UPDATE schema_components SET version = 5 WHERE name = 'tasks'")
        assert conn.execute(
            "SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"
            " WHERE p.proname = 'task_deps_dependents'"
        ).fetchone() == ("sql",)
    with TaskStore(pg_url) as store:
        assert store.get(b.id).blocked_by == (a.id,)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        version = conn.execute(
            "SELECT version FROM schema_components WHERE name = 'tasks'"
        ).fetchone()
        assert version == (len(schema.COMPONENTS["tasks"]),)
        assert conn.execute(
            "SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"
            " WHERE p.proname = 'task_deps_dependents'"
        ).fetchone() == ("plpgsql",)
