"""`minna-tasks demo`: a small queue run end to end, so a new user sees the whole cycle."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from minna_tasks import MinnaTasksError, defaults
from minna_tasks.engines import is_postgres_url

from .app import App, pass_app, table
from .run import Progress, RunConfig, run_workers

# The worker and the verifier are small Python scripts, so the demo needs no shell.
WORKER = r"""
import json, os, sys, time
payload = json.loads(os.environ["MINNA_TASK_PAYLOAD"]) or {}
attempt = int(os.environ["MINNA_TASK_ATTEMPT"])
time.sleep(payload.get("seconds", 0.05))
if payload.get("broken"):
    sys.exit(f"{os.environ['MINNA_TASK_TITLE']}: the service answered 503 (attempt {attempt})")
print(json.dumps({"task": os.environ["MINNA_TASK_ID"], "attempt": attempt,
                  "words": len(os.environ["MINNA_TASK_TITLE"].split())}))
"""

VERIFY = r"""
import json, os, sys
payload = json.loads(os.environ["MINNA_TASK_PAYLOAD"]) or {}
attempt = int(os.environ["MINNA_TASK_ATTEMPT"])
if payload.get("flaky") and attempt < 2:
    sys.exit(f"result of attempt {attempt} looks incomplete; try again")
result = json.loads(os.environ["MINNA_TASK_RESULT"])
sys.exit(0 if result["words"] > 0 else "empty result")
"""

TASKS: list[dict[str, Any]] = [
    {"title": "Fetch the quarterly report", "priority": 3},
    {"title": "Summarise the report in five bullet points", "priority": 2},
    {
        "title": "Check every link in the summary",
        "payload": {"flaky": True},
        "description": "Fails verification once, then passes.",
    },
    {
        "title": "Post the summary to the team channel",
        "max_attempts": 2,
        "payload": {"broken": True},
        "description": "The service is down: uses up its attempts.",
    },
    {"title": "File the report in the archive"},
]
# A small chain: (task, the task it waits for), as indexes into TASKS.
CHAIN = [(1, 0), (3, 1), (4, 0)]


@click.command()
@pass_app
def demo(app: App) -> None:
    """Build a small example queue in the --db file and run it with `run`."""
    store = app.store()
    if sum(store.stats().values()):
        raise MinnaTasksError(
            f"{store.path} already has tasks; run the demo on a fresh file, "
            "e.g. minna-tasks --db demo.db demo"
        )
    tasks = store.add_many(TASKS, actor="demo")
    for waits, on in CHAIN:
        store.depend(tasks[waits].id, tasks[on].id, actor="demo")
    click.echo(f"Added {len(tasks)} tasks to {store.path}; running them with one worker...")
    config = RunConfig(
        db=app.db,  # the location itself: store.path masks a URL's password
        command=[sys.executable, "-c", WORKER],
        verify=[sys.executable, "-c", VERIFY],
        lease=30,
        timeout=30,
        worker="demo-worker",
    )
    meter = Progress(store, sys.stderr.isatty())
    code = run_workers(config, store, 1, meter)
    meter.finish()
    if code:
        ctx = click.get_current_context()
        click.echo("Interrupted: run `minna-tasks run -- ...` to finish the queue.", err=True)
        ctx.exit(code)
    click.echo()
    final = store.list()
    table(
        ("id", "status", "attempts", "title"),
        [[t.id, t.status, f"{t.attempts}/{t.max_attempts}", t.title] for t in final],
    )
    counts = {k: v for k, v in store.stats().items() if v}
    click.echo("\n" + ", ".join(f"{v} {k}" for k, v in counts.items()))
    flaky = next(
        t.id for t, spec in zip(tasks, TASKS, strict=True) if spec.get("payload") == {"flaky": True}
    )
    broken = next(t.id for t in final if t.status == "failed")
    steps = demo_hints(store.path, app.db, tasks=(flaky, broken))
    click.echo("\nLook at what happened (each line runs as printed):")
    for command, why in steps:
        click.echo(f"  # {why}\n  {command}" if why else f"  {command}")


def demo_hints(db_path: str, db_option: str, tasks: tuple[str, str]) -> list[tuple[str, str]]:
    """The commands to look at the demo's file, runnable exactly as printed (no venv needed)."""
    flaky, broken = tasks
    db = shlex.quote(db_path)
    cli = _program("minna-tasks") + ("" if db_option == defaults.DB_PATH else f" --db {db}")
    steps = [
        (f"{cli} history {flaky}", "failed verification once, then passed"),
        (f"{cli} show {broken}", "used up its attempts: see its error"),
        (f"{cli} list --status failed", ""),
        (f"{cli} graph", "what waits for what, as a Mermaid flowchart"),
        (f"{cli} retry {broken}", "give it another go"),
    ]
    if is_postgres_url(db_path):  # Datasette and the file hints are for SQLite
        return [*steps, (f"psql {db} -c 'select * from tasks'", "the views, in psql")]
    meta = shlex.quote(str(Path(db_path).with_name("datasette.json")))
    steps += [
        (f"{cli} views --datasette-metadata {meta}", "titles and canned queries"),
        (f"{_program('datasette')} {db} -m {meta}", "browse the views (the dev extra)"),
        (f"{_program('sqlite-utils')} rows {db} tasks --table", ""),
    ]
    notebook = NOTEBOOK if NOTEBOOK.is_file() else None
    if notebook is not None:
        executed = Path(db_path).absolute().with_name("explore.ipynb")
        steps.append(
            (
                f"MINNA_DB={shlex.quote(str(Path(db_path).absolute()))} "
                f"{_program('jupyter')} execute {shlex.quote(_shown(notebook))} "
                f"--output {shlex.quote(str(executed.with_suffix('')))}",
                f"the plots, saved in {_shown(executed)} (the dev extra)",
            )
        )
    return steps


# The notebook lives in the repository (an editable install from a clone has it).
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "explore.ipynb"


def _program(name: str) -> str:
    """`name` when the shell finds this installation's copy of it, else its path."""
    mine = Path(sys.executable).with_name(name)
    found = shutil.which(name)
    if not mine.exists() or (found is not None and Path(found).resolve() == mine.resolve()):
        return name
    return shlex.quote(_shown(mine))


def _shown(path: Path) -> str:
    """A path relative to the current folder when it is under it, else absolute."""
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path.absolute())
