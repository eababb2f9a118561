"""The first hour of a new user (issue 11): defaults, pipes, read-only files, paths,
exit codes, terminal safety, a busy file, shell completion and the MCP extra hint.

Each point about input checks that the file is unchanged and the message is one line.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner, Result
from mcp.client import Client
from minna_tasks_cli.main import cli

from minna_tasks import TaskStore
from minna_tasks.install_hint import mcp_install_hint
from minna_tasks.mcp_server import build_server

from .conftest import unchanged

SCRIPT = str(Path(sys.executable).with_name("minna-tasks"))


def script(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """The real console script, with the environment given (no MINNA_* leaking in)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MINNA_")}
    return subprocess.run(
        [SCRIPT, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
        env={**base, **env},
    )


def invoke(*args: str, **env: str) -> Result:
    return CliRunner(env={"MINNA_WORKER": None, "MINNA_DB": None, **env}).invoke(cli, args)


def one_line_error(stderr: str) -> str:
    assert stderr.startswith("Error: "), stderr
    assert stderr.count("\n") == 1, stderr
    return stderr[len("Error: ") : -1]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "t.db"
    with TaskStore(path) as store:
        store.add("one")
        store.add("two")
    return path


# -- 1. one default name for every command that takes a worker or an actor ------------


def test_claim_then_move_works_with_the_defaults(db: Path) -> None:
    assert script("--db", str(db), "claim").stdout == "t-1\n"
    moved = script("--db", str(db), "move", "t-1", "review")
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout == "t-1: in_progress -> review\n"
    with TaskStore(db) as store:
        steps = store.history("t-1")
    assert steps[-1].actor == steps[-2].actor  # the claimer moved it: USER@HOST both times
    assert "@" in steps[-1].actor


def test_minna_worker_names_the_default_worker_and_actor(db: Path) -> None:
    assert invoke("--db", str(db), "claim", MINNA_WORKER="bot-7").stdout == "t-1\n"
    assert invoke("--db", str(db), "move", "t-1", "review", MINNA_WORKER="bot-7").exit_code == 0
    with TaskStore(db) as store:
        assert [s.actor for s in store.history("t-1")[1:]] == ["bot-7", "bot-7"]


def test_moving_a_task_someone_else_holds_needs_the_holder_or_force(db: Path) -> None:
    invoke("--db", str(db), "claim", "--worker", "alice")
    with unchanged(db):
        refused = invoke("--db", str(db), "move", "t-1", "review", "--actor", "bob")
    assert refused.exit_code == 1
    assert one_line_error(refused.stderr) == (
        "task t-1 is in_progress and held by alice, not bob; pass --actor alice to act as its "
        "holder, or --force to move it anyway"
    )
    forced = invoke("--db", str(db), "move", "t-1", "review", "--actor", "bob", "--force")
    assert forced.exit_code == 0, forced.stderr
    with TaskStore(db) as store:
        step = store.history("t-1")[-1]
    assert (step.actor, step.note) == ("bob", "forced (held by alice)")


def test_mcp_moves_of_a_held_task_need_the_holder_or_force(db: Path) -> None:
    with TaskStore(db) as store:
        store.claim("agent-a")

        async def body(c: Client) -> list[Any]:
            out = []
            for args in (
                {"task_id": "t-1", "to_state": "review"},
                {"task_id": "t-1", "to_state": "review", "force": True},
                {"task_id": "t-2", "to_state": "in_progress"},
            ):
                out.append(await c.call_tool("transition_task", args))
            return out

        async def main() -> list[Any]:
            async with Client(build_server(store)) as c:
                with anyio.fail_after(20):
                    return await body(c)

        before = store.history("t-1")
        refused, forced, unheld = anyio.run(main)
        assert refused.is_error
        assert refused.content[0].text == (
            "task t-1 is in_progress and held by agent-a, not mcp; "
            "move it as agent-a or force the move"
        )
        assert not forced.is_error
        assert not unheld.is_error
        after = store.history("t-1")
        assert after[: len(before)] == before
        assert [(s.actor, s.note) for s in after[len(before) :]] == [
            ("mcp", "forced (held by agent-a)")
        ]
        assert store.history("t-2")[-1].actor == "mcp"  # nobody held it: recorded as mcp


# -- 3. a closed pipe ends quietly -------------------------------------------------------


def test_a_closed_pipe_ends_any_command_quietly(tmp_path: Path) -> None:
    db = tmp_path / "many.db"
    with TaskStore(db) as store:
        store.add_many([f"task number {i} with a title long enough" for i in range(3000)])
        busy = store.add("claimed and handed back often", priority=1)
        for _ in range(600):  # a history longer than a pipe's buffer
            store.claim("w")
            store.release(busy.id, "w")
    since = "2000-01-01T00:00:00+00:00"
    for command in (
        ["list"],
        ["export", "-"],
        ["list", "--json"],
        ["history", busy.id],
        ["memory", "recall", "--limit", "100000"],
        ["watch", "--since", since],
    ):
        proc = subprocess.Popen(
            [SCRIPT, "--db", str(db), *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        first = proc.stdout.readline()  # what `| head -1` reads before it exits
        proc.stdout.close()
        err = proc.stderr.read()
        proc.stderr.close()
        assert proc.wait(timeout=60) == 0, (command, err)
        assert first
        assert err == "", command


# -- 5. read commands never write ----------------------------------------------------------


@pytest.fixture
def locked_folder(tmp_path: Path) -> Iterator[Path]:
    """A WAL database, mode 0444, in a folder with no write bits; restored after."""
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "tasks.db"
    with TaskStore(path) as store:
        store.add("readable")
    assert not Path(f"{path}-shm").exists()  # a clean close leaves the main file alone
    path.chmod(0o444)
    folder.chmod(0o555)
    yield path
    folder.chmod(0o755)
    path.chmod(0o644)


def test_read_commands_work_on_a_file_they_may_not_write(locked_folder: Path) -> None:
    before = locked_folder.read_bytes()
    db = str(locked_folder)
    listed = script("--db", db, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [t["title"] for t in json.loads(listed.stdout)] == ["readable"]
    for args in (["show", "t-1"], ["stats"], ["history", "t-1"], ["export", "-"]):
        done = script("--db", db, *args)
        assert done.returncode == 0, (args, done.stderr)
    written = script("--db", db, "add", "more")
    assert written.returncode == 1
    assert "read-only" in one_line_error(written.stderr)
    assert locked_folder.read_bytes() == before
    assert sorted(p.name for p in locked_folder.parent.iterdir()) == ["tasks.db"]


@pytest.mark.parametrize(
    "args", [["list"], ["show", "t-1"], ["stats"], ["export", "-"], ["claim"], ["history", "t-1"]]
)
def test_reading_an_empty_or_missing_file_writes_nothing(tmp_path: Path, args: list[str]) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    done = invoke("--db", str(empty), *args)
    assert done.exit_code == 1
    assert one_line_error(done.stderr).startswith(f"{empty} is empty: not a database yet")
    assert empty.stat().st_size == 0
    missing = tmp_path / "missing.db"
    done = invoke("--db", str(missing), *args)
    assert one_line_error(done.stderr) == (
        f"{missing} does not exist (create it with `minna-tasks init`)"
    )
    assert list(tmp_path.iterdir()) == [empty]


# -- 6. ~ and MINNA_DB_PATH -----------------------------------------------------------------


def test_tilde_is_expanded_in_db_and_minna_db(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    assert script("--db", "~/a.db", "add", "x", cwd=work, HOME=str(home)).returncode == 0
    assert script("add", "y", cwd=work, HOME=str(home), MINNA_DB="~/b.db").returncode == 0
    assert (home / "a.db").exists()
    assert (home / "b.db").exists()
    assert list(work.iterdir()) == []  # no folder named ~


def test_only_a_postgresql_url_escapes_path_handling(monkeypatch: pytest.MonkeyPatch) -> None:
    """resolve_db and the engines agree on what a server URL is (one rule): any other
    text, even with `://` in it, is a file path and has its `~` expanded."""
    from minna_tasks.dbpath import resolve_db
    from minna_tasks.engines import is_postgres_url

    monkeypatch.setenv("HOME", "/home/someone")
    for url in ("postgresql://u@h/db", "POSTGRES://h/db?x=~"):
        assert resolve_db(url) == url
        assert is_postgres_url(resolve_db(url))
    assert resolve_db("~/a://b.db") == "/home/someone/a://b.db"
    assert not is_postgres_url(resolve_db("~/a://b.db"))


def test_the_file_is_db_then_minna_db_then_minna_db_path(tmp_path: Path) -> None:
    for name in ("flag", "env", "path"):
        with TaskStore(tmp_path / f"{name}.db") as store:
            store.add(name)

    def title(*args: str, **env: str) -> str:
        done = script(*args, "list", "--json", cwd=tmp_path, **env)
        assert done.returncode == 0, done.stderr
        return str(json.loads(done.stdout)[0]["title"])

    both = {"MINNA_DB": "env.db", "MINNA_DB_PATH": "path.db"}
    assert title("--db", "flag.db", **both) == "flag"
    assert title(**both) == "env"
    assert title(MINNA_DB_PATH="path.db") == "path"
    nothing = script("list", cwd=tmp_path)
    assert one_line_error(nothing.stderr).startswith(".spine/minna.db does not exist")


# -- 7. claim exits 3 when nothing is pending -----------------------------------------------


def test_a_shell_loop_works_the_queue_with_claim(db: Path) -> None:
    loop = (
        f'while id=$("{SCRIPT}" --db "$DB" claim); do "{SCRIPT}" --db "$DB" move "$id" review'
        f' >/dev/null; echo "did $id"; done; "{SCRIPT}" --db "$DB" claim; echo "claim said $?"'
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("MINNA_")}
    done = subprocess.run(
        ["bash", "-c", loop],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**base, "DB": str(db)},
    )
    assert done.stdout.splitlines() == ["did t-1", "did t-2", "claim said 3"]
    assert done.stderr == "No pending task.\n" * 2


# -- 10. control characters never reach the terminal ------------------------------------


def test_tables_escape_control_characters(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with TaskStore(db) as store:
        store.add("evil \x1b]0;pwned\x07 \u202eright-to-left title")
    for args in (["list"], ["show", "t-1"], ["history", "t-1"]):
        out = script("--db", str(db), *args).stdout
        assert "\x1b" not in out
        assert "\x07" not in out
        assert "\u202e" not in out
    listed = script("--db", str(db), "list").stdout
    assert "evil \\x1b]0;pwned\\x07 \\u202eright-to-left title" in listed
    shown = json.loads(script("--db", str(db), "show", "t-1", "--json").stdout)
    assert shown["title"] == "evil \x1b]0;pwned\x07 \u202eright-to-left title"  # JSON is exact


# -- 11. a busy file ----------------------------------------------------------------------


def test_a_locked_file_is_said_once_and_busy_timeout_bounds_the_wait(db: Path) -> None:
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with unchanged_after(db, holder):
            started = time.monotonic()
            done = script("--db", str(db), "--busy-timeout", "2", "add", "blocked")
            waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0] == (
        f"Waiting for {db}: another process holds the write lock (up to 2s; --busy-timeout sets it)"
    )
    assert len(lines) == 2
    assert "is busy" in one_line_error(lines[1] + "\n")
    assert waited >= 2  # it did wait as long as it was told to (a lower bound only)
    quick = script("--db", str(db), "--busy-timeout", "0", "list")
    assert quick.returncode == 0  # reads never wait for a writer


class unchanged_after:  # noqa: N801 - reads like `unchanged`
    """`unchanged`, for a file another connection holds locked during the block."""

    def __init__(self, path: Path, holder: sqlite3.Connection) -> None:
        self.path, self.holder = path, holder

    def __enter__(self) -> None:
        self.before = list(self.holder.iterdump())

    def __exit__(self, *exc: object) -> None:
        assert list(self.holder.iterdump()) == self.before


# -- 12. shell completion ------------------------------------------------------------------


def complete(words: str, db: Path) -> list[str]:
    done = subprocess.run(
        [SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            **os.environ,
            "_MINNA_TASKS_COMPLETE": "bash_complete",
            "COMP_WORDS": f"minna-tasks --db {db} {words}",
            "COMP_CWORD": str(len(f"--db {db} {words}".split(" "))),
            "MINNA_DB": "",
        },
    )
    assert done.returncode == 0, done.stderr
    return [line.split(",", 1)[1] for line in done.stdout.splitlines() if line]


def test_shell_completion_offers_task_ids_and_states(db: Path) -> None:
    before = db.read_bytes()
    assert complete("show ", db) == ["t-1", "t-2"]
    assert complete("move t-1 ", db) == ["pending", "in_progress", "review", "failed", "completed"]
    assert complete("move t-1 re", db) == ["review"]
    assert complete("move t-1 review --expect in", db) == ["in_progress"]
    assert complete("sh", db) == ["show"]
    assert db.read_bytes() == before
    assert complete("show ", db.with_name("nothing.db")) == []
    assert not db.with_name("nothing.db").exists()


# -- 19. the MCP extra's install hint -------------------------------------------------------


def test_mcp_without_the_extra_says_how_to_install_it(db: Path) -> None:
    code = (
        "import sys; sys.modules['mcp'] = None\n"
        "from minna_tasks_cli.main import main\n"
        f"sys.argv = ['minna-tasks', '--db', {str(db)!r}, 'mcp']\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    message = one_line_error(done.stderr)
    assert message == f"the MCP server needs the mcp extra: {mcp_install_hint()}"
    hint = mcp_install_hint()
    assert hint.startswith(f"{sys.executable} -m pip install ")
    assert "minna-tasks[mcp]" not in hint  # no index has minna-tasks
    root = Path(__file__).resolve().parent.parent
    assert hint.endswith(f"-e '{root}[mcp]'")


def test_run_help_says_how_results_are_stored() -> None:
    text = invoke("run", "--help").stdout
    assert "stored as JSON when it parses as JSON" in " ".join(text.split())


def test_claim_help_documents_exit_3() -> None:
    assert "Exits 3 when nothing is pending" in " ".join(invoke("claim", "--help").stdout.split())


def test_tables_align_wide_characters(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with TaskStore(db) as store:
        store.add_many(["first", "second"])
        store.claim("工人")  # two terminal columns per character
        store.claim("bob")
    lines = invoke("--db", str(db), "list").stdout.splitlines()
    columns = [
        _columns_before(line, line.index(title))
        for line, title in zip(lines[2:], ("first", "second"), strict=True)
    ]
    assert columns[0] == columns[1] == _columns_before(lines[0], lines[0].index("title"))


def _columns_before(line: str, index: int) -> int:
    return sum(2 if "\u4e00" <= c <= "\u9fff" else 1 for c in line[:index])


def test_unmerged_wal_without_shm_in_a_locked_folder_is_refused_clearly(tmp_path: Path) -> None:
    """SQLite would need to create the -shm to read the -wal: say so instead of failing
    with 'attempt to write a readonly database'."""
    source = tmp_path / "src.db"
    with TaskStore(source) as store:
        store.add("one")
        writer = sqlite3.connect(source)
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute(
            "INSERT INTO memories (entity, attribute, value, created_at)"
            " VALUES ('x', 'y', 'z', '2026-01-01T00:00:00+00:00')"
        )
        writer.commit()
        folder = tmp_path / "ro"
        folder.mkdir()
        for suffix in ("", "-wal"):  # a copy while the log holds changes, without its -shm
            (folder / f"tasks.db{suffix}").write_bytes(Path(f"{source}{suffix}").read_bytes())
        writer.close()
    db = folder / "tasks.db"
    assert Path(f"{db}-wal").stat().st_size > 0
    db.chmod(0o444)
    folder.chmod(0o555)
    try:
        done = script("--db", str(db), "list")
        assert done.returncode == 1
        assert "cannot be read consistently" in one_line_error(done.stderr)
        assert sorted(p.name for p in folder.iterdir()) == ["tasks.db", "tasks.db-wal"]
    finally:
        folder.chmod(0o755)
