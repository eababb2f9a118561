"""The README's examples run, so they stay true: every Python block, and the
command-line blocks that work a queue (`run`, `run --follow` with `watch`, the
claim loop) or set up completion, which the walkthrough in tests/test_cli.py
leaves out because they run until stopped."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from minna_tasks import TaskStore

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples() -> None:
    assert BLOCKS


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_block_runs(
    code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    # Twice in the same folder: an example must be right wherever it runs, not only
    # on a fresh file.
    for _ in range(2):
        exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})


# -- the command-line blocks the walkthrough (tests/test_cli.py) leaves out ------------

SCRIPT = Path(sys.executable).with_name("minna-tasks")
COMMAND_LINE = README.read_text().split("\n## Command line", 1)[1].split("\n## ", 1)[0]
SHELL_BLOCKS = re.findall(r"```(?:bash|sh)\n(.*?)```", COMMAND_LINE, flags=re.S)
# `watch` follows until Ctrl-C: here it gets that Ctrl-C after a few seconds.
WRAPPER = """\
#!/bin/sh
if [ "$1" = watch ]; then exec timeout -s INT 5 "$MINNA_TASKS" "$@"; fi
exec "$MINNA_TASKS" "$@"
"""
# On exit the script waits for the queue to drain, then stops what it left running
# (a following worker, a claim loop): its own session only.
FINISH = """\
drained() {
    for state in pending in_progress review; do
        [ "$(minna-tasks list --status "$state" --json)" = "[]" ] || return 1
    done
}
finish() {
    until drained; do sleep 0.1; done
    trap '' TERM
    kill -TERM 0
    wait
}
trap finish EXIT
"""


def block(*words: str) -> str:
    (found,) = [b for b in SHELL_BLOCKS if all(w in b for w in words)]
    return found


def shell(script: str, cwd: Path, tasks: int) -> subprocess.CompletedProcess[str]:
    """`script` in bash in `cwd` (a session of its own), on a file with `tasks` pending
    tasks; `minna-tasks` is the venv's, with `watch` cut short."""
    bin_dir = cwd / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "minna-tasks").write_text(WRAPPER)
    (bin_dir / "minna-tasks").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINNA_")}
    env["PATH"] = f"{bin_dir}:{SCRIPT.parent}:{env['PATH']}"
    env["MINNA_TASKS"] = str(SCRIPT)
    with TaskStore(cwd / ".spine" / "minna.db") as store:
        store.add_many([f"summarise report number {i}" for i in range(1, tasks + 1)])
    return subprocess.run(
        ["bash", "-c", FINISH + script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        start_new_session=True,
    )


def test_readme_run_block_runs(tmp_path: Path) -> None:
    script = block("minna-tasks run --workers 4")
    (tmp_path / "summarise.py").write_text(
        "import json, os\n"
        "print(json.dumps({'words': len(os.environ['MINNA_TASK_TITLE'].split())}))\n"
    )
    done = shell(script, tmp_path, 6)
    assert done.returncode == 0, done.stderr
    with TaskStore(tmp_path / ".spine" / "minna.db") as store:
        tasks = store.list()
        assert [t.status for t in tasks] == ["completed"] * 6
        assert {json.dumps(t.result) for t in tasks} == {'{"words": 4}'}
    assert "6 completed, 0 failed, 0 back to pending" in done.stdout + done.stderr


def test_readme_follow_and_watch_block_runs(tmp_path: Path) -> None:
    script = block("run --follow", "minna-tasks watch")
    work = tmp_path / "work.sh"
    work.write_text('#!/bin/sh\necho "{\\"done\\": \\"$MINNA_TASK_ID\\"}"\n')
    work.chmod(0o755)
    done = shell(script, tmp_path, 7)
    with TaskStore(tmp_path / ".spine" / "minna.db") as store:
        assert [t.status for t in store.list()] == ["completed"] * 7
        assert store.get("t-7").result == {"done": "t-7"}
    # `watch --json --task t-7 --since ...` printed t-7's changes since then, oldest first.
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines
    assert {line["task_id"] for line in lines} == {"t-7"}
    assert lines[0]["to_state"] == "pending"


def test_readme_claim_loop_runs(tmp_path: Path) -> None:
    """The `sh` claim loop works the queue; it waits for more forever, so it is stopped
    (as its reader would) once the queue is drained."""
    script = block("claim --worker", "--wait 60")
    (tmp_path / "work.sh").write_text('#!/bin/sh\ntest -n "$1"\n')
    (tmp_path / "work.sh").chmod(0o755)
    done = shell(f"({script}) &", tmp_path, 3)
    assert done.returncode == 0, done.stderr
    with TaskStore(tmp_path / ".spine" / "minna.db") as store:
        assert [t.status for t in store.list()] == ["completed"] * 3


def test_readme_completion_block_runs(tmp_path: Path) -> None:
    script = block("_MINNA_TASKS_COMPLETE=bash_source")
    bash_line, *other_shells = script.strip().splitlines()
    done = shell(bash_line + "\ncomplete -p minna-tasks", tmp_path, 0)
    assert done.returncode == 0, done.stderr
    assert "minna-tasks" in done.stdout  # a completion is registered for the command
    for line in other_shells:  # zsh and fish: the script the line loads
        command = line.split("#")[0].replace("| source", "").replace("eval ", "")
        source = shell(command.strip().strip('"').strip("$()"), tmp_path, 0)
        assert source.returncode == 0, source.stderr
        assert "minna-tasks" in source.stdout
