"""`minna-tasks mcp`: serve the file to AI agents over MCP."""

from __future__ import annotations

import click

from minna_tasks.defaults import MCP_TOOL_SETS

from .app import App, pass_app


@click.command()
@click.option(
    "--tools",
    type=click.Choice(MCP_TOOL_SETS),
    default="all",
    show_default=True,
    help="Which tools to serve: tasks (the task tools and resources), memory (exactly the "
    "16 Minna memory tools: a drop-in Minna memory server), or all of them.",
)
@pass_app
def mcp(app: App, tools: str) -> None:
    """Serve the tasks and the Minna memory to AI agents over MCP (stdio)."""
    # mcp_stdio imports no SDK: it answers `initialize` while the SDK loads.
    from minna_tasks.mcp_stdio import serve

    try:
        serve(app.db, tools, explicit=app.db_given)
    except ImportError as e:
        raise click.ClickException(f"the MCP server is not available: {e}") from None
