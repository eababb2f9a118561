"""Entry point of the `minna-tasks` command line."""

from __future__ import annotations

import click

from minna_tasks import __version__
from minna_tasks.memory import DEFAULT_PATH as DEFAULT_DB
from minna_tasks.memory import DEFAULT_TIMEOUT

from . import files, tasks
from .app import App, MinnaGroup
from .demo import demo
from .run import run


@click.group(cls=MinnaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    metavar="PATH",
    help=(
        "The SQLite file holding the tasks (`~` expanded). Default: $MINNA_DB, "
        f"else $MINNA_DB_PATH, else {DEFAULT_DB}."
    ),
)
@click.option(
    "--busy-timeout",
    type=click.FloatRange(min=0),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for another process's write lock (said on stderr after 1s).",
)
@click.version_option(__version__, prog_name="minna-tasks")
@click.pass_context
def cli(ctx: click.Context, db: str | None, busy_timeout: float) -> None:
    """Durable, auditable task state for AI agents, on one SQLite file.

    Start with `minna-tasks demo`, or `minna-tasks add "a task"` and
    `minna-tasks list`.
    """
    app = App(db, busy_timeout)
    ctx.obj = app
    ctx.call_on_close(app.close)


for command in (*tasks.COMMANDS, *files.COMMANDS, run, demo):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="minna-tasks")
