"""Defaults shared by the store, the loop, the CLI and the MCP server, defined once."""

from __future__ import annotations

# Where the memory file lives unless --db, MINNA_DB or MINNA_DB_PATH says otherwise.
DB_PATH = ".spine/minna.db"
# How long a claim (or a heartbeat) holds a task before recover() may take it back.
LEASE_SECONDS = 300.0
# Failed attempts before a task goes to the failed state.
MAX_ATTEMPTS = 3
# What an import does with a task whose id exists already.
ON_CONFLICT = ("error", "skip", "replace")
# What the MCP server can serve: every tool, the task tools only, or the memory tools only.
MCP_TOOL_SETS = ("all", "tasks", "memory")
