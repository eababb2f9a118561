"""`minna-tasks run`: the worker loop with real shell commands on a real file."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from minna_tasks_cli.main import cli

from minna_tasks import TaskStore

SCRIPT = Path(sys.executable).with_name("minna-tasks")

ECHO_ENV = (
    'printf \'{"id": "%s", "title": "%s", "payload": %s, "attempt": %s}\' '
    '"$MINNA_TASK_ID" "$MINNA_TASK_TITLE" "$MINNA_TASK_PAYLOAD" "$MINNA_TASK_ATTEMPT"'
)


def run(db: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", str(db), "run", *args])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "run.db"


def test_commands_see_the_task_and_their_output_is_the_result(db: Path) -> None:
    with TaskStore(db) as store:
        store.add("first", payload={"n": 1})
        store.add("second")
    result = run(db, "--", "sh", "-c", ECHO_ENV)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        f"Ran 2 task(s) with 1 worker(s): 2 completed, 0 failed, 0 back to pending "
        f"(0 failed attempt(s)); 0 pending in {db}\n"
    )
    assert result.stderr == ""  # no progress display when not on a terminal
    with TaskStore(db) as store:
        first, second = store.list()
    assert first.status == "completed"
    # Output that parses as JSON is stored as that value, not as a string holding JSON.
    assert first.result == {
        "id": "t-1",
        "title": "first",
        "payload": {"n": 1},
        "attempt": 1,
    }
    assert second.result["payload"] is None


def test_a_failing_command_uses_up_attempts_and_exits_1(db: Path) -> None:
    with TaskStore(db) as store:
        store.add("good")
        store.add("bad", max_attempts=2)
    script = 'if [ "$MINNA_TASK_TITLE" = bad ]; then echo "no luck" >&2; exit 3; fi; echo fine'
    result = run(db, script)  # one argument: run through the shell
    assert result.exit_code == 1
    # Every task touched is in exactly one count: 1 + 1 + 0 == 2.
    assert result.stdout.startswith(
        "Ran 2 task(s) with 1 worker(s): 1 completed, 1 failed, 0 back to pending "
        "(2 failed attempt(s)); 0 pending in "
    )
    # Each failed attempt's error is on stderr as it happens.
    assert result.stderr.splitlines() == [
        "run: t-2: attempt 1 of 2 failed: CommandFailed: command exited with code 3: no luck",
        "run: t-2: attempt 2 of 2 failed: CommandFailed: command exited with code 3: no luck",
    ]
    with TaskStore(db) as store:
        good, bad = store.list()
        steps = [(s.to_state, s.note) for s in store.history("t-2")]
    assert (good.status, good.result) == ("completed", "fine")  # not JSON: stored as text
    assert (bad.status, bad.attempts) == ("failed", 2)
    assert bad.error == "CommandFailed: command exited with code 3: no luck"
    assert steps == [
        ("pending", "created"),
        ("in_progress", "claimed"),
        ("pending", "execute failed"),
        ("in_progress", "claimed"),
        ("failed", "execute failed; attempts used up (2/2)"),
    ]


def test_verify_command_decides_completed(db: Path) -> None:
    with TaskStore(db) as store:
        store.add("flaky")
    verify = (
        '[ "$MINNA_TASK_RESULT" = "out $MINNA_TASK_ATTEMPT" ] && [ "$MINNA_TASK_ATTEMPT" -ge 2 ]'
        ' || { echo "attempt $MINNA_TASK_ATTEMPT rejected" >&2; exit 1; }'
    )
    result = run(db, "--verify", verify, "--", "sh", "-c", 'echo "out $MINNA_TASK_ATTEMPT"')
    assert result.exit_code == 0, result.stderr
    with TaskStore(db) as store:
        task = store.get("t-1")
        steps = [(s.to_state, s.note) for s in store.history("t-1")]
    assert (task.status, task.attempts, task.result) == ("completed", 1, "out 2")
    assert task.error == "CommandFailed: verification exited with code 1: attempt 1 rejected"
    assert steps[1:] == [
        ("in_progress", "claimed"),
        ("review", "executed"),
        ("pending", "verify failed"),
        ("in_progress", "claimed"),
        ("review", "executed"),
        ("completed", "verified"),
    ]


def test_timeout_kills_a_slow_command(db: Path, tmp_path: Path) -> None:
    with TaskStore(db) as store:
        store.add("slow", max_attempts=1)
    marker = tmp_path / "finished"
    result = run(db, "--timeout", "0.5", "--", "sh", "-c", f"sleep 30; touch {marker}")
    assert result.exit_code == 1
    with TaskStore(db) as store:
        task = store.get("t-1")
    assert task.status == "failed"
    assert task.error == "CommandFailed: command timed out after 0.5s and was killed"
    assert not marker.exists()


def test_max_tasks_and_progress(db: Path) -> None:
    with TaskStore(db) as store:
        store.add_many(["a", "b", "c"])
    result = run(db, "--max-tasks", "2", "--progress", "--", "true")
    assert result.exit_code == 0
    assert "run: 2 completed, 0 failed, 0 failed attempt(s), 0 in hand" in result.stderr
    assert result.stdout.startswith("Ran 2 task(s) with 1 worker(s): 2 completed, 0 failed, ")
    assert result.stdout.endswith(f"; 1 pending in {db}\n")
    with TaskStore(db) as store:
        assert store.stats()["pending"] == 1
        assert store.stats()["completed"] == 2


def _script_run(db: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(SCRIPT), "--db", str(db), "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_three_workers_execute_each_task_exactly_once(db: Path, tmp_path: Path) -> None:
    with TaskStore(db) as store:
        store.add_many([f"task {i}" for i in range(200)])
    log = tmp_path / "log"
    proc = _script_run(
        db, "--workers", "3", "--", "sh", "-c", f'echo "$MINNA_TASK_ID $MINNA_WORKER" >> {log}'
    )
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert out.startswith("Ran 200 task(s) with 3 worker(s): 200 completed, 0 failed")
    lines = log.read_text().split("\n")[:-1]
    ids = [line.split()[0] for line in lines]
    assert sorted(ids) == sorted(f"t-{i}" for i in range(1, 201))
    workers = {line.split()[1] for line in lines}
    assert len(workers) == 3  # three distinct processes took part
    with TaskStore(db) as store:
        assert store.stats()["completed"] == 200
        claims = [
            s for t in store.list() for s in store.history(t.id) if s.to_state == "in_progress"
        ]
    assert len(claims) == 200


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie is dead, only not yet reaped


@pytest.mark.parametrize("workers", [1, 2])
def test_sigint_releases_the_task_in_hand(db: Path, tmp_path: Path, workers: int) -> None:
    with TaskStore(db) as store:
        store.add_many(["one", "two", "three"])
    pids = tmp_path / "pids"
    proc = _script_run(
        db, "--workers", str(workers), "--", "sh", "-c", f"echo $$ >> {pids}; exec sleep 60"
    )
    with TaskStore(db) as store:
        deadline = time.monotonic() + 60
        while (
            len(store.list(status="in_progress")) < workers
            or not pids.exists()
            or len(pids.read_text().split()) < workers
        ):
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        handed_back = sorted(t.id for t in store.list() if len(store.history(t.id)) > 1)
        assert err.endswith(f"Interrupted; handed back to pending: {', '.join(handed_back)}.\n")
        assert f"{workers} back to pending (0 failed attempt(s))" in out
        assert store.stats()["pending"] == 3
        held = [t for t in store.list() if t.attempts or t.owner]
        released = [store.history(t.id)[-1] for t in store.list() if len(store.history(t.id)) > 1]
    assert held == []
    assert len(released) == workers
    assert {(s.from_state, s.to_state, s.note) for s in released} == {
        ("in_progress", "pending", "interrupted")
    }
    assert not any(_alive(int(p)) for p in pids.read_text().split())
