"""The Datasette metadata file, and the real `datasette` server reading a demo file with it."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from minna_tasks import MinnaTasksError, TaskStore
from minna_tasks.views import VIEWS, datasette_metadata, write_datasette_metadata
from tests.test_views import build_demo, status_history, view_rows

CANNED = {
    "blocked_tasks",
    "task_history",
    "task_facts",
    "tasks_as_of",
    "stale_leases",
    "slowest_tasks",
    "failures",
    "failed_tasks",
    "queue",
}


def test_metadata_describes_every_view_column(tmp_path: Path) -> None:
    meta = datasette_metadata()
    tables = meta["databases"]["minna"]["tables"]
    conn = sqlite3.connect(tmp_path / "x.db")
    TaskStore(tmp_path / "x.db").close()
    for view in VIEWS:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({view})")]
        assert tables[view]["title"]
        assert tables[view]["description"]
        assert list(tables[view]["columns"]) == columns, view
        assert all(tables[view]["columns"].values())
    # The raw tables are described too.
    raw = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert {"memories", "entities", "task_current"} <= set(tables) <= raw | set(VIEWS)
    assert set(meta["databases"]["minna"]["queries"]) == CANNED
    for query in meta["databases"]["minna"]["queries"].values():
        assert query["title"]
        assert query["description"]
        assert query["sql"].lstrip().startswith(("SELECT", "WITH"))


def test_write_datasette_metadata_names_the_database_after_the_file(tmp_path: Path) -> None:
    work = tmp_path / "elsewhere" / "work.db"
    out = write_datasette_metadata(tmp_path / "meta.json", work)
    assert out == tmp_path / "meta.json"
    written = json.loads(out.read_text("utf-8"))
    assert list(written["databases"]) == ["work"]
    assert written["databases"]["work"] == datasette_metadata(work)["databases"]["work"]
    # The metadata names the file actually served, and lists the task views first.
    entry = written["databases"]["work"]
    assert entry["description"].startswith(f"The minna-tasks file {work}. ")
    page = entry["description_html"]
    assert page.index('href="/work/tasks"') < page.index('href="/work/task_transitions"')
    assert page.index('href="/work/task_expired_leases"') < page.index('href="/work/memories"')
    assert list(json.loads(write_datasette_metadata(out).read_text())["databases"]) == ["minna"]
    assert [p.name for p in tmp_path.iterdir()] == ["meta.json"]  # no temp file left behind


def test_write_datasette_metadata_into_a_missing_folder_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(MinnaTasksError, match="cannot write .*meta.json: No such file"):
        write_datasette_metadata(tmp_path / "no" / "meta.json")
    assert list(tmp_path.iterdir()) == []


def test_the_metadata_file_gets_the_users_umask_like_exports(tmp_path: Path) -> None:
    """One atomic-write helper for both files: the same permissions (0666 less the umask)."""
    old = os.umask(0o027)
    try:
        write_datasette_metadata(tmp_path / "meta.json")
    finally:
        os.umask(old)
    assert (tmp_path / "meta.json").stat().st_mode & 0o777 == 0o640


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    store: TaskStore
    path: Path

    def get(self, route: str, **params: str) -> Any:
        response = httpx.get(
            f"{self.url}/minna/{route}.json",
            params={"_shape": "array", "_size": "max", **params},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real datasette on 127.0.0.1 and a free port, always stopped at the end."""
    folder = tmp_path_factory.mktemp("datasette")
    path = folder / "minna.db"
    store = build_demo(path)
    meta = folder / "metadata.json"
    # Written by the real console script, as the README tells people to.
    cli = subprocess.run(
        [
            Path(sys.executable).with_name("minna-tasks"),
            "--db",
            str(path),
            "views",
            "--datasette-metadata",
            str(meta),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.split() == list(VIEWS)
    assert json.loads(meta.read_text("utf-8")) == datasette_metadata(path)
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "datasette",
            "serve",
            str(path),
            "-m",
            str(meta),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                if httpx.get(f"{url}/-/versions.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "datasette did not answer within 60 s"
            time.sleep(0.1)
        yield Server(url, store, path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
        store.close()


def test_server_serves_the_metadata(server: Server) -> None:
    served = httpx.get(f"{server.url}/-/metadata.json", timeout=30).json()
    assert served["databases"]["minna"]["queries"]["task_history"]["title"] == "A task's history"
    page = httpx.get(f"{server.url}/minna/tasks", timeout=30).text
    assert "One row per task with its current values" in page
    assert "Current state: pending, in_progress, review, completed or failed." in page


def test_database_page_shows_the_task_views_before_the_memory_tables(server: Server) -> None:
    page = httpx.get(f"{server.url}/minna", timeout=30).text
    assert f"The minna-tasks file {server.path}." in page
    first_view = page.index('href="/minna/tasks"')
    assert first_view < page.index('href="/minna/memories"')
    assert first_view < page.index('<h2 id="tables">')


def test_canned_tasks_as_of_says_when_it_cannot_read_the_time(server: Server) -> None:
    rows = server.get("tasks_as_of", when="yesterday")
    assert len(rows) == 1
    assert rows[0]["id"].startswith("cannot read 'yesterday' as a time: give e.g. ")
    assert len(server.get("tasks_as_of", when="now")) == len(server.store.list())


def test_tasks_json(server: Server) -> None:
    rows = server.get("tasks")
    assert rows == view_rows(server.path, "tasks")
    assert [(r["id"], r["status"]) for r in rows] == [(t.id, t.status) for t in server.store.list()]


def test_task_transitions_json(server: Server) -> None:
    rows = server.get("task_transitions")
    expected = [t for task in server.store.list() for t in status_history(server.store, task.id)]
    key = [
        (r["task_id"], r["from_state"], r["to_state"], r["at"], r["actor"], r["reason"])
        for r in rows
    ]
    assert sorted(key, key=repr) == sorted(
        ((t.task_id, t.from_state, t.to_state, t.at, t.actor, t.note) for t in expected), key=repr
    )
    assert [r["memory_id"] for r in rows] == sorted(r["memory_id"] for r in rows)  # log order
    one = server.get("task_transitions", task_id="t-3")
    assert [r["to_state"] for r in one] == [t.to_state for t in status_history(server.store, "t-3")]


def _task_by_title(store: TaskStore, title: str) -> str:
    return next(t.id for t in store.list() if t.title == title)


def test_canned_task_history_and_facts(server: Server) -> None:
    flaky = _task_by_title(server.store, "Flaky check")
    rows = server.get("task_history", task_id=flaky)
    history = status_history(server.store, flaky)
    assert [(r["from_state"], r["to_state"], r["at"], r["actor"], r["reason"]) for r in rows] == [
        (t.from_state, t.to_state, t.at, t.actor, t.note) for t in history
    ]
    assert "review" in [r["from_state"] for r in rows]
    assert rows[-1]["to_state"] == "completed"
    facts = server.get("task_facts", task_id=flaky)
    assert [(r["attribute"], r["value"], r["at"]) for r in facts] == [
        (f["attribute"], f["value"], f["created_at"]) for f in server.store.facts(flaky)
    ]
    assert server.get("task_history", task_id="no-such-task") == []


def test_canned_tasks_as_of(server: Server) -> None:
    store = server.store
    stale = _task_by_title(store, "Held by a dead worker")
    # Just before the stale task was added: the loop had finished, the ghost not yet come.
    born = datetime.fromisoformat(store.history(stale)[0].at) - timedelta(milliseconds=1)
    when = born.replace(microsecond=born.microsecond // 1000 * 1000)
    text = when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]  # the way a person types it
    rows = server.get("tasks_as_of", when=text)
    existing = [t for t in store.list() if t.created_at <= when.isoformat()]
    assert stale not in [r["id"] for r in rows]
    assert len(rows) == len(existing) == 4
    for row in rows:
        then = store.as_of(row["id"], when)
        assert row == {k: getattr(then, k) for k in row}
    now = server.get("tasks_as_of", when="now")
    assert [(r["id"], r["status"]) for r in now] == [(t.id, t.status) for t in store.list()]


def test_canned_stale_leases(server: Server) -> None:
    rows = server.get("stale_leases")
    assert [(r["title"], r["owner"], r["status"]) for r in rows] == [
        ("Held by a dead worker", "ghost", "in_progress")
    ]


def test_canned_slowest_tasks(server: Server) -> None:
    rows = server.get("slowest_tasks")
    assert {r["id"] for r in rows} == {t.id for t in server.store.list()}
    working = [r["seconds_working"] for r in rows]
    assert working == sorted(working, reverse=True)
    done = next(r for r in rows if r["title"] == "Fetch the report")
    assert done["seconds_working"] >= 0.02  # execute sleeps 20 ms
    assert done["seconds_total"] >= done["seconds_working"] + done["seconds_waiting"] - 0.002


def test_canned_failures(server: Server) -> None:
    doomed = _task_by_title(server.store, "Doomed")
    rows = server.get("failures")
    errors = [f for f in server.store.facts(doomed) if f["attribute"] == "error"]
    assert len(errors) == 2
    assert [(r["task_id"], r["error"], r["at"]) for r in rows] == [
        (doomed, f["value"], f["created_at"]) for f in reversed(errors)
    ]
    assert rows[0]["status_now"] == "failed"
    failed = server.get("failed_tasks")
    assert [(r["id"], r["attempts"], r["error"]) for r in failed] == [
        (doomed, 2, "RuntimeError: cannot do Doomed")
    ]


def test_canned_queue(server: Server) -> None:
    rows = server.get("queue")
    assert [r["id"] for r in rows] == [t.id for t in server.store.queue()]
    assert [r["title"] for r in rows] == ["Waiting in the queue"]


def test_readme_shows_the_datasette_command() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text("utf-8")
    section = readme[readme.index("\n## Inspect") :]
    assert (
        "minna-tasks views --datasette-metadata .spine/datasette.json"
        " && datasette .spine/minna.db -m .spine/datasette.json"
    ) in section
    for name in [*VIEWS, *datasette_metadata()["databases"]["minna"]["queries"]]:
        assert f"`{name}" in section, name
