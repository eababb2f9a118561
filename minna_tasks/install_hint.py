"""The install command that works for this installation (no index has minna-tasks)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

MCP_REQUIREMENT = "mcp>=2,<3"
POSTGRES_REQUIREMENT = "psycopg[binary]>=3.2"


def install_hint(extra: str, requirement: str) -> str:
    """A command that installs the extra `extra` into the Python running us.

    From a checkout (an editable install) it reinstalls the checkout with the extra;
    otherwise it installs `requirement`, what the extra pins, by itself.
    """
    python = shlex.quote(sys.executable)
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file():
        return f"{python} -m pip install -e {shlex.quote(f'{root}[{extra}]')}"
    return f"{python} -m pip install {shlex.quote(requirement)}"


def mcp_install_hint() -> str:
    """A command that installs the `mcp` extra (the MCP SDK)."""
    return install_hint("mcp", MCP_REQUIREMENT)


def postgres_install_hint() -> str:
    """A command that installs the `postgres` extra (psycopg)."""
    return install_hint("postgres", POSTGRES_REQUIREMENT)
