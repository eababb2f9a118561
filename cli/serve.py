"""`minna-tasks mcp`: serve the file to AI agents over MCP."""

from __future__ import annotations

import click

from .app import App, pass_app


@click.command()
@pass_app
def mcp(app: App) -> None:
    """Serve the tasks to AI agents over MCP (stdio)."""
    try:
        from minna_tasks.mcp_server import serve
    except ImportError as e:
        raise click.ClickException(f"the MCP server is not available: {e}") from None
    serve(app.db)
