"""`minna-tasks machine`: show the state machine the file holds, or replace it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from minna_tasks import StateMachine
from minna_tasks.store import file_machine

from .app import App, MinnaGroup, default_worker, emit_json, pass_app


@click.group(cls=MinnaGroup)
def machine() -> None:
    """The state machine the file holds: every process and front obeys it."""


@machine.command(name="show")
@click.option("--mermaid", is_flag=True, help="Print a Mermaid diagram instead of JSON.")
@pass_app
def machine_show(app: App, mermaid: bool) -> None:
    """Print the file's state machine as JSON (states, roles, events); the file is only read."""
    current = file_machine(app.db)
    if mermaid:
        click.echo(current.to_mermaid(), nl=False)
    else:
        emit_json(current.to_dict())


@machine.command(name="set")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--actor", default=default_worker, help="Who replaces it (kept in the file).")
@click.option("--note", help="Why (kept in the file).")
@pass_app
def machine_set(app: App, path: Path, actor: str, note: str | None) -> None:
    """Replace the file's state machine with the one in a JSON file (`-` for stdin).

    The JSON is what `machine show` prints, or {"moves": {state: [targets]},
    "initial": ..., and roles}. Refused while a task is in a state the new machine
    lacks.
    """
    text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except ValueError as e:
        raise click.ClickException(f"{path} is not valid JSON ({e})") from None
    new = StateMachine.from_dict(data)
    app.store().replace_machine(new, actor=actor, note=note)
    click.echo(f"{app.db}: state machine set ({', '.join(new.states)})")


COMMANDS = (machine,)
