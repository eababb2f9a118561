"""`minna-tasks diagram`: the state machine as a Mermaid diagram."""

from __future__ import annotations

import click

from minna_tasks import StateMachine


@click.command()
@click.option("--markdown", is_flag=True, help="Wrap it in a ```mermaid block.")
def diagram(markdown: bool) -> None:
    """Print the state machine as a Mermaid diagram."""
    text = StateMachine().to_mermaid()
    click.echo(f"```mermaid\n{text}```\n" if markdown else text, nl=False)
