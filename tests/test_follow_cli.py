"""`run --follow`, `claim --wait` and `watch` as real `minna-tasks` processes on one file."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from minna_tasks_cli.main import cli as cli_app

from minna_tasks import TaskStore

from .conftest import unchanged
from .test_waiting import DEADLINE, until

CLI = str(Path(sys.executable).with_name("minna-tasks"))


def start(db: Path, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    """`minna-tasks --db DB ARGS` in its own process group."""
    return subprocess.Popen(
        [CLI, "--db", str(db), *args],
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        **kwargs,
    )


def cli(db: Path, *args: str) -> str:
    proc = start(db, *args)
    out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    return out


def interrupt(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Ctrl-C, then the rest of its output once it ended; a process that does not end
    is killed and reaped all the same (no leftover for the next test), and fails."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"{proc.args} did not end within {DEADLINE:g}s of SIGINT") from None


def stats(db: Path) -> dict[str, int]:
    with TaskStore(db) as store:
        return store.stats()


def test_run_follow_works_tasks_added_later_and_exits_0_on_sigterm(db_path: Path) -> None:
    cli(db_path, "init")
    run = start(db_path, "run", "--follow", "--", "echo done $MINNA_TASK_ID")
    try:
        ids = [cli(db_path, "add", f"job {i}").strip() for i in range(3)]
        until(lambda: stats(db_path)["completed"] == 3, what="three tasks completed")
        assert run.poll() is None  # still following an empty queue
    finally:
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=DEADLINE)
    assert run.returncode == 0, err
    assert "Ran 3 task(s)" in out
    with TaskStore(db_path) as store:
        assert [store.get(i).result for i in ids] == [f"done {i}" for i in ids]
        assert store.list(status=["in_progress", "review"]) == []


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_hands_back_the_task_in_hand(db_path: Path, tmp_path: Path, workers: str) -> None:
    cli(db_path, "init")
    ready = tmp_path / "ready"
    run = start(
        db_path,
        "run",
        "--follow",
        "--workers",
        workers,
        "--",
        f'touch "{ready}"; sleep 600',
    )
    try:
        task_id = cli(db_path, "add", "long job").strip()
        until(ready.exists, what="the command to start")
    finally:
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=DEADLINE)
    assert run.returncode == 0, err
    assert "Error" not in err
    with TaskStore(db_path) as store:
        task = store.get(task_id)
        history = store.history(task_id)
    assert (task.status, task.attempts, task.owner) == ("pending", 0, None)
    assert [h.to_state for h in history] == ["pending", "in_progress", "pending"]


def test_sigkill_in_the_middle_leaves_nothing_recover_cannot_return(
    db_path: Path, tmp_path: Path
) -> None:
    cli(db_path, "init")
    ready, pids = tmp_path / "ready", tmp_path / "pids"
    command = f'echo $$ >> "{pids}"; touch "{ready}"; exec sleep 600'
    run = start(db_path, "run", "--follow", "--workers", "2", "--", command)
    try:
        task_id = cli(db_path, "add", "doomed attempt").strip()
        cli(db_path, "add", "waiting")
        until(ready.exists, what="the command to start")
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.communicate(timeout=DEADLINE)
        # Each CMD runs in a session of its own, so the kill of run's group leaves them.
        for pid in pids.read_text().split() if pids.exists() else ():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    cli(db_path, "recover", "--now", later)
    with TaskStore(db_path) as store:
        assert store.list(status=["in_progress", "review"]) == []
        assert store.stats()["pending"] == 2
        assert store.get(task_id).attempts <= 1


def test_claim_wait_gets_a_task_added_by_another_process(db_path: Path) -> None:
    cli(db_path, "init")
    waiter = start(db_path, "claim", "--wait", "60", "--worker", "w", "--json")
    time.sleep(0.3)  # the task comes later; the wait works whether or not it started yet
    task_id = cli(db_path, "add", "for the waiter").strip()
    out, err = waiter.communicate(timeout=DEADLINE)
    assert waiter.returncode == 0, err
    claimed = json.loads(out)
    assert (claimed["id"], claimed["owner"], claimed["status"]) == (task_id, "w", "in_progress")


def test_claim_wait_times_out_with_nothing(db_path: Path) -> None:
    cli(db_path, "init")
    proc = start(db_path, "claim", "--wait", "0.2")
    out, err = proc.communicate(timeout=DEADLINE)
    assert (out, err) == ("", "No pending task.\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["claim", "--wait", "-1"], "Invalid value for '--wait': -1.0 is not in the range x>=0."),
        (["claim", "--wait", "soon"], "Invalid value for '--wait': 'soon' is not a valid float"),
        (["watch", "--since", "yesterday"], "not an ISO-8601 time: 'yesterday'"),
    ],
)
def test_bad_input_is_a_one_line_error_and_writes_nothing(
    db_path: Path, args: list[str], message: str
) -> None:
    with TaskStore(db_path) as store:
        store.add("pending still")
    with unchanged(db_path):
        result = CliRunner().invoke(cli_app, ["--db", str(db_path), *args])
    assert result.exit_code != 0
    assert result.stderr.startswith(f"Error: {message}")
    assert result.stderr.count("\n") == 1
    assert stats(db_path)["pending"] == 1


def test_watch_json_prints_each_change_by_other_processes_in_order(db_path: Path) -> None:
    cli(db_path, "init")
    since = datetime.now(UTC).isoformat()
    watch = start(db_path, "watch", "--json", "--since", since)
    try:
        first = cli(db_path, "add", "watched").strip()  # one process
        cli(db_path, "add", "second")  # another
        cli(db_path, "claim", "--worker", "w")  # a third
        cli(db_path, "move", first, "review", "--actor", "w")
        assert watch.stdout is not None
        lines = [watch.stdout.readline() for _ in range(4)]  # it is running: Ctrl-C now
    finally:
        rest, err = interrupt(watch)
    assert (watch.returncode, rest, err) == (0, "", "")
    changes = [json.loads(line) for line in lines]
    assert [(c["task_id"], c["from_state"], c["to_state"]) for c in changes] == [
        ("t-1", None, "pending"),
        ("t-2", None, "pending"),
        ("t-1", "pending", "in_progress"),
        ("t-1", "in_progress", "review"),
    ]
    cursors = [c["cursor"] for c in changes]
    assert cursors == sorted(cursors)
    # A cursor resumes right after its change; --task follows one task.
    resumed = start(db_path, "watch", "--json", "--since", str(cursors[1]), "--task", "t-1")
    try:
        assert resumed.stdout is not None
        again = [json.loads(resumed.stdout.readline()) for _ in range(2)]
    finally:
        interrupt(resumed)
    assert again == changes[2:]


def test_ctrl_c_ends_watch_even_when_started_with_sigint_ignored(db_path: Path) -> None:
    # A `&` job of a non-interactive shell starts with SIGINT ignored; Python then
    # raises no KeyboardInterrupt, yet `kill -INT` must still end the watch.
    with TaskStore(db_path) as store:
        store.add("one")
    ignoring = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", CLI]
    watch = subprocess.Popen(
        [*ignoring, "--db", str(db_path), "watch", "--since", "2000-01-01"],
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert watch.stdout is not None
        assert "t-1" in watch.stdout.readline()  # running, its handler in place
    finally:
        rest, err = interrupt(watch)
    assert (watch.returncode, rest, err) == (0, "", "")


def test_watch_ends_when_its_reader_goes_away(db_path: Path) -> None:
    with TaskStore(db_path) as store:
        store.add("one")
        store.add("two")
    watch = start(db_path, "watch", "--since", "2000-01-01")
    assert watch.stdout is not None
    line = watch.stdout.readline()
    assert "t-1" in line
    watch.stdout.close()  # like `| head -1`
    code = watch.wait(timeout=DEADLINE)
    assert watch.stderr is not None
    with watch.stderr:
        assert (code, watch.stderr.read()) == (0, "")
