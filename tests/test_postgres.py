"""What only PostgreSQL has: claim races through separate connections, READ COMMITTED
whatever the server's default, row locks, plain-SQL writers, NOTIFY, schema versions,
credentials and roles. The shared behaviour is the conformance suite (conftest.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from minna_tasks import MinnaMemory, TaskStore, state_machine_loop
from minna_tasks.engines import is_postgres_url, mask_url
from minna_tasks.errors import StoreBusy, StoreError

from .pg import Cluster, pg_dump, pg_integrity

ROOT = Path(__file__).resolve().parent.parent
CLI = "import sys; from minna_tasks_cli.main import cli; cli(sys.argv[1:])"


def raw(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def test_url_detection_and_masking() -> None:
    assert is_postgres_url("postgresql://u@h/db")
    assert is_postgres_url("postgres://h/db")
    assert not is_postgres_url(".spine/minna.db")
    assert not is_postgres_url(Path("x"))
    assert mask_url("postgresql://ann:hunter2@db.example:5432/q") == (
        "postgresql://ann:****@db.example:5432/q"
    )
    masked = mask_url("postgresql://ann@h/q?sslmode=require&password=hunter2")
    assert "hunter2" not in masked
    assert "sslmode=require" in masked
    assert mask_url("postgresql://ann@h/q") == "postgresql://ann@h/q"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        # libpq reads the credentials up to the first '@' before any '/': a raw '#' or
        # '?' is part of the password (urlsplit would end the host there).
        ("postgresql://ann:ab#cd@h/q", "postgresql://ann:****@h/q"),
        ("postgresql://ann:ab?cd@h:5/q?sslmode=require", "postgresql://ann:****@h:5/q?sslmode=require"),
        ("postgres://ann:a:b@h/q", "postgres://ann:****@h/q"),
        ("postgresql://h/q?user=ann&password=p%20w&sslmode=require",
         "postgresql://h/q?user=ann&password=****&sslmode=require"),
        # Nothing to mask: the URL exactly as given (no re-encoding).
        ("postgresql:///tasks?service=q", "postgresql:///tasks?service=q"),
        ("postgresql://ann@h/q?application_name=a%20b", "postgresql://ann@h/q?application_name=a%20b"),
        ("postgresql://h/db@x", "postgresql://h/db@x"),
    ],
)  # fmt: skip
def test_a_password_is_masked_where_libpq_reads_one(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_one_cycle_and_the_views(pg_url: str) -> None:
    with TaskStore(pg_url) as store:
        task = store.add("hello", payload={"n": 1}, priority=2)
        claimed = store.claim("w1")
        assert claimed is not None
        assert claimed.id == task.id
        assert claimed.owner == "w1"
        store.transition(task.id, "review", actor="w1", result={"ok": True})
        done = store.transition(task.id, "completed", actor="w1")
        assert done.status == "completed"
        assert done.result == {"ok": True}
        assert store.memory.recall(entity=task.id, attribute="status")[0]["value"] == "completed"
    with raw(pg_url) as conn:
        assert conn.execute("SELECT id, status FROM tasks").fetchall() == [(task.id, "completed")]
        moves = conn.execute("SELECT from_state, to_state FROM task_transitions").fetchall()
        assert moves == [
            (None, "pending"),
            ("pending", "in_progress"),
            ("in_progress", "review"),
            ("review", "completed"),
        ]
        assert conn.execute("SELECT * FROM task_status_counts").fetchall() == [("completed", 1)]


def test_claims_run_at_read_committed_whatever_the_server_default(
    pg_cluster: Cluster, pg_url: str
) -> None:
    """A server defaulting to SERIALIZABLE must not turn contention into failures."""
    dbname = pg_url.split("/")[3].split("?")[0]
    pg_cluster.admin(
        f"ALTER DATABASE \"{dbname}\" SET default_transaction_isolation = 'serializable'"
    )
    with TaskStore(pg_url) as store:
        with store.memory.transaction() as conn:
            level = conn.execute("SHOW transaction_isolation").fetchone()[0]
        assert level == "read committed"
        # A claim is one statement in a transaction of its own: the session's default.
        level = store.memory.connection.execute("SHOW transaction_isolation").fetchone()[0]
        assert level == "read committed"
        store.add_many([f"t{i}" for i in range(200)])
        got: list[str] = []
        errors: list[BaseException] = []

        def worker(name: str) -> None:
            try:
                with TaskStore(pg_url) as mine:
                    while (task := mine.claim(name)) is not None:
                        got.append(task.id)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors
        assert sorted(got) == sorted(f"t-{i}" for i in range(1, 201))


def test_a_locked_task_is_skipped_by_claims_and_waited_for_by_moves(pg_url: str) -> None:
    with TaskStore(pg_url, timeout=0.2) as store:
        first, second = store.add_many(["first", "second"])
        with raw(pg_url) as other:
            other.execute("BEGIN")
            other.execute("SELECT 1 FROM task_current WHERE id = %s FOR UPDATE", (first.id,))
            claimed = store.claim("w")  # SKIP LOCKED: the next one, no waiting
            assert claimed is not None
            assert claimed.id == second.id
            with pytest.raises(StoreBusy, match="busy"):
                store.transition(first.id, "in_progress", actor="w")  # a guarded move waits
            other.execute("ROLLBACK")
        assert store.get(first.id).status == "pending"
        assert store.transition(first.id, "in_progress", actor="w").owner == "w"


def _claim_behind_a_lock(store: TaskStore, url: str, locker: Any) -> Any:
    """Claim in a thread while `locker` holds a ready row's lock; once the claim waits on
    that lock (pg_stat_activity says so), commit `locker`; the claim's result."""
    got: dict[str, Any] = {}
    claimer = threading.Thread(target=lambda: got.update(task=store.claim("w")))
    claimer.start()
    with raw(url) as watcher:
        deadline = time.monotonic() + 60
        while claimer.is_alive() and time.monotonic() < deadline:
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            ).fetchone()[0]
            if waiting:
                break
            time.sleep(0.01)
    locker.execute("COMMIT")
    claimer.join(timeout=60)
    assert not claimer.is_alive()
    return got["task"]


def test_a_claim_does_not_call_the_queue_empty_past_a_row_a_refused_move_locks(
    pg_url: str,
) -> None:
    """SKIP LOCKED alone passed over a ready task whose row a move that would not take it
    had locked (a refused heartbeat), and the claim said the queue was empty."""
    with TaskStore(pg_url) as store:
        only = store.add("only")
        with raw(pg_url) as other:
            other.execute("BEGIN")
            other.execute("SELECT 1 FROM task_current WHERE id = %s FOR UPDATE", (only.id,))
            claimed = _claim_behind_a_lock(store, pg_url, other)
        assert claimed is not None
        assert claimed.id == only.id
        assert store.get(only.id).owner == "w"


def test_a_claim_waiting_for_a_row_passes_over_it_when_another_claim_took_it(
    pg_url: str,
) -> None:
    """The wait's READ COMMITTED re-check: a row claimed meanwhile (here by a plain-SQL
    status row, whose trigger moves the projection) is not handed out twice."""
    with TaskStore(pg_url) as store:
        taken, ready = store.add_many(["taken", "ready"])
        with raw(pg_url) as other:
            other.execute("BEGIN")
            other.execute("SELECT 1 FROM task_current FOR UPDATE")
            other.execute(
                "INSERT INTO memories (entity, attribute, value, source, created_at)"
                " VALUES (%s, 'status', '\"in_progress\"', 'elsewhere', %s)",
                (taken.id, "2026-12-01T00:00:00.000000+00:00"),
            )
            claimed = _claim_behind_a_lock(store, pg_url, other)
        assert claimed is not None
        assert claimed.id == ready.id
        assert store.get(taken.id).status == "in_progress"


def test_heartbeats_postponed_while_the_row_is_locked(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Another session holds the task's row during heartbeats: they are postponed, not
    given up, and the task completes under the same lease (SQLite's busy-file test)."""
    import logging

    caplog.set_level(logging.INFO, logger="minna_tasks.loop")
    with TaskStore(pg_url, timeout=0.05) as store:
        task = store.add("slow")

        def execute(t: Any) -> str:
            with raw(pg_url) as holder:
                holder.execute("BEGIN")
                holder.execute("SELECT 1 FROM task_current WHERE id = %s FOR UPDATE", (t.id,))
                deadline = time.monotonic() + 60
                while sum("postponed" in r.getMessage() for r in caplog.records) < 2:
                    assert time.monotonic() < deadline, "no postponed heartbeat"
                    time.sleep(0.01)
                holder.execute("ROLLBACK")
            return "done"

        summary = state_machine_loop(
            store, execute, worker="w", lease_seconds=60, heartbeat_seconds=0.02
        )
        assert summary["completed"] == 1
        assert store.get(task.id).result == "done"


def test_plain_sql_writers_keep_the_projection_right(pg_url: str) -> None:
    with TaskStore(pg_url) as store:
        task = store.add("by hand")
    with raw(pg_url) as conn:
        conn.execute(
            "INSERT INTO memories (entity, attribute, value, source, created_at)"
            " VALUES (%s, 'status', '\"failed\"', 'psql', '2030-01-01T00:00:00+00:00'),"
            " (%s, 'priority', '\"7\"', 'psql', '2030-01-01T00:00:01+00:00'),"
            " (%s, 'attempts', '\"abc\"', 'psql', '2030-01-01T00:00:02+00:00')",
            (task.id, task.id, task.id),
        )
    with TaskStore(pg_url) as store:
        now = store.get(task.id)
        assert (now.status, now.priority, now.attempts) == ("failed", 7, 0)
        assert now.updated_at == "2030-01-01T00:00:02+00:00"
    assert pg_integrity(pg_url) == "ok"


def test_bulk_writes_build_the_projection_the_triggers_would(pg_url: str) -> None:
    with TaskStore(pg_url) as store:
        store.add_many(["a", {"title": "b", "priority": 4, "payload": {"k": [1]}}])
        stamp = "2026-01-01T00:00:00.000000+00:00"
        facts = [
            {"attribute": "title", "value": "restored", "created_at": stamp},
            {"attribute": "priority", "value": "7", "created_at": stamp},
            {"attribute": "attempts", "value": "abc", "created_at": stamp},
            {"attribute": "status", "value": "pending", "created_at": stamp, "source": "x"},
            {"attribute": "owner", "value": None, "created_at": stamp},
        ]
        store.restore([{"id": "r-1", "created_at": stamp, "facts": facts}])
        assert (store.get("r-1").priority, store.get("r-1").attempts) == (7, 0)
    assert pg_integrity(pg_url) == "ok"


def test_a_newer_schema_is_refused(pg_url: str) -> None:
    TaskStore(pg_url).close()
    with raw(pg_url) as conn:
        conn.execute("UPDATE schema_components SET version = 99 WHERE name = 'memory'")
    with pytest.raises(StoreError, match="schema version 99, newer than this minna-tasks"):
        MinnaMemory(pg_url)
    with raw(pg_url) as conn:
        conn.execute("UPDATE schema_components SET version = 2 WHERE name = 'memory'")
        conn.execute("UPDATE schema_components SET version = 42 WHERE name = 'tasks'")
    with pytest.raises(StoreError, match="tasks schema version 42"):
        TaskStore(pg_url)


def test_every_change_is_announced(pg_url: str) -> None:
    with raw(pg_url) as listener, TaskStore(pg_url) as store:
        listener.execute("LISTEN minna_tasks")
        task = store.add("announced")
        store.claim("w")
        heard = [n.payload for n in listener.notifies(timeout=10, stop_after=2)]
        assert heard == ["memories", "memories"]  # one per committed transaction
        store.memory.store("someone", "note", "any memory write is announced")
        assert [n.payload for n in listener.notifies(timeout=10, stop_after=1)] == ["memories"]
        assert task.id


def test_a_password_never_shows(pg_cluster: Cluster, pg_url: str) -> None:
    dbname = pg_url.split("/")[3].split("?")[0]
    pg_cluster.admin(
        "CREATE ROLE ann LOGIN PASSWORD 'hunter2-secret'",
        f'GRANT ALL ON DATABASE "{dbname}" TO ann',
        f'ALTER DATABASE "{dbname}" OWNER TO ann',
    )
    try:
        url = pg_cluster.tcp_url(dbname, "ann", "hunter2-secret")
        with TaskStore(url) as store:
            store.add("secret work")
            assert "hunter2" not in repr(store)
            assert "hunter2" not in store.path
            assert "****" in store.path
        wrong = pg_cluster.tcp_url(dbname, "ann", "wrong-hunter3")
        with pytest.raises(StoreError) as info:
            TaskStore(wrong)
        assert "hunter3" not in str(info.value)
        assert "password" in str(info.value)
        # The CLI prints errors and paths with the password masked.
        out = subprocess.run(
            [sys.executable, "-c", CLI, "--db", wrong, "list"],
            capture_output=True, text=True, cwd=ROOT, timeout=60,
        )  # fmt: skip
        assert out.returncode != 0
        assert "hunter3" not in out.stderr + out.stdout
    finally:
        pg_cluster.drop_database(dbname)
        pg_cluster.admin("DROP ROLE ann")


def test_libpq_credentials_pass_through(
    pg_cluster: Cluster, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dbname = pg_url.split("/")[3].split("?")[0]
    pg_cluster.admin("CREATE ROLE bob LOGIN PASSWORD 'from-the-env'")
    try:
        TaskStore(pg_url).close()  # migrated by the owner
        pg_cluster.admin(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO bob",
            "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO bob",
            dbname=dbname,
        )
        monkeypatch.setenv("PGPASSWORD", "from-the-env")
        url = f"postgresql://bob@127.0.0.1:{pg_cluster.port}/{dbname}?sslmode=disable"
        with TaskStore(url) as store:  # no password in the URL: libpq reads PGPASSWORD
            assert store.add("via env").status == "pending"
    finally:
        pg_cluster.admin("DROP OWNED BY bob", dbname=dbname)
        pg_cluster.admin("DROP ROLE bob")


def test_a_role_that_may_not_create_tables_gets_a_clear_message(
    pg_cluster: Cluster, pg_url: str
) -> None:
    dbname = pg_url.split("/")[3].split("?")[0]
    pg_cluster.admin("CREATE ROLE carol LOGIN")
    try:
        carol = pg_cluster.url(dbname, user="carol")
        with pytest.raises(StoreError, match="may not do .*as a role that may create tables"):
            TaskStore(carol)  # a fresh database: it needs the first migration
        with TaskStore(pg_url) as owner:  # migrated by a role that may
            owner.add("shared")
        pg_cluster.admin(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO carol",
            "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO carol",
            dbname=dbname,
        )
        with TaskStore(carol) as store:  # reads and writes a store another role migrated
            claimed = store.claim("carol")
            assert claimed is not None
            assert claimed.title == "shared"
    finally:
        pg_cluster.admin("DROP OWNED BY carol", dbname=dbname)
        pg_cluster.admin("DROP ROLE carol")


def _race_worker_count(log_dir: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for log in log_dir.glob("log*"):
        counts.update(line.split()[0] for line in log.read_text().splitlines())
    return counts


@pytest.mark.slow
def test_eight_processes_claim_2000_tasks_each_executed_once(pg_url: str, tmp_path: Path) -> None:
    """Separate processes, separate connections, one queue: FOR UPDATE SKIP LOCKED hands
    every task to exactly one of them."""
    with TaskStore(pg_url) as store:
        store.add_many([f"task {i}" for i in range(2000)])
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.workers",
                "loop",
                pg_url,
                str(tmp_path / f"log{i}"),
                f"worker-{i}",
            ],
            cwd=ROOT,
            text=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for i in range(8)
    ]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    counts = _race_worker_count(tmp_path)
    assert len(counts) == 2000
    assert set(counts.values()) == {1}
    with TaskStore(pg_url) as store:
        assert store.stats()["completed"] == 2000
        workers = {t.result["by"] for t in store.list(status="completed")}
    assert len(workers) > 1  # the work was shared
    assert pg_integrity(pg_url) == "ok"


def test_the_readme_postgresql_example_runs_on_postgresql(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## PostgreSQL") :]
    block = section[section.index("```python\n") + len("```python\n") :]
    block = block[: block.index("```")]
    monkeypatch.setenv("MINNA_DB", pg_url)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})
    with TaskStore(pg_url) as store:
        assert [t.status for t in store.list()] == ["completed"]
    assert not (tmp_path / ".spine").exists()  # it did not fall back to SQLite


def test_export_from_sqlite_import_into_postgresql(pg_url: str, tmp_path: Path) -> None:
    """The README's way to move a queue: the CLI, as real processes, history included."""
    sqlite = tmp_path / "minna.db"
    with TaskStore(sqlite) as store:
        task = store.add("moving", payload={"k": 1})
        store.claim("w")
        store.transition(task.id, "review", actor="w", result="r")
        history = store.history(task.id)
    dump = tmp_path / "queue.json"
    for args in (["--db", str(sqlite), "export", str(dump)], ["--db", pg_url, "import", str(dump)]):
        done = subprocess.run(
            [sys.executable, "-c", CLI, *args], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    with TaskStore(pg_url) as store:
        assert store.history(task.id) == history
        assert store.get(task.id).payload == {"k": 1}
    assert pg_integrity(pg_url) == "ok"


def test_the_notebook_reads_a_postgresql_store(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat

    from .test_notebooks import NOTEBOOKS, kernel_env, run  # noqa: F401 (kernel_env: fixture)
    from .test_views import build_demo

    build_demo(pg_url).close()  # type: ignore[arg-type]
    before = pg_dump(pg_url)
    monkeypatch.setenv("MINNA_DB", pg_url)
    env = kernel_env.__wrapped__(tmp_path, monkeypatch)  # type: ignore[attr-defined]
    for path in NOTEBOOKS:
        nb = run(nbformat.read(path, as_version=4), cwd=env)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        assert not [o for o in outputs if o.output_type == "error"]
        images = [o for o in outputs if "image/png" in o.get("data", {})]
        assert len(images) >= 4
        text = "".join(o.get("text", "") for o in outputs)
        assert "6 tasks" in text
    assert pg_dump(pg_url) == before  # read-only


def test_the_command_line_on_postgresql(pg_cluster: Cluster, pg_url: str) -> None:
    """Real `minna-tasks` processes on a URL with a password: the demo runs its worker
    processes on the real URL, and nothing printed shows the password."""
    dbname = pg_url.split("/")[3].split("?")[0]
    pg_cluster.admin("CREATE ROLE dora LOGIN PASSWORD 'pw-dora-42'")
    pg_cluster.admin(f'ALTER DATABASE "{dbname}" OWNER TO dora')
    pg_cluster.admin("GRANT CREATE ON SCHEMA public TO dora", dbname=dbname)
    try:
        url = pg_cluster.tcp_url(dbname, "dora", "pw-dora-42")
        printed = ""
        for args in (["demo"], ["stats", "--json"], ["views", "--datasette-metadata", "x.json"]):
            done = subprocess.run(
                [sys.executable, "-c", CLI, "--db", url, *args],
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            printed += done.stdout + done.stderr
            if args[0] == "views":
                assert done.returncode == 1
                assert "Datasette reads SQLite files only" in done.stderr
            else:
                assert done.returncode in (0, 1), done.stderr  # the demo has a failed task
        assert "pw-dora-42" not in printed
        assert "****" in printed
        with TaskStore(pg_url) as store:
            assert store.stats()["completed"] >= 1
    finally:
        pg_cluster.drop_database(dbname)
        pg_cluster.admin("DROP ROLE dora")


def test_both_engines_implement_the_storage_seam(pg_url: str) -> None:
    from minna_tasks.engines.base import Engine

    with MinnaMemory(":memory:") as sqlite, MinnaMemory(pg_url) as postgres:
        for memory, name in ((sqlite, "sqlite"), (postgres, "postgresql")):
            assert isinstance(memory, Engine)
            assert memory.engine == name
            with memory.transaction() as conn:
                assert memory.in_write
                locking = memory.for_update(skip_locked=True)
                conn.execute("SELECT id FROM memories ORDER BY id LIMIT 1" + locking)
            assert not memory.in_write
        assert sqlite.for_update() == ""
        with postgres.transaction():
            assert postgres.for_update(True) == " FOR UPDATE SKIP LOCKED"


def test_no_server_skips_with_the_reason_but_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    from .pg import unavailable

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL tests need a server: no initdb"):
        unavailable("no initdb")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL tests need a server: no initdb"):
        unavailable("no initdb")


def test_concurrent_recovers_take_each_task_back_once(pg_url: str) -> None:
    """Recovers in several threads at once (and a row locked by a move in flight): every
    expired task goes back exactly once, with one attempt counted."""
    with TaskStore(pg_url) as store:
        tasks = store.add_many([f"t{i}" for i in range(40)])
        for _ in tasks:
            store.claim("ghost", lease_seconds=0.01)
        time.sleep(0.05)
        back: list[str] = []
        errors: list[BaseException] = []

        def recover() -> None:
            try:
                with TaskStore(pg_url) as mine:
                    back.extend(t.id for t in mine.recover())
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        with raw(pg_url) as other:
            other.execute("BEGIN")
            other.execute("SELECT 1 FROM task_current WHERE id = %s FOR UPDATE", (tasks[0].id,))
            threads = [threading.Thread(target=recover) for _ in range(4)]
            for t in threads:
                t.start()
            time.sleep(0.3)  # the recovers wait for the locked row
            other.execute("ROLLBACK")
        for t in threads:
            t.join(timeout=120)
        assert not errors
        assert sorted(back) == sorted(t.id for t in tasks)
        assert {t.attempts for t in store.list()} == {1}


def test_a_claim_token_is_the_id_of_the_claims_status_row(pg_url: str) -> None:
    """Fencing on PostgreSQL: the token is the claim's status memory id; a stale one is
    refused even for the same worker name."""
    from minna_tasks.errors import ClaimSuperseded

    with TaskStore(pg_url) as store:
        task = store.add("fenced")
        first = store.claim("w", lease_seconds=0.01)
        assert first is not None
        status_id = store.memory.recall(entity=task.id, attribute="status")[0]["id"]
        assert first.claim_token == status_id
        time.sleep(0.05)
        store.recover()
        second = store.claim("w")
        assert second is not None
        assert second.claim_token is not None
        assert second.claim_token > status_id
        with pytest.raises(ClaimSuperseded):
            store.transition(task.id, "review", actor="w", token=first.claim_token)
        assert store.transition(task.id, "review", actor="w", token=second.claim_token)
    with raw(pg_url) as conn:
        conn.execute(
            "INSERT INTO memories (entity, attribute, value, created_at)"
            " VALUES (%s, 'claim_token', '\"77\"', '2030-01-01')",
            (task.id,),
        )
    with TaskStore(pg_url) as store:
        assert store.get(task.id).claim_token == 77


def test_a_claim_in_one_statement_joins_an_open_transaction(pg_url: str) -> None:
    """The claim is one statement (its own transaction) unless a transaction is open:
    then it is part of it, and undone with it."""
    with TaskStore(pg_url) as store:
        store.add_many(["a", "b"])
        seen: list[Any] = []

        def claim_then_fail() -> None:
            with store.transaction():
                claimed = store.claim("w")
                seen.extend([claimed, store.get("t-1")])
                raise RuntimeError("undo")

        with pytest.raises(RuntimeError):
            claim_then_fail()
        assert seen[0] is not None
        assert seen[0].id == "t-1"
        assert seen[1] == seen[0]
        assert store.get("t-1").status == "pending"
        assert all(f["attribute"] != "claim_token" for f in store.facts("t-1"))
        again = store.claim("w")
        assert again is not None
        assert again.id == "t-1"
        assert again.claim_token == store.history("t-1")[-1].cursor
        with raw(pg_url) as conn:
            assert conn.execute(
                "SELECT status, owner, claim_token FROM task_current WHERE id = 't-1'"
            ).fetchone() == ("in_progress", "w", again.claim_token)


def test_a_move_whose_row_changes_under_it_is_decided_again(pg_url: str) -> None:
    """A move is a read and one statement that writes only if the row (locked by that
    statement) is unchanged: a change committed in between, here by a plain-SQL writer
    holding the row, sends it the usual, locked way, which sees the change."""
    with TaskStore(pg_url) as store:
        store.add("a")
        claimed = store.claim("w")
        assert claimed is not None
        with raw(pg_url) as other:
            other.execute("BEGIN")
            other.execute(
                "INSERT INTO memories (entity, attribute, value, created_at)"
                " VALUES ('t-1', 'priority', '7', '2030-01-01')"
            )
            moved: list[Any] = []
            mover = threading.Thread(
                target=lambda: moved.append(
                    store.transition("t-1", "review", actor="w", token=claimed.claim_token)
                )
            )
            mover.start()
            time.sleep(0.3)  # the move reads, then waits for the row
            assert not moved
            other.execute("COMMIT")
            mover.join(timeout=60)
        assert moved[0].status == "review"
        assert moved[0].priority == 7  # decided again on the row as it now stands
        assert store.get("t-1") == moved[0]
        statuses = [t.to_state for t in store.history("t-1")]
        assert statuses == ["pending", "in_progress", "review"]


def test_another_machines_claims_and_moves_return_what_the_projection_holds(
    pg_url: str,
) -> None:
    """A claimed state that implies no owner (`doing`) claims the usual way; moves go in
    one statement; every Task returned is the row the triggers built."""
    from minna_tasks import StateMachine

    machine = StateMachine(
        {"todo": ["doing"], "doing": ["done", "todo"], "done": []}, initial="todo"
    )
    with TaskStore(pg_url, machine=machine) as store:
        store.add_many(["a", "b"])
        claimed = store.claim("w")
        assert claimed is not None
        assert (claimed.status, claimed.owner) == ("doing", "w")
        assert claimed.claim_token == store.history("t-1")[-1].cursor
        assert store.get("t-1") == claimed
        back = store.transition("t-1", "todo", actor="w", token=claimed.claim_token)
        assert store.get("t-1") == back
        again = store.claim("w")
        assert again is not None
        assert again.claim_token is not None
        assert claimed.claim_token is not None
        assert again.claim_token > claimed.claim_token
        done = store.transition(again.id, "done", actor="w", token=again.claim_token)
        assert store.get(again.id) == done
        assert [t.to_state for t in store.history(again.id)][-1] == "done"


def test_dependency_counts_follow_plain_sql_on_postgresql(pg_url: str) -> None:
    """The PL/pgSQL triggers keep deps/open_deps right for writers that bypass the store."""
    with TaskStore(pg_url) as store:
        a = store.add("a")
        b = store.add("b", depends_on=[a.id])
        assert store.get(b.id).blocked_by == (a.id,)
    with raw(pg_url) as conn:
        conn.execute(
            "INSERT INTO memories (entity, attribute, value, source, created_at)"
            " VALUES (%s, 'status', '\"completed\"', 'psql', '2030-01-01T00:00:00+00:00')",
            (a.id,),
        )
        assert conn.execute(
            "SELECT open_deps FROM task_current WHERE id = %s", (b.id,)
        ).fetchone() == (0,)
        conn.execute("SET enable_seqscan = off")  # a tiny table: ask whether the index fits
        plan = " ".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT id FROM task_current WHERE status = 'pending' AND open_deps = 0"
                " ORDER BY priority DESC, seq LIMIT 1"
            )
        )
        assert "task_current_queue" in plan  # the claim seeks the ready-only index
    with TaskStore(pg_url) as store:
        claimed = store.claim("w")
        assert claimed is not None
        assert claimed.id == b.id


def test_a_waiting_claim_wakes_on_notify_and_writes_nothing_meanwhile(pg_url: str) -> None:
    """claim(wait=) on PostgreSQL: LISTEN, no polling writes; a task another connection
    adds 0.3 s later is claimed at once."""
    with TaskStore(pg_url) as store:
        before = pg_dump(pg_url)
        assert store.claim("w", wait=0.3) is None
        assert pg_dump(pg_url) == before  # waiting wrote nothing

        def add_later() -> None:
            time.sleep(0.3)
            with TaskStore(pg_url) as other:
                other.add("late")

        adder = threading.Thread(target=add_later)
        adder.start()
        began = time.monotonic()
        task = store.claim("w", wait=30)
        waited = time.monotonic() - began
        adder.join()
        assert task is not None
        assert task.title == "late"
        assert waited < 20  # woken by the NOTIFY, long before the wait ran out


def test_the_machine_commands_read_a_postgresql_stores_own_machine(pg_url: str) -> None:
    """`diagram`, `machine show` and `import` read the machine through the engine: a
    server URL is not a file path, so it must not fall back to the default machine."""
    from click.testing import CliRunner
    from minna_tasks_cli.main import cli

    from minna_tasks import StateMachine
    from minna_tasks.store import file_machine

    custom = StateMachine(
        {"todo": ["doing"], "doing": ["done", "todo"], "done": []}, initial="todo"
    )
    assert custom != StateMachine()
    TaskStore(pg_url, machine=custom).close()
    before = pg_dump(pg_url)
    assert file_machine(pg_url) == custom
    drawn = CliRunner().invoke(cli, ["--db", pg_url, "diagram"])
    assert (drawn.exit_code, drawn.stdout) == (0, custom.to_mermaid())
    shown = CliRunner().invoke(cli, ["--db", pg_url, "machine", "show"])
    assert shown.exit_code == 0, shown.stderr
    assert StateMachine.from_dict(json.loads(shown.stdout)) == custom
    assert pg_dump(pg_url) == before  # only read
