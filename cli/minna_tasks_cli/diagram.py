"""`minna-tasks diagram`: the file's state machine as a Mermaid diagram."""

from __future__ import annotations

import click

from minna_tasks.store import file_machine

from .app import App, pass_app


@click.command()
@click.option("--markdown", is_flag=True, help="Wrap it in a ```mermaid block.")
@pass_app
def diagram(app: App, markdown: bool) -> None:
    """Print the file's state machine as a Mermaid diagram (the file is only read)."""
    text = file_machine(app.db).to_mermaid()
    click.echo(f"```mermaid\n{text}```\n" if markdown else text, nl=False)
