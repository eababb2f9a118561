"""Which file a front works on: one rule for the CLI, the MCP server and the notebooks."""

from __future__ import annotations

import os

from .defaults import DB_PATH as DEFAULT_PATH
from .engines import is_postgres_url

# In order of precedence after an explicit --db; MINNA_DB_PATH is the Minna server's name.
ENV_VARS = ("MINNA_DB", "MINNA_DB_PATH")


def resolve_db(given: str | os.PathLike[str] | None = None) -> str:
    """`given` (e.g. --db), else $MINNA_DB, else $MINNA_DB_PATH, else .spine/minna.db; `~` expanded.

    A `postgresql://` style URL is returned as it is.
    """
    text = os.fspath(given) if given is not None and os.fspath(given) != "" else None
    if text is None:
        text = next((os.environ[v] for v in ENV_VARS if os.environ.get(v)), DEFAULT_PATH)
    if is_postgres_url(text):
        return text
    return os.path.expanduser(text)
