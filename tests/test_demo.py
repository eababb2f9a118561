"""`minna-tasks demo` in an empty folder: the README's first command, end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from minna_tasks import TaskStore

SCRIPT = Path(sys.executable).with_name("minna-tasks")


def test_demo_in_an_empty_folder(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(SCRIPT), "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    # No progress display when piped; each failed attempt's error is said as it happens.
    assert [line.split(":")[1] for line in done.stderr.splitlines()] == [" t-3", " t-4", " t-4"]
    db = tmp_path / ".spine" / "minna.db"
    with TaskStore(db) as store:
        tasks = {t.title: t for t in store.list()}
        flaky = tasks["Check every link in the summary"]
        broken = tasks["Post the summary to the team channel"]
        flaky_steps = [s.to_state for s in store.history(flaky.id)]
        summary = tasks["Summarise the report in five bullet points"]
        assert summary.depends_on == (tasks["Fetch the quarterly report"].id,)
        assert broken.depends_on == (summary.id,)  # the demo's small chain
        assert store.stats() == {
            "pending": 0,
            "in_progress": 0,
            "review": 0,
            "failed": 1,
            "completed": 4,
        }
    assert flaky_steps == [
        "pending",
        "in_progress",
        "review",
        "pending",
        "in_progress",
        "review",
        "completed",
    ]
    assert (broken.status, broken.attempts) == ("failed", 2)
    assert "the service answered 503 (attempt 2)" in broken.error
    out = done.stdout
    assert "1 failed, 4 completed" in out
    script = Path(sys.executable).parent
    for hint in (
        f"{script}/minna-tasks history {flaky.id}",  # not on PATH: the hint names the script
        f"{script}/minna-tasks show {broken.id}",
        f"{script}/datasette .spine/minna.db",
        f"{script}/sqlite-utils rows .spine/minna.db tasks",
        "notebooks/explore.ipynb --output",
    ):
        assert hint in out
    # The hints run as printed, with no venv on PATH: the first one shows the history.
    commands = [line.strip() for line in out.splitlines() if line.startswith(f"  {script}")]
    shown = subprocess.run(
        commands[0],
        shell=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert shown.returncode == 0, shown.stderr
    assert "verification failed" in shown.stdout or "verify failed" in shown.stdout
    again = subprocess.run(
        [str(SCRIPT), "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert again.returncode == 1
    assert again.stderr.startswith("Error: .spine/minna.db already has tasks;")
