"""Dependency commands: add --after, depend, undepend, list --ready/--blocked, show, graph,
stats, and `run` waiting for held tasks and exiting 1 for tasks stranded behind failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from minna_tasks_cli.main import cli

from minna_tasks import TaskStore

from .conftest import unchanged

SCRIPT = Path(sys.executable).with_name("minna-tasks")


def invoke(db: Path, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, ["--db", str(db), *args])
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "t.db"


def chain(db: Path) -> tuple[str, str, str]:
    fetch = invoke(db, "add", "fetch").stdout.strip()
    summary = invoke(db, "add", "summarise", "--after", fetch).stdout.strip()
    post = invoke(db, "add", "post", "--after", summary, "--after", fetch).stdout.strip()
    return fetch, summary, post


def test_add_after_list_ready_and_blocked(db: Path) -> None:
    fetch, summary, post = chain(db)
    added = json.loads(invoke(db, "show", post, "--json").stdout)
    assert added["depends_on"] == [summary, fetch]
    assert added["blocked_by"] == [summary, fetch]
    assert added["needed_by"] == []
    ready = json.loads(invoke(db, "list", "--ready", "--json").stdout)
    blocked = json.loads(invoke(db, "list", "--blocked", "--json").stdout)
    assert [t["id"] for t in ready] == [fetch]
    assert [t["id"] for t in blocked] == [summary, post]
    both = invoke(db, "list", "--ready", "--blocked", code=1)
    assert both.stderr == "Error: a task cannot be both ready and blocked: choose one\n"
    shown = invoke(db, "show", fetch).stdout
    assert f'needed_by:        ["{summary}", "{post}"]' in shown
    assert invoke(db, "claim", "--worker", "w").stdout == f"{fetch}\n"
    nothing = CliRunner().invoke(cli, ["--db", str(db), "claim", "--worker", "w"])
    assert nothing.stdout == ""  # the other two wait for fetch


def test_depend_undepend_and_their_errors(db: Path) -> None:
    fetch, summary, post = chain(db)
    extra = invoke(db, "add", "extra").stdout.strip()
    assert invoke(db, "depend", fetch, "--on", extra).stdout == (
        f"{fetch}: depends on {extra} (blocked by {extra})\n"
    )
    assert invoke(db, "undepend", fetch, "--on", extra).stdout == f"{fetch}: depends on nothing\n"
    with unchanged(db):
        cycle = invoke(db, "depend", fetch, "--on", post, code=1)
        assert cycle.stderr == (
            f"Error: dependency cycle: {fetch} -> {post} -> {fetch} (these tasks"
            " would wait for each other forever); nothing was written\n"
        )
        missing = invoke(db, "depend", fetch, "--on", "t-99", code=1)
        assert missing.stderr == "Error: task 't-99' not found\n"
        absent = invoke(db, "undepend", fetch, "--on", post, code=1)
        assert absent.stderr == (
            f"Error: task {fetch} does not depend on {post}; it depends on: nothing\n"
        )
        unknown = invoke(db, "add", "x", "--after", "t-99", code=1)
        assert unknown.stderr == "Error: task 't-99' not found\n"
    history = json.loads(invoke(db, "history", fetch, "--json").stdout)
    assert [(h["from_state"], h["to_state"], h["note"]) for h in history] == [
        (None, "pending", "created"),
        ("pending", "pending", f"depends on {extra}"),
        ("pending", "pending", f"no longer depends on {extra}"),
    ]


def test_graph_is_mermaid_of_the_open_tasks(db: Path) -> None:
    fetch, summary, post = chain(db)
    invoke(db, "add", "alone")
    graph = invoke(db, "graph").stdout
    assert graph.startswith("flowchart TD\n")
    assert f'["{fetch}: fetch (pending)"]:::pending' in graph
    assert f'["{post}: post (pending)"]:::blocked' in graph
    assert "alone" not in graph  # no dependency either way
    assert graph.count(" --> ") == 3
    edges = json.loads(invoke(db, "graph", "--json").stdout)["edges"]
    assert {"task": post, "depends_on": fetch} in edges


def test_stats_table_shows_ready_and_blocked(db: Path) -> None:
    chain(db)
    table = invoke(db, "stats").stdout
    assert "pending: ready    1" in table
    assert "pending: blocked  2" in table
    assert json.loads(invoke(db, "stats", "--json").stdout)["pending"] == 3  # same shape


def test_run_works_a_chain_in_order(db: Path) -> None:
    chain(db)
    result = invoke(db, "run", "--workers", "2", "--", "sh", "-c", 'echo "$MINNA_TASK_TITLE"')
    assert "3 completed" in result.stdout
    with TaskStore(db) as store:
        completed = [h.at for t in store.list() for h in store.history(t.id)][-1]
        assert completed
        order = sorted(store.list(), key=lambda t: t.updated_at)
        assert [t.title for t in order] == ["fetch", "summarise", "post"]


def _script(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MINNA_DB": str(cwd / "sub.db")}
    return subprocess.run(
        [str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_console_script_run_exits_1_for_tasks_stranded_behind_a_failure(tmp_path: Path) -> None:
    first = _script("add", "breaks", "--max-attempts", "1", cwd=tmp_path).stdout.strip()
    second = _script("add", "waits", "--after", first, cwd=tmp_path).stdout.strip()
    assert _script("list", "--blocked", "--json", cwd=tmp_path).returncode == 0
    result = _script("run", "--", "false", cwd=tmp_path)
    assert result.returncode == 1
    assert "1 failed" in result.stdout
    assert result.stderr.endswith(f"1 task(s) left blocked behind failed dependencies: {second}\n")
    undo = _script("undepend", second, "--on", first, cwd=tmp_path)
    assert undo.stdout == f"{second}: depends on nothing\n"
    again = _script("run", "--", "true", cwd=tmp_path)
    assert (again.returncode, again.stderr) == (0, "")
    graph = _script("graph", cwd=tmp_path)
    assert graph.stdout == "flowchart TD\n" + graph.stdout.split("\n", 1)[1]
