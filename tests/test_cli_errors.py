"""Bad input on the command line: one line `Error: ...`, exit 1 (2 for usage), nothing written.

Each case runs against a real file holding tasks in every interesting state and
checks the exact message, the exit code, an empty stdout and an unchanged file
(logical dump for databases, bytes for anything else).
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from minna_tasks_cli.main import cli

from minna_tasks import TaskStore, jsonio
from minna_tasks.memory import SCHEMA_VERSION
from tests.conftest import dump

STATES = "pending, in_progress, review, failed, completed"


def _populate(db: Path) -> None:
    """t-1 completed, t-2 pending, t-3 in_progress held by w1, t-4 failed."""
    with TaskStore(db) as store:
        store.add_many(["one", "two", "three", {"title": "four", "max_attempts": 1}])
        for state in ("in_progress", "review", "completed"):
            store.transition("t-1", state, actor="x")
        store.transition("t-3", "in_progress", actor="w1")
        store.transition("t-4", "in_progress", actor="w1")
        store.fail("t-4", "w1", error="boom")


def _doc(tasks: list[dict[str, Any]], **head: Any) -> dict[str, Any]:
    return {"format": "minna-tasks", "version": 1, **head, "tasks": tasks}


def _task(task_id: str = "n-1", **over: Any) -> dict[str, Any]:
    stamp = "2026-01-01T00:00:00.000000+00:00"
    item: dict[str, Any] = {
        "id": task_id,
        "title": "imported",
        "status": "pending",
        "created_at": stamp,
        "history": [
            {
                "attribute": "title",
                "value": "imported",
                "source": None,
                "context": None,
                "created_at": stamp,
            },
            {
                "attribute": "status",
                "value": "pending",
                "source": None,
                "context": "created",
                "created_at": stamp,
            },
        ],
    }
    item.update(over)
    return item


def _write(tmp: Path, name: str, content: Any) -> str:
    path = tmp / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


Setup = Callable[[Path, Path], list[str]]

# (id, args builder (tmp, db) -> argv after --db, exit code, expected message with {db}/{tmp})
CASES: list[tuple[str, Setup, int, str]] = [
    ("show-unknown", lambda t, d: ["show", "nope"], 1, "task 'nope' not found"),
    ("history-unknown", lambda t, d: ["history", "t-9"], 1, "task 't-9' not found"),
    ("move-unknown-id", lambda t, d: ["move", "t-9", "review"], 1, "task 't-9' not found"),
    (
        "move-terminal",
        lambda t, d: ["move", "t-1", "pending"],
        1,
        "cannot move t-1 from completed to pending: task t-1 is completed; "
        "it is terminal and cannot move",
    ),
    (
        "move-invalid",
        lambda t, d: ["move", "t-2", "review"],
        1,
        "cannot move t-2 from pending to review: task t-2 is pending; it can move to: in_progress",
    ),
    (
        "move-unknown-state",
        lambda t, d: ["move", "t-2", "done"],
        1,
        f"unknown state 'done'; known states: {STATES}",
    ),
    (
        "move-expect-mismatch",
        lambda t, d: ["move", "t-2", "in_progress", "--expect", "failed"],
        1,
        "task t-2 is pending, not failed: it moved under you; it can move to: in_progress",
    ),
    (
        "move-expect-unknown",
        lambda t, d: ["move", "t-2", "in_progress", "--expect", "nope"],
        1,
        f"unknown state 'nope'; known states: {STATES}",
    ),
    (
        "move-bad-result",
        lambda t, d: ["move", "t-2", "in_progress", "--result", "{x"],
        2,
        "Invalid value for '--result': not valid JSON (Expecting property name enclosed in "
        "double quotes: line 1 column 2 (char 1))",
    ),
    (
        "list-unknown-status",
        lambda t, d: ["list", "--status", "pending", "--status", "nope"],
        1,
        f"unknown state 'nope'; known states: {STATES}",
    ),
    (
        "add-bad-payload",
        lambda t, d: ["add", "x", "--payload", "{bad"],
        2,
        "Invalid value for '--payload': not valid JSON (Expecting property name enclosed in "
        "double quotes: line 1 column 2 (char 1))",
    ),
    (
        "add-priority-not-int",
        lambda t, d: ["add", "x", "--priority", "high"],
        2,
        "Invalid value for '--priority': 'high' is not a valid integer.",
    ),
    (
        "add-max-attempts-zero",
        lambda t, d: ["add", "x", "--max-attempts", "0"],
        2,
        "Invalid value for '--max-attempts': 0 is not in the range x>=1.",
    ),
    ("add-empty-title", lambda t, d: ["add", "  "], 1, "title must not be empty"),
    ("add-existing-id", lambda t, d: ["add", "x", "--id", "t-1"], 1, "task 't-1' already exists"),
    (
        "claim-negative-lease",
        lambda t, d: ["claim", "--lease", "-5"],
        2,
        "Invalid value for '--lease': -5.0 is not in the range x>0.",
    ),
    (
        "heartbeat-zero-lease",
        lambda t, d: ["heartbeat", "t-3", "--lease", "0"],
        2,
        "Invalid value for '--lease': 0.0 is not in the range x>0.",
    ),
    (
        "heartbeat-not-holder",
        lambda t, d: ["heartbeat", "t-4", "--worker", "w2"],
        1,
        "task t-4 is failed and not held by anyone, not w2",
    ),
    (
        "heartbeat-other-holder",
        lambda t, d: ["heartbeat", "t-3", "--worker", "w2"],
        1,
        "task t-3 is in_progress and held by w1, not w2",
    ),
    (
        "release-not-held",
        lambda t, d: ["release", "t-2", "--worker", "w1"],
        1,
        "task t-2 is pending and not held by anyone, not w1",
    ),
    (
        "retry-not-failed",
        lambda t, d: ["retry", "t-2"],
        1,
        "cannot retry t-2: task t-2 is pending, not failed; only a failed task can be retried; "
        "it can move to: in_progress",
    ),
    (
        "show-bad-as-of",
        lambda t, d: ["show", "t-1", "--as-of", "yesterday"],
        1,
        "not an ISO-8601 time: 'yesterday'",
    ),
    (
        "recover-bad-now",
        lambda t, d: ["recover", "--now", "soon"],
        1,
        "not an ISO-8601 time: 'soon'",
    ),
    (
        "import-missing-file",
        lambda t, d: ["import", str(t / "none.json")],
        1,
        "{tmp}/none.json does not exist",
    ),
    (
        "import-directory",
        lambda t, d: ["import", str(t)],
        1,
        "{tmp} is a directory, not a JSON file",
    ),
    (
        "import-malformed",
        lambda t, d: ["import", _write(t, "bad.json", '{"format": ')],
        1,
        "{tmp}/bad.json is not valid JSON: Expecting value: line 1 column 12 (char 11)",
    ),
    (
        "import-wrong-format",
        lambda t, d: ["import", _write(t, "w.json", [{"title": "x"}])],
        1,
        "{tmp}/w.json is not a minna-tasks file (its format is None, not 'minna-tasks')",
    ),
    (
        "import-other-format",
        lambda t, d: ["import", _write(t, "o.json", {"format": "todo"})],
        1,
        "{tmp}/o.json is not a minna-tasks file (its format is 'todo', not 'minna-tasks')",
    ),
    (
        "import-wrong-version",
        lambda t, d: ["import", _write(t, "v.json", {**_doc([]), "version": 2})],
        1,
        "{tmp}/v.json has format version 2; this minna-tasks reads version 1",
    ),
    (
        "import-duplicate-ids",
        lambda t, d: ["import", _write(t, "d.json", _doc([_task("a"), _task("b"), _task("a")]))],
        1,
        "task a: its id appears twice in the file (tasks number 1 and 3)",
    ),
    (
        "import-existing-id",
        lambda t, d: ["import", _write(t, "e.json", _doc([_task("t-1")]))],
        1,
        "task 't-1' already exists; nothing was imported (to import anyway, skip or replace "
        "existing tasks: --on-conflict skip|replace)",
    ),
    (
        "import-unknown-status",
        lambda t, d: [
            "import",
            _write(
                t,
                "s.json",
                _doc(
                    [
                        _task(
                            history=[
                                {
                                    "attribute": "status",
                                    "value": "done",
                                    "source": None,
                                    "context": None,
                                    "created_at": "2026-01-01T00:00:00+00:00",
                                }
                            ]
                        )
                    ]
                ),
            ),
        ],
        1,
        f"task n-1: status 'done' is not a known state ({STATES})",
    ),
    (
        "import-bad-value-type",
        lambda t, d: [
            "import",
            _write(
                t,
                "b.json",
                _doc(
                    [
                        _task(),
                        _task(
                            "n-2",
                            history=[
                                {
                                    "attribute": "title",
                                    "value": ["x"],
                                    "source": None,
                                    "context": None,
                                    "created_at": "2026-01-01T00:00:00+00:00",
                                }
                            ],
                        ),
                    ]
                ),
            ),
        ],
        1,
        "task n-2: history[0].value must be a string, number or null, not list",
    ),
    (
        "import-field-disagrees",
        lambda t, d: ["import", _write(t, "f.json", _doc([_task(title="edited")]))],
        1,
        "task n-1: title is 'edited' but its history ends with 'imported'",
    ),
    (
        "import-bad-time",
        lambda t, d: ["import", _write(t, "t.json", _doc([_task(created_at="today")]))],
        1,
        "task n-1: created_at is not an ISO-8601 time: 'today'",
    ),
    (
        "import-count-mismatch",
        lambda t, d: ["import", _write(t, "c.json", _doc([_task()], task_count=2))],
        1,
        "{tmp}/c.json says it has 2 tasks but holds 1",
    ),
    (
        "import-bad-on-conflict",
        lambda t, d: ["import", "x.json", "--on-conflict", "merge"],
        2,
        "Invalid value for '--on-conflict': 'merge' is not one of 'error', 'skip', 'replace'.",
    ),
    (
        "export-to-directory",
        lambda t, d: ["export", str(t)],
        2,
        "Invalid value for 'PATH': File '{tmp}' is a directory.",
    ),
    (
        "export-missing-folder",
        lambda t, d: ["export", str(t / "no" / "x.json")],
        1,
        "cannot write {tmp}/no/x.json: No such file or directory",
    ),
    (
        "memory-empty-entity",
        lambda t, d: ["memory", "store", " ", "a", "v"],
        1,
        "entity must not be empty",
    ),
    (
        "memory-store-task-field",
        lambda t, d: ["memory", "store", "t-2", "status", "completed"],
        1,
        "t-2 is a task: its status changes only through the task commands "
        "(add, move, claim, heartbeat, release, retry)",
    ),
    (
        "memory-recall-limit",
        lambda t, d: ["memory", "recall", "--limit", "0"],
        2,
        "Invalid value for '--limit': 0 is not in the range x>=1.",
    ),
    ("run-no-command", lambda t, d: ["run"], 2, "Missing argument 'COMMAND...'."),
    (
        "run-zero-workers",
        lambda t, d: ["run", "--workers", "0", "--", "true"],
        2,
        "Invalid value for '--workers': 0 is not in the range x>=1.",
    ),
    (
        "demo-not-fresh",
        lambda t, d: ["demo"],
        1,
        "{db} already has tasks; run the demo on a fresh file, e.g. minna-tasks --db demo.db demo",
    ),
    ("unknown-command", lambda t, d: ["frobnicate"], 2, "No such command 'frobnicate'."),
    ("missing-argument", lambda t, d: ["move", "t-1"], 2, "Missing argument 'STATE'."),
]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "tasks.db"
    _populate(path)
    return path


def test_fixture_states(db: Path) -> None:
    with TaskStore(db) as store:
        got = {t.id: (t.status, t.owner) for t in store.list()}
    assert got == {
        "t-1": ("completed", None),
        "t-2": ("pending", None),
        "t-3": ("in_progress", "w1"),
        "t-4": ("failed", None),
    }


@pytest.mark.parametrize(
    ("args", "code", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input(tmp_path: Path, db: Path, args: Setup, code: int, message: str) -> None:
    argv = args(tmp_path, db)
    before = dump(db)
    result = CliRunner().invoke(cli, ["--db", str(db), *argv])
    expected = message.format(db=db, tmp=tmp_path)
    assert (result.exit_code, result.stderr) == (code, f"Error: {expected}\n")
    assert result.stdout == ""
    assert dump(db) == before


def _newer_schema(path: Path) -> None:
    TaskStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()


FILE_CASES: list[tuple[str, Callable[[Path], None], str]] = [
    (
        "not-sqlite",
        lambda p: p.write_text("hello, I am a text file\n"),
        "{db} is not a SQLite database",
    ),
    (
        "newer-schema",
        _newer_schema,
        "{db} has schema version 99, newer than this minna-tasks supports "
        f"({SCHEMA_VERSION}); upgrade minna-tasks to use it",
    ),
    ("directory", lambda p: p.mkdir(), "{db} is a directory, not a database file"),
]


@pytest.mark.parametrize(
    ("make", "message"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES]
)
@pytest.mark.parametrize("command", [["add", "x"], ["list"], ["init"]])
def test_unusable_db(
    tmp_path: Path, make: Callable[[Path], None], message: str, command: list[str]
) -> None:
    path = tmp_path / "x.db"
    make(path)
    before = sorted(p.name for p in tmp_path.iterdir())
    content = None if path.is_dir() else path.read_bytes()
    result = CliRunner().invoke(cli, ["--db", str(path), *command])
    assert (result.exit_code, result.stderr) == (1, f"Error: {message.format(db=path)}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if content is not None:
        assert path.read_bytes() == content


def test_missing_db_is_not_created_by_read_commands(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    for command in (["list"], ["stats"], ["show", "t-1"], ["export", str(tmp_path / "x.json")]):
        result = CliRunner().invoke(cli, ["--db", str(path), *command])
        assert (result.exit_code, result.stderr) == (
            1,
            f"Error: {path} does not exist (create it with `minna-tasks init`)\n",
        )
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def readonly_db(db: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The database file and its folder made read-only (honoured even when tests run as root)."""
    for p in [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]:
        if p.exists():
            p.chmod(0o444)
    db.parent.chmod(0o555)
    if os.geteuid() == 0:  # root ignores mode bits: inject the fault the OS would give others
        real = os.access

        def access(path: Any, mode: int, **kw: Any) -> bool:
            if mode & os.W_OK and not os.stat(path).st_mode & stat.S_IWUSR:
                return False
            return real(path, mode, **kw)

        monkeypatch.setattr(os, "access", access)
    yield db
    db.parent.chmod(0o755)


def test_readonly_db_refuses_writes_and_allows_reads(readonly_db: Path) -> None:
    before = dump(readonly_db)
    runner = CliRunner()
    for command in (
        ["add", "x"],
        ["move", "t-2", "in_progress"],
        ["claim"],
        ["memory", "store", "e", "a", "v"],
    ):
        result = runner.invoke(cli, ["--db", str(readonly_db), *command])
        assert (result.exit_code, result.stderr) == (
            1,
            f"Error: {readonly_db} is read-only; nothing was written\n",
        )
    result = runner.invoke(cli, ["--db", str(readonly_db), "list", "--json"])
    assert result.exit_code == 0, result.stderr
    assert [t["id"] for t in json.loads(result.stdout)] == ["t-1", "t-2", "t-3", "t-4"]
    assert dump(readonly_db) == before


def test_import_validates_everything_before_writing(tmp_path: Path, db: Path) -> None:
    """A bad task at the end of a large file: nothing of the good ones is written."""
    good = [_task(f"n-{i}") for i in range(50)]
    path = _write(tmp_path, "big.json", _doc([*good, _task("n-50", status="completed")]))
    before = dump(db)
    result = CliRunner().invoke(cli, ["--db", str(db), "import", path])
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: task n-50: status is 'completed' but its history ends with 'pending'\n",
    )
    assert dump(db) == before
    assert jsonio.FORMAT == "minna-tasks"
