"""Entry point of the `minna-tasks` command line."""

from __future__ import annotations

# First of all, before the imports below take their tens of milliseconds: a password in
# a URL on the command line goes out of the process title (`ps`), which all users see.
from .proctitle import hide_passwords

hide_passwords()

import click  # noqa: E402

from minna_tasks import __version__  # noqa: E402
from minna_tasks.memory import DEFAULT_TIMEOUT  # noqa: E402

from .app import DEFAULT_DB, App, MinnaGroup  # noqa: E402

# Each command is imported when it is called (see MinnaGroup): name -> module:attribute.
COMMANDS = {
    "init": "minna_tasks_cli.tasks:init",
    "add": "minna_tasks_cli.tasks:add",
    "list": "minna_tasks_cli.tasks:list_",
    "show": "minna_tasks_cli.tasks:show",
    "move": "minna_tasks_cli.tasks:move",
    "claim": "minna_tasks_cli.tasks:claim",
    "heartbeat": "minna_tasks_cli.tasks:heartbeat",
    "release": "minna_tasks_cli.tasks:release",
    "fail": "minna_tasks_cli.tasks:fail",
    "recover": "minna_tasks_cli.tasks:recover",
    "retry": "minna_tasks_cli.tasks:retry",
    "history": "minna_tasks_cli.tasks:history",
    "stats": "minna_tasks_cli.tasks:stats",
    "views": "minna_tasks_cli.files:views",
    "export": "minna_tasks_cli.files:export_",
    "import": "minna_tasks_cli.files:import_",
    "machine": "minna_tasks_cli.machine:machine",
    "mcp": "minna_tasks_cli.serve:mcp",
    "diagram": "minna_tasks_cli.diagram:diagram",
    "memory": "minna_tasks_cli.memory:memory",
    "run": "minna_tasks_cli.run:run",
    "demo": "minna_tasks_cli.demo:demo",
    "depend": "minna_tasks_cli.deps:depend",
    "undepend": "minna_tasks_cli.deps:undepend",
    "graph": "minna_tasks_cli.deps:graph",
    "watch": "minna_tasks_cli.watch:watch",
}


@click.group(
    cls=MinnaGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "--db",
    metavar="PATH",
    help=(
        "The SQLite file holding the tasks (`~` expanded), or a postgresql:// URL. "
        "Default: $MINNA_DB, "
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


def main() -> None:
    cli(prog_name="minna-tasks")
