"""Entry point of the `minna-tasks` command line."""

from __future__ import annotations

import click

from minna_tasks import __version__

from . import files, machine, tasks
from .app import DEFAULT_DB, App, MinnaGroup
from .demo import demo
from .diagram import diagram
from .memory import memory
from .run import run
from .serve import mcp


@click.group(cls=MinnaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    default=DEFAULT_DB,
    envvar="MINNA_DB",
    show_default=True,
    show_envvar=True,
    metavar="PATH",
    help="The SQLite file holding the tasks.",
)
@click.version_option(__version__, prog_name="minna-tasks")
@click.pass_context
def cli(ctx: click.Context, db: str) -> None:
    """Durable, auditable task state for AI agents, on one SQLite file.

    Start with `minna-tasks demo`, or `minna-tasks add "a task"` and
    `minna-tasks list`.
    """
    app = App(db)
    ctx.obj = app
    ctx.call_on_close(app.close)


for command in (
    *tasks.COMMANDS,
    *files.COMMANDS,
    *machine.COMMANDS,
    mcp,
    diagram,
    memory,
    run,
    demo,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="minna-tasks")
