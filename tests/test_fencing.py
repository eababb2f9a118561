"""Fencing tokens: every claim's token, and moves with a superseded one refused.

The scenario they exist for: a worker stalls past its lease, the task is
recovered and claimed again (even under the same worker name), and the stalled
worker wakes up with a late result. Its moves carry the old token and are refused.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from minna_tasks_cli.main import cli

from minna_tasks import (
    ClaimSuperseded,
    MinnaMemory,
    Task,
    TaskStore,
    TransitionConflict,
    state_machine_loop,
)
from minna_tasks.engines.sqlite.projection import (
    TASK_MIGRATIONS,
    TRIGGERS,
    _fields_trigger,
)
from minna_tasks.engines.task_schema import FIELDS
from minna_tasks.jsonio import export_tasks, import_tasks

from .conftest import dump, unchanged

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).with_name("minna-tasks")
FUTURE = "2999-01-01T00:00:00+00:00"


def status_row_id(db_path: Path, task_id: str) -> int:
    """The memory id of the task's newest status row, read with plain SQL."""
    conn = sqlite3.connect(db_path)
    try:
        row = conn.execute(
            "SELECT max(id) FROM memories WHERE entity = ? AND attribute = 'status'", (task_id,)
        ).fetchone()
        return int(row[0])
    finally:
        conn.close()


def superseded(store: TaskStore, task_id: str = "t-1", worker: str = "w") -> tuple[int, int]:
    """Claim, lose the lease to recover, claim again under the same name: (old, new)."""
    old = store.claim(worker)
    assert old is not None
    assert old.id == task_id
    assert old.claim_token is not None
    store.recover(now=FUTURE)
    new = store.claim(worker)
    assert new is not None
    assert new.id == task_id
    assert new.claim_token is not None
    return old.claim_token, new.claim_token


# -- the store -----------------------------------------------------------------------


@pytest.mark.sqlite_only
def test_a_claim_token_is_the_id_of_the_claims_status_row(store: TaskStore, db_path: Path) -> None:
    store.add_many(["a", "b"])
    first = store.claim("w")
    assert first is not None
    assert first.claim_token == status_row_id(db_path, "t-1")
    second = store.claim("w")
    assert second is not None
    assert second.claim_token == status_row_id(db_path, "t-2")
    assert second.claim_token > first.claim_token
    assert store.get("t-1") == first  # what claim returned is what the file holds


def test_a_claim_token_is_the_cursor_of_the_claims_status_change(store: TaskStore) -> None:
    # Both engines: the claim's status row has the id the token names, and its rows
    # (status, lease, token) were written in that order.
    store.add_many(["a", "b"])
    for task_id in ("t-1", "t-2"):
        claimed = store.claim("w")
        assert claimed is not None
        assert claimed.id == task_id
        assert claimed.claim_token == store.history(task_id)[-1].cursor
        facts = store.facts(task_id)
        assert [f["attribute"] for f in facts[-3:]] == ["status", "lease_expires_at", "claim_token"]
        assert facts[-1]["value"] == claimed.claim_token
        assert store.get(task_id) == claimed


def test_append_claim_writes_the_status_rows_id_into_the_token_row(memory: MinnaMemory) -> None:
    # A row before the status row too (a claim event that resets attempts writes one).
    at = "2026-01-01T00:00:00.000000+00:00"
    rows = [
        ("e", "attempts", 0, "w", 1.0, None, at),
        ("e", "status", "in_progress", "w", 1.0, "claimed", at),
        ("e", "lease_expires_at", "x", "w", 1.0, None, at),
        ("e", "claim_token", None, "w", 1.0, None, at),
    ]
    for status in (1, 0):
        with memory.transaction():
            token = memory.append_claim(rows[1 - status :], status, 3 - (1 - status))
        written = sorted(memory.recall("e", limit=None), key=lambda m: m.id)[-4 + (1 - status) :]
        assert [m.attribute for m in written] == [r[1] for r in rows[1 - status :]]
        assert written[status].id == token
        assert written[-1].value == token
        assert [m.value for m in written[:-1]] == [r[2] for r in rows[1 - status : -1]]


def test_a_new_claim_of_the_same_task_gets_a_greater_token(store: TaskStore) -> None:
    store.add("a")
    old, new = superseded(store)
    assert new > old
    store.release("t-1", "w", token=new)
    again = store.claim("w")
    assert again is not None
    assert again.claim_token is not None
    assert again.claim_token > new


def test_the_token_stays_while_held_and_goes_when_the_task_leaves(store: TaskStore) -> None:
    store.add("a")
    claimed = store.claim("w")
    assert claimed is not None
    assert claimed.claim_token is not None
    token = claimed.claim_token
    beat = store.heartbeat("t-1", "w", 600, token=token)
    assert beat.claim_token == token
    review = store.transition("t-1", "review", actor="w", result=1, token=token)
    assert review.claim_token == token
    done = store.transition("t-1", "completed", actor="w", token=token)
    assert done.claim_token is None
    assert done.owner is None
    assert store.get("t-1") == done


@pytest.mark.parametrize("leave", ["release", "fail", "recover"])
def test_a_task_that_left_its_held_states_has_no_token(store: TaskStore, leave: str) -> None:
    store.add("a")
    claimed = store.claim("w")
    assert claimed is not None
    token = claimed.claim_token
    if leave == "release":
        store.release("t-1", "w", token=token)
    elif leave == "fail":
        store.fail("t-1", "w", error="boom", token=token)
    else:
        store.recover(now=FUTURE)
    assert store.get("t-1").status == "pending"
    assert store.get("t-1").claim_token is None


MOVES: dict[str, Callable[[TaskStore, int], Task]] = {
    "review": lambda s, t: s.transition("t-1", "review", actor="w", result="late", token=t),
    "transition without actor": lambda s, t: s.transition("t-1", "review", token=t),
    "heartbeat": lambda s, t: s.heartbeat("t-1", "w", 600, token=t),
    "release": lambda s, t: s.release("t-1", "w", token=t),
    "fail": lambda s, t: s.fail("t-1", "w", error="late", token=t),
}


@pytest.mark.parametrize("move", MOVES)
def test_a_superseded_token_is_refused_even_under_the_same_name(
    store: TaskStore, db_path: Path, move: str
) -> None:
    store.add("a")
    old, new = superseded(store)
    with unchanged(db_path), pytest.raises(ClaimSuperseded) as caught:
        MOVES[move](store, old)
    error = caught.value
    assert isinstance(error, TransitionConflict)
    assert (error.task_id, error.state, error.owner) == ("t-1", "in_progress", "w")
    assert (error.token, error.current) == (old, new)
    assert str(error) == (
        f"task t-1: claim {old} was superseded; the task is in_progress and held by w "
        f"under claim {new}; claim it again to work on it"
    )
    MOVES[move](store, new)  # the holder's own token still works


def test_a_token_is_refused_once_the_task_is_not_held(store: TaskStore, db_path: Path) -> None:
    store.add("a")
    claimed = store.claim("w")
    assert claimed is not None
    assert claimed.claim_token is not None
    store.recover(now=FUTURE)
    with unchanged(db_path), pytest.raises(ClaimSuperseded) as caught:
        store.transition("t-1", "in_progress", actor="w", token=claimed.claim_token)
    assert str(caught.value) == (
        f"task t-1: claim {claimed.claim_token} was superseded; the task is pending and "
        "held by nobody; claim it again to work on it"
    )


def _forget_tokens(db_path: Path) -> None:
    """Remove every claim token with plain SQL, as in a file written before fencing."""
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("DELETE FROM memories WHERE attribute = 'claim_token'")
        conn.execute("UPDATE task_current SET claim_token = NULL")
    conn.close()


@pytest.mark.sqlite_only
def test_a_task_claimed_before_tokens_existed_refuses_any_token(
    store: TaskStore, db_path: Path
) -> None:
    """A held task with no token (written by 0.1, or a plain move) refuses every token,
    and moves without one work as before."""
    store.add("a")
    claimed = store.transition("t-1", "in_progress", actor="w")  # a claim by a plain move
    assert claimed.claim_token == status_row_id(db_path, "t-1")
    _forget_tokens(db_path)  # as 0.1 left it
    assert store.get("t-1").claim_token is None
    with pytest.raises(ClaimSuperseded, match="held by w with no claim token"):
        store.heartbeat("t-1", "w", token=1)
    assert store.heartbeat("t-1", "w").owner == "w"


@pytest.mark.parametrize("token", ["12", 1.5, True])
def test_a_token_that_is_not_an_integer_is_refused(
    store: TaskStore, db_path: Path, token: Any
) -> None:
    store.add("a")
    store.claim("w")
    with unchanged(db_path), pytest.raises(TypeError, match="token must be an integer"):
        store.transition("t-1", "review", actor="w", token=token)


def test_as_of_history_and_export_import_keep_the_token(store: TaskStore, tmp_path: Path) -> None:
    store.add("a")
    old, new = superseded(store)
    claimed_at = store.history("t-1")[1].at
    assert store.as_of("t-1", claimed_at).claim_token == old
    assert store.as_of("t-1", store.history("t-1")[2].at).claim_token is None  # recovered
    export_tasks(store, tmp_path / "tasks.json")
    document = json.loads((tmp_path / "tasks.json").read_text())
    assert document["tasks"][0]["claim_token"] == new
    with TaskStore(tmp_path / "other.db") as other:
        import_tasks(other, tmp_path / "tasks.json")
        assert other.get("t-1") == store.get("t-1")
        assert other.as_of("t-1", claimed_at).claim_token == old
        with pytest.raises(ClaimSuperseded):
            other.transition("t-1", "review", actor="w", token=old)
        assert other.transition("t-1", "review", actor="w", token=new).status == "review"


def test_the_token_is_a_protected_task_field(store: TaskStore) -> None:
    """A raw memory write cannot forge a token (fields change only through the store)."""
    from minna_tasks.errors import TaskFieldProtected

    store.add("a")
    store.claim("w")
    with pytest.raises(TaskFieldProtected):
        store.remember("t-1", "claim_token", 1)


@pytest.mark.sqlite_only
def test_a_plain_sql_claim_token_triple_reaches_the_projection(
    store: TaskStore, db_path: Path
) -> None:
    """Another tool appending the triple with plain SQL: the trigger keeps the column."""
    store.add("a")
    store.claim("w")
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(
            "INSERT INTO memories (entity, attribute, value, source, created_at)"
            " VALUES ('t-1', 'claim_token', '77', 'tool', '2026-01-01T00:00:00.000000+00:00')"
        )
    conn.close()
    assert store.get("t-1").claim_token == 77
    assert store.heartbeat("t-1", "w", token=77).claim_token == 77


# -- migration ------------------------------------------------------------------------


def _as_before_fencing(db_path: Path) -> None:
    """Turn a file back into the shape it had before migration 3 (no claim_token column,
    the fields trigger without it, the tasks component at version 2, the old view)."""
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("DROP VIEW IF EXISTS tasks")
        for name in TRIGGERS:  # the newer triggers name claim_token too
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        conn.execute("ALTER TABLE task_current DROP COLUMN claim_token")
        conn.executescript(_fields_trigger(name for name in FIELDS if name != "claim_token"))
        conn.execute("UPDATE schema_components SET version = 2 WHERE name = 'tasks'")
    conn.close()


@pytest.mark.sqlite_only
def test_a_file_from_before_fencing_migrates_keeping_its_tasks(db_path: Path) -> None:
    assert len(TASK_MIGRATIONS) >= 3  # the claim token is the third
    with TaskStore(db_path) as store:
        store.add_many(["held", "waiting", "done"])
        store.transition("t-2", "in_progress", actor="old")
    _forget_tokens(db_path)  # t-2: held, with no token at all (as 0.1 left it)
    with TaskStore(db_path) as store:
        store.claim("w")  # t-1, its token triple in the log
        store.transition("t-3", "in_progress", actor="x")
        store.transition("t-3", "review", actor="x")
        store.transition("t-3", "completed", actor="x")
        before = {t.id: t for t in store.list()}
    _as_before_fencing(db_path)
    conn = sqlite3.connect(db_path)
    columns = [r[1] for r in conn.execute("PRAGMA table_info(task_current)")]
    conn.close()
    assert "claim_token" not in columns
    with TaskStore(db_path) as store:
        after = {t.id: t for t in store.list()}
        assert after == before  # the backfill restored t-1's token from its triple
        assert after["t-2"].claim_token is None
        assert store.heartbeat("t-2", "old").owner == "old"  # no token: works as before
        token = after["t-1"].claim_token
        assert store.transition("t-1", "review", actor="w", token=token).status == "review"
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("SELECT claim_token FROM tasks WHERE id = 't-1'").fetchone() == (token,)
        version = conn.execute("SELECT version FROM schema_components WHERE name = 'tasks'")
        assert version.fetchone() == (len(TASK_MIGRATIONS),)
    finally:
        conn.close()


# -- the loop -------------------------------------------------------------------------


def test_the_loop_does_not_store_a_result_after_its_claim_was_superseded(
    db_path: Path,
) -> None:
    """The lease is lost mid-execute and the task re-claimed under the loop's own name:
    the late result is not stored and the new claim is untouched."""
    with TaskStore(db_path) as store, TaskStore(db_path) as other:
        store.add("a")
        seen: dict[str, Any] = {}

        def execute(task: Task) -> str:
            other.recover(now=FUTURE)  # the lease ran out while we stalled
            seen["new"] = other.claim("w", lease_seconds=900)
            return "late result"

        summary = state_machine_loop(store, execute, worker="w", heartbeat_seconds=3600)
        new = seen["new"]
        assert isinstance(new, Task)
        assert summary["completed"] == 0
        assert store.get("t-1") == new  # still the new claim's, with no result
        assert [s.to_state for s in store.history("t-1")] == [
            "pending",
            "in_progress",
            "pending",
            "in_progress",
        ]


def test_the_loops_heartbeat_stops_at_a_superseded_claim(db_path: Path) -> None:
    """Without the token the heartbeat would keep extending the new claim (same name);
    with it, the heartbeat thread is refused and stops, and the new lease is kept."""
    with TaskStore(db_path) as store, TaskStore(db_path) as other:
        store.add("a")
        seen: dict[str, Any] = {}

        def heartbeat_running(task_id: str) -> bool:
            name = f"heartbeat-{task_id}"
            return any(t.name == name and t.is_alive() for t in threading.enumerate())

        def execute(task: Task) -> str:
            other.recover(now=FUTURE)
            seen["new"] = other.claim("w", lease_seconds=900)
            deadline = time.monotonic() + 60
            while heartbeat_running(task.id) and time.monotonic() < deadline:
                time.sleep(0.01)
            seen["stopped"] = not heartbeat_running(task.id)
            return "late result"

        summary = state_machine_loop(
            store, execute, worker="w", lease_seconds=30, heartbeat_seconds=0.01
        )
        assert seen["stopped"]
        assert summary["completed"] == 0
        assert store.get("t-1") == seen["new"]  # its lease not moved by the old heartbeat


def _start_stalling_worker(db_path: Path, tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    go = tmp_path / "go"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.workers", "stall", str(db_path), str(tmp_path / "m"),
         str(go), "w"],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    return proc, go


def _cli(db_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "--db", str(db_path), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_stalled_worker_process_cannot_complete_a_task_reclaimed_under_its_name(
    db_path: Path, tmp_path: Path
) -> None:
    """Two real processes with one worker name: the first stalls past its lease, the
    task is recovered and claimed again by the second; the first's result is refused."""
    with TaskStore(db_path) as store:
        store.add("a")
    proc, go = _start_stalling_worker(db_path, tmp_path)
    try:
        marker = tmp_path / "m"
        deadline = time.monotonic() + 60
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert marker.exists(), proc.stderr.read() if proc.stderr else ""
        old = int(marker.read_text())
        assert _cli(db_path, "recover", "--now", FUTURE).returncode == 0
        claimed = _cli(db_path, "claim", "--worker", "w", "--json")
        assert claimed.returncode == 0, claimed.stderr
        new = json.loads(claimed.stdout)["claim_token"]
        assert new > old
        go.write_text("")
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert json.loads(out)["completed"] == 0
    assert f"claim {old} was superseded" in err  # the loop logged why it let go
    with TaskStore(db_path) as store:
        task = store.get("t-1")
        assert (task.status, task.owner, task.claim_token, task.result) == (
            "in_progress",
            "w",
            new,
            None,
        )
    stale = _cli(db_path, "move", "t-1", "review", "--actor", "w", "--token", str(old))
    assert stale.returncode == 1
    assert stale.stderr.startswith(f"Error: task t-1: claim {old} was superseded;")
    done = _cli(db_path, "move", "t-1", "review", "--actor", "w", "--token", str(new))
    assert done.returncode == 0, done.stderr


# -- the CLI --------------------------------------------------------------------------


def invoke(db_path: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--db", str(db_path), *args])


CLI_MOVES = {
    "move": ("move", "t-1", "review", "--actor", "w"),
    "heartbeat": ("heartbeat", "t-1", "--worker", "w"),
    "release": ("release", "t-1", "--worker", "w"),
    "fail": ("fail", "t-1", "--worker", "w", "--error", "late"),
}


@pytest.mark.parametrize("command", CLI_MOVES)
def test_cli_refuses_a_superseded_token_and_accepts_the_holders(
    db_path: Path, command: str
) -> None:
    assert invoke(db_path, "add", "a").exit_code == 0
    first = invoke(db_path, "claim", "--worker", "w", "--json")
    old = json.loads(first.stdout)["claim_token"]
    assert invoke(db_path, "recover", "--now", FUTURE).exit_code == 0
    second = invoke(db_path, "claim", "--worker", "w", "--json")
    new = json.loads(second.stdout)["claim_token"]
    before = dump(db_path)
    refused = invoke(db_path, *CLI_MOVES[command], "--token", str(old))
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"Error: task t-1: claim {old} was superseded; the task is in_progress and held by w "
        f"under claim {new}; claim it again to work on it\n"
    )
    assert dump(db_path) == before
    accepted = invoke(db_path, *CLI_MOVES[command], "--token", str(new))
    assert accepted.exit_code == 0, accepted.output


def test_cli_fail_counts_an_attempt(db_path: Path) -> None:
    invoke(db_path, "add", "a", "--max-attempts", "2")
    token = json.loads(invoke(db_path, "claim", "--worker", "w", "--json").stdout)["claim_token"]
    result = invoke(db_path, "fail", "t-1", "--worker", "w", "--token", str(token), "--json")
    assert result.exit_code == 0, result.output
    task = json.loads(result.stdout)
    assert (task["status"], task["attempts"], task["claim_token"]) == ("pending", 1, None)
    invoke(db_path, "claim", "--worker", "w")
    result = invoke(db_path, "fail", "t-1", "--worker", "w", "--error", "again")
    assert result.stdout == "t-1: failed (attempts 2/2)\n"


def test_cli_refuses_a_token_that_is_not_a_number(db_path: Path) -> None:
    invoke(db_path, "add", "a")
    invoke(db_path, "claim", "--worker", "w")
    before = dump(db_path)
    result = invoke(db_path, "heartbeat", "t-1", "--worker", "w", "--token", "abc")
    assert result.exit_code == 2
    assert "'abc' is not a valid integer" in result.stderr
    assert dump(db_path) == before


# -- MCP ------------------------------------------------------------------------------


def test_mcp_tools_take_the_token(db_path: Path) -> None:
    pytest.importorskip("mcp")
    import anyio
    from mcp.client import Client
    from mcp.types import CallToolResult

    from minna_tasks.mcp_server import build_server

    def data(result: CallToolResult) -> Any:
        assert not result.is_error, result.content
        block = result.content[0]
        assert block.type == "text"
        return json.loads(block.text)

    def message(result: CallToolResult) -> str:
        assert result.is_error
        block = result.content[0]
        assert block.type == "text"
        return block.text

    with TaskStore(db_path) as store, TaskStore(db_path) as other:
        store.add("a")

        async def body(c: Client) -> dict[str, Any]:
            out: dict[str, Any] = {}
            claimed = data(await c.call_tool("claim_task", {"worker": "w"}))
            old = out["old"] = claimed["claim_token"]
            assert old == store.get("t-1").claim_token
            other.recover(now=FUTURE)
            new = out["new"] = data(await c.call_tool("claim_task", {"worker": "w"}))["claim_token"]
            out["before"] = dump(db_path)
            calls = {
                "transition_task": {"task_id": "t-1", "to_state": "review", "actor": "w"},
                "heartbeat_task": {"task_id": "t-1", "worker": "w"},
                "release_task": {"task_id": "t-1", "worker": "w"},
                "fail_task": {"task_id": "t-1", "worker": "w", "error": "late"},
            }
            out["refused"] = [
                message(await c.call_tool(tool, {**args, "token": old}))
                for tool, args in calls.items()
            ]
            out["after"] = dump(db_path)
            beat = data(
                await c.call_tool("heartbeat_task", {**calls["heartbeat_task"], "token": new})
            )
            out["beat"] = beat["claim_token"]
            moved = data(
                await c.call_tool("transition_task", {**calls["transition_task"], "token": new})
            )
            out["moved"] = moved["status"]
            return out

        async def main() -> dict[str, Any]:
            async with Client(build_server(store)) as c:
                with anyio.fail_after(30):
                    return await body(c)

        out = anyio.run(main)
    old, new = out["old"], out["new"]
    expected = (
        f"task t-1: claim {old} was superseded; the task is in_progress and held by w "
        f"under claim {new}; claim it again to work on it"
    )
    assert out["refused"] == [expected] * 4
    assert out["after"] == out["before"]
    assert (out["beat"], out["moved"]) == (new, "review")


def test_a_file_written_by_01_gets_tokens_from_its_next_claim(tmp_path: Path) -> None:
    """tests/data/minna-0.1.sqlite, written by minna-tasks 0.1.0: after the migration its
    tasks have no token until claimed, and a claim there is fenced like any other."""
    path = tmp_path / "minna.db"
    path.write_bytes((ROOT / "tests" / "data" / "minna-0.1.sqlite").read_bytes())
    with TaskStore(path) as store:
        assert [t.claim_token for t in store.list()] == [None, None]
        claimed = store.claim("w")
        assert claimed is not None
        assert claimed.id == "t-2"
        assert claimed.claim_token == status_row_id(path, "t-2")
        store.recover(now=FUTURE)
        again = store.claim("w")
        assert again is not None
        with pytest.raises(ClaimSuperseded):
            store.transition("t-2", "review", actor="w", token=claimed.claim_token)
        assert store.transition("t-2", "review", actor="w", token=again.claim_token).result is None
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT id, claim_token FROM tasks").fetchall() == [
            ("t-1", None),
            ("t-2", again.claim_token),
        ]
    finally:
        conn.close()
