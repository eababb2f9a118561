"""Custom state machines everywhere: the store, the loop, `run`, the MCP tools and the CLI
drive tasks by the machine's roles and events, and the machine lives in the file."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from minna_tasks_cli.main import cli

from minna_tasks import (
    InvalidTransition,
    MachineInUse,
    MachineMismatch,
    StateMachine,
    Task,
    TaskStore,
    jsonio,
    state_machine_loop,
)
from minna_tasks.errors import ImportFormatError

from .conftest import unchanged

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).with_name("minna-tasks")
THREE = {"todo": ["doing"], "doing": ["done", "todo"], "done": []}
LARGER = {
    "queued": ["running", "cancelled"],
    "running": ["checking", "queued", "broken"],
    "checking": ["shipped", "queued", "broken"],
    "broken": ["queued", "archived"],
    "shipped": [],
    "cancelled": [],
    "archived": [],
}


def three() -> StateMachine:
    return StateMachine(THREE, initial="todo")


def larger() -> StateMachine:
    return StateMachine(LARGER, initial="queued", failed="broken", done="shipped")


def later() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


def test_roles_of_the_two_machines() -> None:
    m = three()
    assert (m.initial, m.claimed, m.held, m.review, m.done, m.failed) == (
        "todo",
        "doing",
        ("doing",),
        None,
        "done",
        None,
    )
    big = larger()
    assert (big.claimed, big.held, big.review, big.done, big.failed) == (
        "running",
        ("running", "checking"),
        "checking",
        "shipped",
        "broken",
    )
    assert big.terminal == ("shipped", "cancelled", "archived")


# -- the loop ---------------------------------------------------------------------


def test_loop_on_three_states_goes_claimed_to_done_and_verifies_the_result_in_hand(
    tmp_path: Path,
) -> None:
    with TaskStore(tmp_path / "t.db", machine=three()) as store:
        store.add_many([{"title": "a", "payload": {"n": 2}}, {"title": "b", "max_attempts": 2}])
        tries: dict[str, int] = {}

        def execute(task: Task) -> int:
            assert task.status == "doing"
            tries[task.id] = tries.get(task.id, 0) + 1
            return tries[task.id]

        def verify(task: Task) -> bool:
            assert task.status == "doing"  # no review state: the result is in hand
            return bool(task.result == 2)

        summary = state_machine_loop(store, execute, verify, worker="w")
        assert summary == {
            "completed": 2,
            "failed": 0,
            "retried": 2,
            "released": 0,
            "blocked": 0,
            "totals": {"todo": 0, "doing": 0, "done": 2},
        }
        for task in store.list():
            assert (task.status, task.result, task.attempts, task.owner) == ("done", 2, 1, None)
            assert [h.to_state for h in store.history(task.id)] == [
                "todo",
                "doing",
                "todo",
                "doing",
                "done",
            ]
            assert store.history(task.id)[2].note == "verification failed"


def test_loop_on_the_larger_machine(tmp_path: Path) -> None:
    with TaskStore(tmp_path / "l.db", machine=larger()) as store:
        good = store.add("good")
        hopeless = store.add("hopeless", max_attempts=2)

        def verify(task: Task) -> bool:
            assert task.status == "checking"
            return task.id == good.id

        summary = state_machine_loop(store, lambda t: "out", verify, worker="w")
        assert (summary["completed"], summary["failed"], summary["retried"]) == (1, 1, 1)
        assert summary["totals"]["shipped"] == 1
        assert summary["totals"]["broken"] == 1
        assert [h.to_state for h in store.history(hopeless.id)] == [
            "queued",
            "running",
            "checking",
            "queued",
            "running",
            "checking",
            "broken",
        ]
        assert store.history(hopeless.id)[-1].note == (
            "verification failed; attempts used up (2/2)"
        )


def test_loop_starts_on_a_machine_whose_held_state_goes_back_only_by_failure(
    tmp_path: Path,
) -> None:
    """recover() used to demand a move back to the queue; a failure edge is enough."""
    machine = StateMachine(
        {"new": ["busy"], "busy": ["ok", "bad"], "bad": ["new"], "ok": []},
        initial="new",
        failed="bad",
    )
    with TaskStore(tmp_path / "f.db", machine=machine) as store:
        task = store.add("x")
        store.claim("dead", lease_seconds=30)
        assert [t.status for t in store.recover(now=later())] == ["bad"]
        store.retry(task.id)
        assert state_machine_loop(store, lambda t: 1)["completed"] == 1


# -- recover, fail, release, retry, transition ------------------------------------


@pytest.mark.parametrize("make", [three, larger], ids=["three", "larger"])
def test_recover_fail_release_by_roles(tmp_path: Path, make: object) -> None:
    machine = make()  # type: ignore[operator]
    with TaskStore(tmp_path / "r.db", machine=machine) as store:
        task = store.add("x", max_attempts=3)
        queue, claimed = machine.initial, machine.claimed
        store.claim("w", lease_seconds=30)
        released = store.release(task.id, "w")
        assert (released.status, released.attempts, released.owner) == (queue, 0, None)
        store.claim("w", lease_seconds=30)
        failed = store.fail(task.id, "w", error="boom")
        assert (failed.status, failed.attempts, failed.error) == (queue, 1, "boom")
        store.claim("w", lease_seconds=30)
        (recovered,) = store.recover(now=later())
        assert (recovered.status, recovered.attempts, recovered.owner) == (queue, 2, None)
        assert recovered.lease_expires_at is None
        claimed_task = store.claim("w", lease_seconds=30)
        assert claimed_task is not None
        assert claimed_task.status == claimed
        last = store.fail(task.id, "w")
        # Attempts used up: to the failed state if the machine has one.
        assert (last.status, last.attempts) == (machine.failed or queue, 3)
        if machine.failed:
            assert store.retry(task.id).attempts == 0


def test_moves_with_several_events_say_which(tmp_path: Path) -> None:
    with TaskStore(tmp_path / "e.db", machine=larger()) as store:
        task = store.add("x")
        store.claim("w")
        bare = store.transition(task.id, "queued", actor="w")  # running -> queued: release
        assert (bare.attempts, store.history(task.id)[-1].to_state) == (0, "queued")
        store.claim("w")
        failed = store.transition(task.id, "queued", actor="w", event="fail")
        assert failed.attempts == 1
        store.claim("w")
        store.transition(task.id, "checking", actor="w")
        rejected = store.transition(task.id, "queued", actor="w")  # checking -> queued: reject
        assert rejected.attempts == 2
        with InvalidTransitionRaised("the move queued -> running is claim, not submit"):
            store.transition(task.id, "running", event="submit")
        with InvalidTransitionRaised("it can move to: running, cancelled"):
            store.transition(task.id, "shipped")


class InvalidTransitionRaised:
    def __init__(self, text: str) -> None:
        self.raises = pytest.raises(InvalidTransition, match=text)

    def __enter__(self) -> None:
        self.raises.__enter__()

    def __exit__(self, *exc: object) -> bool:
        return bool(self.raises.__exit__(*exc))  # type: ignore[arg-type]


# -- the machine lives in the file ---------------------------------------------------


def test_the_first_store_records_its_machine_and_later_opens_use_it(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    TaskStore(db, machine=three()).close()
    with TaskStore(db) as store:
        assert store.machine == three()
        assert store.add("x").status == "todo"
    # The same machine with its moves listed in another order is the same machine.
    reordered = StateMachine(
        {"done": [], "doing": ["todo", "done"], "todo": ["doing"]}, initial="todo"
    )
    TaskStore(db, machine=reordered).close()


def test_an_explicit_machine_that_differs_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    TaskStore(db, machine=three()).close()
    with unchanged(db), pytest.raises(MachineMismatch) as info:
        TaskStore(db, machine=StateMachine())
    message = str(info.value)
    assert message.startswith(f"{db} holds another state machine than the one given (")
    assert "states only in the first: doing, done, todo" in message
    assert "states only in the second: completed, failed, in_progress, pending, review" in message
    assert "open it without a machine to use the file's" in message
    assert info.value.path == str(db)


def test_a_second_process_sees_the_first_ones_machine(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with TaskStore(db, machine=larger()) as store:
        store.add("x")
        code = (
            "import sys, json; from minna_tasks import TaskStore\n"
            "s = TaskStore(sys.argv[1]); t = s.claim('other')\n"
            "print(json.dumps([s.machine.canonical(), t.status]))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(db)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        canonical, status = json.loads(out.stdout)
        assert canonical == larger().canonical()
        assert status == "running"
        assert store.get("t-1").owner == "other"


def test_a_file_from_0_1_opens_with_the_default_machine_and_keeps_its_data(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with TaskStore(db) as store:
        store.add("kept")
        store.claim("w")
    conn = sqlite3.connect(db)  # back to 0.1: no machine table, tasks component at version 1
    conn.execute("DROP TABLE task_machines")
    conn.execute("UPDATE schema_components SET version = 1 WHERE name = 'tasks'")
    conn.commit()
    conn.close()
    with TaskStore(db) as store:
        assert store.machine == StateMachine()
        task = store.get("t-1")
        assert (task.title, task.status, task.owner) == ("kept", "in_progress", "w")
        assert [h.to_state for h in store.history("t-1")] == ["pending", "in_progress"]
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT note FROM task_machines").fetchall()
    conn.close()
    assert rows == [("first opened",)]


def test_replace_machine_is_a_recorded_step_refused_while_it_would_strand_tasks(
    tmp_path: Path,
) -> None:
    db = tmp_path / "x.db"
    store = TaskStore(db)
    task = store.add("x")
    store.claim("w")
    with unchanged(db), pytest.raises(MachineInUse) as info:
        store.replace_machine(three())
    assert str(info.value) == (
        "cannot replace the state machine: tasks are in states the new one lacks: "
        "in_progress (1 task(s)); move them first"
    )
    store.release(task.id, "w")
    bigger = StateMachine(
        {
            **{k: list(v) for k, v in StateMachine().moves.items()},
            "pending": ["in_progress", "dropped"],
            "dropped": [],
        },
    )
    store.replace_machine(bigger, actor="admin", note="allow dropping")
    assert store.machine == bigger
    assert store.transition(task.id, "dropped").status == "dropped"
    store.close()
    with TaskStore(db) as again:
        assert again.machine == bigger
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT actor, note FROM task_machines ORDER BY id").fetchall()
    conn.close()
    assert rows == [(None, "first opened"), ("admin", "allow dropping")]


# -- export and import ---------------------------------------------------------------


def test_exports_carry_the_machine_and_imports_check_it(tmp_path: Path) -> None:
    src = tmp_path / "src.db"
    with TaskStore(src, machine=three()) as store:
        store.add("a")
        store.claim("w")
        jsonio.export_tasks(store, tmp_path / "out.json")
    document = json.loads((tmp_path / "out.json").read_text())
    assert StateMachine.from_dict(document["machine"]) == three()
    # An empty store takes the document's machine...
    with TaskStore(tmp_path / "new.db") as fresh:
        assert jsonio.import_tasks(fresh, tmp_path / "out.json").imported == 1
        assert fresh.machine == three()
        assert fresh.get("t-1").status == "doing"
    with TaskStore(tmp_path / "new.db") as reopened:
        assert reopened.machine == three()
    # ...a store with tasks under another machine refuses it, and writes nothing.
    busy = tmp_path / "busy.db"
    with TaskStore(busy) as other:
        other.add("mine")
    with TaskStore(busy) as other, unchanged(busy), pytest.raises(ImportFormatError) as info:
        jsonio.import_tasks(other, tmp_path / "out.json")
    assert str(info.value).startswith(
        "the file was exported with another state machine than this store's (states only in"
    )


def test_an_import_without_a_machine_is_checked_against_the_store(tmp_path: Path) -> None:
    with TaskStore(tmp_path / "d.db") as store:
        store.add("a")
        jsonio.export_tasks(store, tmp_path / "d.json")
    document = json.loads((tmp_path / "d.json").read_text())
    del document["machine"]  # as written by 0.1
    (tmp_path / "d.json").write_text(json.dumps(document))
    target = tmp_path / "t.db"
    with TaskStore(target, machine=three()) as store:
        store.add("keep")
    with TaskStore(target) as store, unchanged(target), pytest.raises(ImportFormatError) as info:
        jsonio.import_tasks(store, tmp_path / "d.json")
    assert "task t-1: status 'pending' is not a known state (todo, doing, done)" in str(info.value)


# -- the command line ------------------------------------------------------------------


def invoke(db: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--db", str(db), *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_cli_machine_show_set_and_diagram(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    assert invoke(db, "diagram")[1] == StateMachine().to_mermaid()
    assert not db.exists()  # drawing reads the file; it never creates one
    TaskStore(db, machine=three()).close()
    code, out, _ = invoke(db, "machine", "show")
    assert code == 0
    assert json.loads(out) == three().to_dict()
    assert invoke(db, "diagram")[1] == three().to_mermaid()
    assert "    doing --> done : accept\n" in invoke(db, "machine", "show", "--mermaid")[1]
    spec = tmp_path / "big.json"
    spec.write_text(
        json.dumps({"moves": LARGER, "initial": "queued", "failed": "broken", "done": "shipped"})
    )
    code, out, err = invoke(db, "machine", "set", str(spec), "--note", "grow")
    assert (code, err) == (0, "")
    states = "queued, running, checking, broken, shipped, cancelled, archived"
    assert out == f"{db}: state machine set ({states})\n"
    with TaskStore(db) as store:
        assert store.machine == larger()
        store.add("x")
        store.claim("w")
    (tmp_path / "three.json").write_text(json.dumps(three().to_dict()))
    with unchanged(db):
        code, out, err = invoke(db, "machine", "set", str(tmp_path / "three.json"))
    assert code == 1
    assert err == (
        "Error: cannot replace the state machine: tasks are in states the new one lacks: "
        "running (1 task(s)); move them first\n"
    )
    with unchanged(db):
        code, _, err = invoke(
            db, "machine", "set", "-", stdin='{"moves": {"a": ["b"], "b": []}, "initial": "a"}'
        )
    assert (code, err) == (
        1,
        "Error: no claimed state: name the state a claim moves a task to from 'a' "
        "with claimed=...\n",
    )


def test_run_subprocess_on_a_three_state_file(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    with TaskStore(db, machine=three()) as store:
        store.add_many(["a", "b"])
    out = subprocess.run(
        [str(SCRIPT), "--db", str(db), "run", "--verify", "true", "--", "echo", "made"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Ran 2 task(s) with 1 worker(s): 2 completed, 0 failed")
    with TaskStore(db) as store:
        assert [(t.status, t.result) for t in store.list()] == [("done", "made"), ("done", "made")]
        assert [h.to_state for h in store.history("t-1")] == ["todo", "doing", "done"]


# -- the MCP tools -------------------------------------------------------------------


@pytest.mark.parametrize("make", [three, larger], ids=["three", "larger"])
def test_mcp_tools_drive_a_custom_machine(tmp_path: Path, make: object) -> None:
    from mcp.client import Client

    from .test_mcp_server import run, value

    machine = make()  # type: ignore[operator]
    db = tmp_path / "mcp.db"
    TaskStore(db, machine=machine).close()
    store = TaskStore(db)  # as the server opens it: with the file's machine

    async def body(c: Client) -> dict[str, object]:
        out: dict[str, object] = {}
        value(await c.call_tool("add_task", {"title": "x", "max_attempts": 3}))
        out["claim"] = value(await c.call_tool("claim_task", {"worker": "w"}))
        out["failed"] = value(
            await c.call_tool(
                "transition_task",
                {"task_id": "t-1", "to_state": machine.initial, "actor": "w", "event": "fail"},
            )
        )
        value(await c.call_tool("claim_task", {"worker": "w"}))
        if machine.review is not None:
            value(
                await c.call_tool(
                    "transition_task",
                    {"task_id": "t-1", "to_state": machine.review, "actor": "w", "result": 7},
                )
            )
        out["done"] = value(
            await c.call_tool(
                "transition_task", {"task_id": "t-1", "to_state": machine.done, "actor": "w"}
            )
        )
        bad = await c.call_tool("transition_task", {"task_id": "t-1", "to_state": "review"})
        out["bad"] = bad.is_error
        return out

    try:
        out = run(store, body)
    finally:
        store.close()
    claim, failed, done = out["claim"], out["failed"], out["done"]
    assert isinstance(claim, dict)
    assert isinstance(failed, dict)
    assert isinstance(done, dict)
    assert (claim["status"], claim["owner"]) == (machine.claimed, "w")
    assert (failed["status"], failed["attempts"], failed["owner"]) == (machine.initial, 1, None)
    assert (done["status"], done["owner"]) == (machine.done, None)
    assert out["bad"] is True


def test_cli_move_names_the_event(tmp_path: Path) -> None:
    db = tmp_path / "ev.db"
    with TaskStore(db) as store:
        store.add("x")
        store.claim("alice")
    code, out, err = invoke(db, "move", "t-1", "pending", "--actor", "alice", "--event", "fail")
    assert (code, out, err) == (0, "t-1: in_progress -> pending\n", "")
    with TaskStore(db) as store:
        assert store.get("t-1").attempts == 1
        store.claim("alice")
    with unchanged(db):
        code, _, err = invoke(db, "move", "t-1", "pending", "--actor", "alice", "--event", "accept")
    assert (code, err) == (
        1,
        "Error: cannot move t-1 from in_progress to pending: "
        "the move in_progress -> pending is release or fail or expire, not accept\n",
    )


def test_a_0_1_file_with_tasks_refuses_a_machine_that_would_strand_them(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with TaskStore(db) as store:
        store.add("kept")
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE task_machines")
    conn.execute("UPDATE schema_components SET version = 1 WHERE name = 'tasks'")
    conn.commit()
    conn.close()
    with pytest.raises(MachineInUse, match=r"lacks: pending \(1 task\(s\)\)"):
        TaskStore(db, machine=three())
    with TaskStore(db) as store:  # nothing was recorded: the default machine still rules
        assert store.machine == StateMachine()


def test_file_machine_reads_without_writing(tmp_path: Path) -> None:
    """The machine is read through the engine, read-only: the file stays as it was, and
    a missing or empty file gives the default machine without being made a database."""
    from minna_tasks.store import file_machine

    db = tmp_path / "m.db"
    assert file_machine(str(db)) == StateMachine()
    assert not db.exists()
    db.touch()
    assert file_machine(str(db)) == StateMachine()
    assert db.stat().st_size == 0
    TaskStore(db, machine=three()).close()
    with unchanged(db):
        assert file_machine(str(db)) == three()
