"""The two ways to start the MCP server offer the same tool sets and say what --db takes."""

from __future__ import annotations

import subprocess
import sys

import click
from minna_tasks_cli.serve import mcp

from minna_tasks.mcp_server import TOOL_SETS


def test_cli_offers_the_tool_sets_the_server_defines() -> None:
    (tools,) = [p for p in mcp.params if p.name == "tools"]
    assert isinstance(tools.type, click.Choice)
    assert tuple(tools.type.choices) == TOOL_SETS


def test_module_help_mentions_postgres_urls() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "minna_tasks.mcp_server", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "postgresql:// URL" in " ".join(done.stdout.split())
