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
    assert done.stderr == ""  # no progress display when piped
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
    for hint in (
        f"minna-tasks history {flaky.id}",
        f"minna-tasks show {broken.id}",
        "datasette .spine/minna.db",
        "sqlite-utils rows .spine/minna.db tasks",
        "notebooks/",
    ):
        assert hint in out
    again = subprocess.run(
        [str(SCRIPT), "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert again.returncode == 1
    assert again.stderr.startswith("Error: .spine/minna.db already has tasks;")
