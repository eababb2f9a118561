"""The install command that works for this installation (no index has minna-tasks)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

MCP_REQUIREMENT = "mcp>=2,<3"


def mcp_install_hint() -> str:
    """A command that installs the `mcp` extra into the Python running us.

    From a checkout (an editable install) it reinstalls the checkout with the extra;
    otherwise it installs the pinned SDK itself.
    """
    python = shlex.quote(sys.executable)
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file():
        return f"{python} -m pip install -e {shlex.quote(f'{root}[mcp]')}"
    return f"{python} -m pip install {shlex.quote(MCP_REQUIREMENT)}"
