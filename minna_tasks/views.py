"""sqlite-utils views that make the file readable in Datasette, Jupyter and sqlite3.

They read the `task_current` projection (kept by triggers), not the whole
history, so they stay fast and stay right when other tools append triples.
The Datasette metadata (titles, descriptions, canned queries) ships beside
this module as `datasette.json`.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .engines import is_postgres_url
from .engines.base import Connected
from .engines.task_views import spelled
from .errors import StoreError

# SQLite's spelling of the expressions the engines write differently (see
# engines/task_views.py, where the views are defined once).
SQLITE_SPELLING = {
    "status_text": "m.value",
    "seconds_in_previous_state": (
        "round((julianday(m.created_at) - julianday(lag(m.created_at) OVER w)) * 86400.0, 3)"
    ),
    "seconds_overdue": "round((julianday('now') - julianday(lease_expires_at)) * 86400.0, 3)",
    "lease_overdue": "lease_expires_at < strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')",
}
VIEWS: dict[str, str] = spelled(SQLITE_SPELLING)

METADATA_RESOURCE = "datasette.json"
DEFAULT_DATABASE = "minna"


def ensure_views(memory: Connected) -> None:
    """Create or update the views with sqlite-utils, idempotently.

    Called by TaskStore on every writable open, so it must be cheap: when the
    views are current it runs one read of `sqlite_master` and writes nothing.
    """
    if _stale(memory.connection):
        # Several processes may open the file at once: BEGIN IMMEDIATE serialises
        # them, and create_view(replace=True) re-reads the schema under the lock,
        # leaving views that another process just made current untouched.
        import sqlite_utils  # only here: it imports pandas when installed (slow to start)

        db = sqlite_utils.Database(
            memory.connection, recursive_triggers=False, execute_plugins=False
        )
        with memory.transaction():
            for name, sql in VIEWS.items():
                db.create_view(name, sql, replace=True)


def view_sql(name: str) -> str:
    """The `CREATE VIEW` statement of one of our views, exactly as SQLite keeps it."""
    return f"CREATE VIEW {_quote_identifier(name)} AS {VIEWS[name]}"


def _quote_identifier(name: str) -> str:
    """As sqlite_utils.db.quote_identifier quotes it (not imported: see ensure_views)."""
    return '"' + name.replace('"', '""') + '"'


def _stale(conn: sqlite3.Connection) -> bool:
    """True when a view is missing or differs from this version's SQL."""
    placeholders = ", ".join("?" * len(VIEWS))
    found = dict(
        conn.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'view' AND name IN ({placeholders})",
            list(VIEWS),
        ).fetchall()
    )
    return any(found.get(name) != view_sql(name) for name in VIEWS)


def datasette_metadata(database: str | os.PathLike[str] = DEFAULT_DATABASE) -> dict[str, Any]:
    """The Datasette metadata (titles, descriptions, canned queries) for one database.

    Datasette names a database after its file's stem, so `database` may be the
    file path (`.spine/minna.db`) or that name (`minna`).
    """
    from importlib import resources  # here, not at import: every command opens a store

    text = resources.files(__package__).joinpath(METADATA_RESOURCE).read_text("utf-8")
    meta: dict[str, Any] = json.loads(text)
    given = os.fspath(database)
    name = Path(given).stem or DEFAULT_DATABASE
    entry = meta["databases"].pop(DEFAULT_DATABASE)
    served = f"The minna-tasks file {given}." if given != name else "A minna-tasks file."
    entry["description"] = f"{served} {entry['description']}"
    entry["description_html"] = _contents_html(name, entry)
    meta["databases"] = {name: entry}
    from .engines.sqlite.projection import AS_OF_SQL  # the fields rule (engines/task_schema.py)

    entry["queries"]["tasks_as_of"]["sql"] = AS_OF_SQL
    return meta


def _contents_html(name: str, entry: dict[str, Any]) -> str:
    """The database page's opening: the task views first, then the memory tables under them.

    Datasette lists tables before views, alphabetically; this puts the tasks first.
    """
    import html  # here, not at import: every command opens a store, few serve Datasette

    tables: dict[str, Any] = entry["tables"]

    def link(table: str) -> str:
        title = html.escape(tables.get(table, {}).get("title") or table)
        return f'<a href="/{quote(name)}/{quote(table)}">{title}</a> (<code>{table}</code>)'

    def items(names: list[str]) -> str:
        return "".join(
            f"<li>{link(t)}: {html.escape(tables.get(t, {}).get('description', ''))}</li>"
            for t in names
        )

    memory = [t for t in tables if t not in VIEWS]
    return (
        f"<p>{html.escape(entry['description'])}</p>"
        f"<p><strong>Task views</strong>, one row per task or status change:</p>"
        f"<ul>{items(list(VIEWS))}</ul>"
        f"<p><strong>The Minna memory tables</strong> underneath (every triple ever written):</p>"
        f"<ul>{items(memory)}</ul>"
    )


def write_datasette_metadata(
    path: str | os.PathLike[str], database: str | os.PathLike[str] = DEFAULT_DATABASE
) -> Path:
    """Write the metadata file to pass to `datasette FILE -m PATH`; returns its path.

    Written atomically (temp file, then rename), so a reader never sees half of it.
    """
    if is_postgres_url(os.fspath(database)):
        raise StoreError(
            f"Datasette reads SQLite files only; {database} is a PostgreSQL database "
            "(its views are there for psql and pandas)",
            os.fspath(database),
        )
    text = json.dumps(datasette_metadata(database), indent=2, ensure_ascii=False) + "\n"
    from .atomic import write_atomically

    write_atomically(path, lambda out: out.write(text))
    return Path(path)
