"""Entry point of the `minna-tasks` command line."""

from __future__ import annotations

import click


@click.group()
def cli() -> None:
    """Durable, auditable task state for AI agents."""


def main() -> None:
    cli()
