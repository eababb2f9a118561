"""The `minna-tasks` command line: every command through CliRunner, plus the real console
script as a subprocess once per command family."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from minna_tasks_cli.app import default_worker
from minna_tasks_cli.main import cli

from minna_tasks import StateMachine, TaskStore

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).with_name("minna-tasks")


def invoke(db: Path, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, ["--db", str(db), *args])
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def as_json(db: Path, *args: str) -> Any:
    return json.loads(invoke(db, *args, "--json").stdout)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "t.db"


def test_a_task_life_on_the_command_line(db: Path) -> None:
    assert invoke(db, "init").stdout.startswith(f"Ready: {db} (schema version")
    task_id = invoke(
        db,
        "add",
        "Summarise the report",
        "--priority",
        "5",
        "--payload",
        '{"url": "https://example.org"}',
    ).stdout
    assert task_id == "t-1\n"
    other = as_json(
        db, "add", "Second", "--id", "job-2", "--max-attempts", "1", "--description", "more"
    )
    assert (
        other["id"],
        other["status"],
        other["attempts"],
        other["max_attempts"],
        other["description"],
    ) == ("job-2", "pending", 0, 1, "more")

    claimed = as_json(db, "claim", "--worker", "w1", "--lease", "60")
    assert (claimed["id"], claimed["status"], claimed["owner"]) == ("t-1", "in_progress", "w1")
    assert claimed["payload"] == {"url": "https://example.org"}
    beat = invoke(db, "heartbeat", "t-1", "--worker", "w1", "--lease", "120").stdout
    assert beat.startswith("t-1: lease held by w1 until 20")
    assert (
        invoke(
            db,
            "move",
            "t-1",
            "review",
            "--actor",
            "w1",
            "--result",
            '{"words": 3}',
            "--expect",
            "in_progress",
        ).stdout
        == "t-1: in_progress -> review\n"
    )
    done = as_json(db, "move", "t-1", "completed", "--note", "looks right", "--actor", "w1")
    assert (done["status"], done["result"], done["owner"]) == ("completed", {"words": 3}, None)

    steps = as_json(db, "history", "t-1")
    assert [(s["from_state"], s["to_state"]) for s in steps] == [
        (None, "pending"),
        ("pending", "in_progress"),
        ("in_progress", "review"),
        ("review", "completed"),
    ]
    assert steps[-1]["note"] == "looks right"
    assert steps[-1]["actor"] == "w1"
    table = invoke(db, "history", "t-1").stdout.splitlines()
    assert table[0].split() == ["at", "from", "to", "actor", "note"]
    assert table[-1].split()[1:] == ["review", "completed", "w1", "looks", "right"]

    # job-2: claimed, released, claimed again and failed (1 attempt), then retried.
    assert invoke(db, "claim", "--worker", "w2").stdout == "job-2\n"
    assert invoke(db, "release", "job-2", "--worker", "w2").stdout == "job-2: pending\n"
    invoke(db, "claim", "--worker", "w2", "--lease", "0.001")
    recovered = invoke(db, "recover")
    assert recovered.stdout == "job-2: failed (attempts 1/1)\n"
    assert recovered.stderr == "Recovered 1 task(s).\n"
    assert invoke(db, "retry", "job-2", "--note", "try again").stdout == "job-2: pending\n"
    assert as_json(db, "stats") == {
        "pending": 1,
        "in_progress": 0,
        "review": 0,
        "failed": 0,
        "completed": 1,
    }
    nothing = CliRunner().invoke(cli, ["--db", str(db), "claim", "--json"])
    assert json.loads(nothing.stdout)["id"] == "job-2"
    empty = invoke(db, "claim", code=3)  # its own status, so `while id=$(claim)` ends
    assert (empty.stdout, empty.stderr) == ("", "No pending task.\n")
    empty_json = invoke(db, "claim", "--json", code=3)
    assert (empty_json.stdout, empty_json.stderr) == ("null\n", "")


def test_list_filters_and_table(db: Path) -> None:
    with TaskStore(db) as store:
        store.add_many(["a", "b", "c", "d"])
        store.claim("w1")
        store.claim("w2")
        store.transition("t-2", "review", actor="w2")
    assert [t["id"] for t in as_json(db, "list")] == ["t-1", "t-2", "t-3", "t-4"]
    assert [t["id"] for t in as_json(db, "list", "--status", "pending")] == ["t-3", "t-4"]
    both = as_json(db, "list", "--status", "in_progress", "--status", "review")
    assert [t["id"] for t in both] == ["t-1", "t-2"]
    assert [t["id"] for t in as_json(db, "list", "--owner", "w2")] == ["t-2"]
    assert [t["id"] for t in as_json(db, "list", "--limit", "1")] == ["t-1"]
    lines = invoke(db, "list", "--status", "review").stdout.splitlines()
    assert lines[0].split() == ["id", "status", "priority", "attempts", "owner", "title"]
    assert lines[2].split() == ["t-2", "review", "0", "0/3", "w2", "b"]
    assert len(lines) == 3


def test_show_and_as_of(db: Path) -> None:
    with TaskStore(db) as store:
        task = store.add("a task", payload={"k": [1, 2]})
        store.claim("w1")
    shown = as_json(db, "show", "t-1")
    assert {"id", "title", "status", "attempts"} <= set(shown)
    assert (shown["status"], shown["payload"]) == ("in_progress", {"k": [1, 2]})
    before = as_json(db, "show", "t-1", "--as-of", task.created_at)
    assert before["status"] == "pending"
    text = invoke(db, "show", "t-1").stdout
    assert re.search(r"^status: +in_progress$", text, re.M)
    assert re.search(r'^payload: +\{"k": \[1, 2\]\}$', text, re.M)


def test_stats_table(db: Path) -> None:
    with TaskStore(db) as store:
        store.add_many(["a", "b"])
    lines = invoke(db, "stats").stdout.splitlines()
    assert lines[2].split() == ["pending", "2"]
    assert lines[-1].split() == ["total", "2"]


def test_add_prints_only_the_id(db: Path) -> None:
    result = invoke(db, "add", "hello")
    assert (result.stdout, result.stderr) == ("t-1\n", "")


def test_diagram_is_the_machine() -> None:
    result = CliRunner().invoke(cli, ["diagram"])
    assert result.stdout == StateMachine().to_mermaid()
    fenced = CliRunner().invoke(cli, ["diagram", "--markdown"]).stdout
    assert fenced == "```mermaid\n" + StateMachine().to_mermaid() + "```\n"


def test_views_lists_and_writes_metadata(db: Path, tmp_path: Path) -> None:
    from minna_tasks import views

    assert invoke(db, "views").stdout.split() == list(views.VIEWS)
    meta = tmp_path / "metadata.json"
    invoke(db, "views", "--datasette-metadata", str(meta))
    assert json.loads(meta.read_text()) == views.datasette_metadata(db)


def test_memory_group(db: Path) -> None:
    assert invoke(db, "memory", "store", "alice", "likes", "green tea").stdout == "1\n"
    invoke(db, "memory", "store", "alice", "likes", "black coffee", "--context", "changed")
    recalled = as_json(db, "memory", "recall", "--entity", "alice")
    assert [r["value"] for r in recalled] == ["black coffee", "green tea"]
    assert recalled[0]["context"] == "changed"
    assert recalled[0]["source"] == "cli"
    found = as_json(db, "memory", "search", "coffee")
    assert [r["value"] for r in found] == ["black coffee"]
    assert invoke(db, "memory", "relate", "alice", "bob", "knows").stdout == "1\n"
    with TaskStore(db) as store:
        relations = store.memory.get_relations("alice")
    assert [(r["from_entity"], r["to_entity"], r["rel_type"]) for r in relations] == [
        ("alice", "bob", "knows")
    ]
    table = invoke(db, "memory", "recall", "--limit", "1").stdout.splitlines()
    assert table[2].split()[1:4] == ["alice", "likes", "black"]


def test_db_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "env.db"
    monkeypatch.setenv("MINNA_DB", str(path))
    assert CliRunner().invoke(cli, ["add", "x"]).stdout == "t-1\n"
    with TaskStore(path) as store:
        assert store.get("t-1").title == "x"


def test_mcp_command_serves(db: Path, tmp_path: Path) -> None:
    """`mcp` is wired to minna_tasks.mcp_server.serve: an initialize request gets an answer."""
    TaskStore(db).close()
    request = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"},
        },
    }
    done = subprocess.run(
        [str(SCRIPT), "--db", str(db), "mcp"],
        input=json.dumps(request) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    first = json.loads(done.stdout.splitlines()[0])
    assert first["id"] == 1
    assert "serverInfo" in first["result"]


# -- every command has help and appears in the README --------------------------------


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    context = click.Context(group)
    for name in group.list_commands(context):  # lazy commands load here
        command = group.get_command(context, name)
        out.append((*prefix, name))
        if isinstance(command, click.Group):
            out.extend(_commands(command, (*prefix, name)))
    return out


COMMANDS = _commands(cli)


def test_every_named_command_exists() -> None:
    names = {" ".join(c) for c in COMMANDS}
    wanted = (
        "init add list show move claim heartbeat release recover retry history stats "
        "views export import run demo mcp diagram memory"
    ).split()
    assert (
        set(wanted) | {"memory store", "memory recall", "memory search", "memory relate"} <= names
    )


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_command_has_help_and_is_in_readme(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    summary = result.stdout.split("\n\n")[1].strip()
    assert len(summary) > 10
    readme = (ROOT / "README.md").read_text()
    assert f"minna-tasks {' '.join(command)}" in readme


# -- the real console script, once per command family -----------------------------------


def _script(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MINNA_DB": str(cwd / "sub.db")}
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_console_script_task_commands(tmp_path: Path) -> None:
    assert _script("add", "from a shell", cwd=tmp_path).stdout == "t-1\n"
    listed = _script("list", "--json", cwd=tmp_path)
    assert [t["title"] for t in json.loads(listed.stdout)] == ["from a shell"]
    bad = _script("move", "t-1", "completed", cwd=tmp_path)
    assert (bad.returncode, bad.stdout) == (1, "")
    assert bad.stderr == (
        "Error: cannot move t-1 from pending to completed: task t-1 is "
        "pending; it can move to: in_progress\n"
    )
    usage = _script("add", "x", "--priority", "x", cwd=tmp_path)
    assert (usage.returncode, usage.stderr) == (
        2,
        "Error: Invalid value for '--priority': 'x' is not a valid integer.\n",
    )


def test_console_script_files_and_memory(tmp_path: Path) -> None:
    _script("add", "one", cwd=tmp_path)
    exported = _script("export", "out.json", cwd=tmp_path)
    assert exported.stdout == "Exported 1 task(s) to out.json\n"
    imported = subprocess.run(
        [sys.executable, "-m", "minna_tasks", "--db", "copy.db", "import", "out.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert imported.stdout == "Imported 1 task(s) from out.json\n", imported.stderr
    assert _script("memory", "store", "e", "a", "v", cwd=tmp_path).stdout.strip().isdigit()
    assert _script("diagram", cwd=tmp_path).stdout == StateMachine().to_mermaid()
    assert _script("views", cwd=tmp_path).stdout.split()[0] == "tasks"


def test_mcp_unavailable_is_a_clear_error(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "minna_tasks.mcp_server", None)  # as if not installed
    result = CliRunner().invoke(cli, ["--db", str(db), "mcp"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: the MCP server is not available: ")
    assert not db.exists()


def test_readme_command_line_walkthrough_runs(tmp_path: Path) -> None:
    """The README's hand-driven walkthrough, run by bash against the real console script."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    walkthrough = "\n".join(
        b for b in blocks if "minna-tasks run" not in b and "_MINNA_TASKS_COMPLETE" not in b
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINNA_")}
    env["PATH"] = f"{SCRIPT.parent}:{os.environ['PATH']}"
    documented = [line[2:] for line in walkthrough.splitlines() if line.startswith("# Error: ")]
    assert documented
    shown = [
        line[2:].replace("USER@HOST", default_worker()).split()[1:]
        for line in walkthrough.splitlines()
        if line.startswith("# 20")
    ]
    # Correct wherever it is run: a second run in the same folder works the same way.
    for run in (1, 2):
        done = subprocess.run(
            ["bash", "-c", walkthrough],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        errors = [line for line in done.stderr.splitlines() if line != "No pending task."]
        if run == 1:
            assert errors == documented
        else:
            assert [e.split(":")[0] for e in errors] == [d.split(":")[0] for d in documented]
        history = [line.split()[1:] for line in done.stdout.splitlines() if line.startswith("20")]
        assert history[-len(shown) :] == shown
    with TaskStore(tmp_path / ".spine" / "minna.db") as store:
        assert store.get("t-1").status == "completed"
        assert store.get("t-2").description == "into French"
        assert store.get("t-2").status == "review"  # the claim loop took it
        assert store.stats()["pending"] == 0


@pytest.mark.parametrize("group", [[], ["memory"]])
def test_a_bare_group_shows_its_help(group: list[str]) -> None:
    result = CliRunner().invoke(cli, group)
    assert result.exit_code in (0, 2)  # click >= 8.2 exits 2, as for other usage errors
    assert result.output.startswith(f"Usage: {' '.join(['cli', *group])} [OPTIONS] COMMAND")
    assert "Error:" not in result.output
