"""Commands around the file: views, JSON export/import, the MCP server, the diagram."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from minna_tasks import defaults, jsonio
from minna_tasks.store import file_machine

from .app import App, MinnaGroup, emit_json, json_option, pass_app, table


def _bar_wanted() -> bool:
    return sys.stderr.isatty()


@click.command()
@click.option(
    "--datasette-metadata",
    "metadata",
    metavar="PATH",
    help="Also write a Datasette metadata file (titles, descriptions, queries).",
)
@pass_app
def views(app: App, metadata: str | None) -> None:
    """Create (or update) the SQL views and list them."""
    from minna_tasks import views as views_module

    store = app.store()
    views_module.ensure_views(store.memory)
    for name in views_module.VIEWS:
        click.echo(name)
    if metadata is not None:
        views_module.write_datasette_metadata(metadata, store.path)
        click.echo(f"Wrote {metadata}; browse with: datasette {store.path} -m {metadata}", err=True)


@click.command(name="export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def export_(app: App, path: Path) -> None:
    """Write every task with its full history to a JSON file (atomically)."""
    store = app.store(create=False)
    total = sum(store.stats().values())
    with click.progressbar(
        length=total, label="Exporting", file=sys.stderr, hidden=not _bar_wanted()
    ) as bar:
        count = jsonio.export_tasks(store, path, on_progress=bar.update)
    click.echo(f"Exported {count} task(s) to {path}")


@click.command(name="import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--on-conflict",
    type=click.Choice(defaults.ON_CONFLICT),
    default="error",
    show_default=True,
    help="What to do with tasks whose id already exists.",
)
@pass_app
def import_(app: App, path: Path, on_conflict: str) -> None:
    """Import tasks with their history from a JSON file: all of them or none."""
    # Validate the whole file before the database is even opened: a bad file changes nothing.
    machine, records = jsonio.read_export(path, file_machine(app.db))
    store = app.store()
    with click.progressbar(
        length=len(records), label="Importing", file=sys.stderr, hidden=not _bar_wanted()
    ) as bar:
        result = jsonio.restore_records(
            store, records, on_conflict, on_progress=bar.update, machine=machine
        )
    skipped = f" ({result.skipped} skipped: id exists)" if result.skipped else ""
    click.echo(f"Imported {result.imported} task(s) from {path}{skipped}")


@click.command()
@pass_app
def mcp(app: App) -> None:
    """Serve the tasks to AI agents over MCP (stdio)."""
    try:
        from minna_tasks.mcp_server import serve
    except ImportError as e:
        raise click.ClickException(f"the MCP server is not available: {e}") from None
    serve(app.db)


@click.command()
@click.option("--markdown", is_flag=True, help="Wrap it in a ```mermaid block.")
@pass_app
def diagram(app: App, markdown: bool) -> None:
    """Print the file's state machine as a Mermaid diagram (the file is only read)."""
    text = file_machine(app.db).to_mermaid()
    click.echo(f"```mermaid\n{text}```\n" if markdown else text, nl=False)


# -- the memory group ---------------------------------------------------------


@click.group(cls=MinnaGroup)
def memory() -> None:
    """The Minna memory underneath: store, recall and search facts, relate entities."""


@memory.command(name="store")
@click.argument("entity")
@click.argument("attribute")
@click.argument("value")
@click.option("--source", default="cli", show_default=True, help="Where the fact came from.")
@click.option("--confidence", type=click.FloatRange(0, 1), default=1.0, show_default=True)
@click.option("--context", help="Free text kept with the fact.")
@pass_app
def memory_store(
    app: App,
    entity: str,
    attribute: str,
    value: str,
    source: str,
    confidence: float,
    context: str | None,
) -> None:
    """Store a fact (a new value never erases the old one) and print its id.

    A task's own fields (status, owner, ...) are refused: they change only through
    the task commands, which check the state machine.
    """
    click.echo(
        app.store().remember(
            entity, attribute, value, source=source, confidence=confidence, context=context
        )
    )


MEMORY_COLUMNS = ("id", "entity", "attribute", "value", "source", "confidence", "created_at")


@memory.command(name="recall")
@click.option("--entity", help="Only facts about this entity.")
@click.option("--attribute", help="Only this attribute.")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--decay", is_flag=True, help="Show confidence decayed by age.")
@json_option
@pass_app
def memory_recall(
    app: App, entity: str | None, attribute: str | None, limit: int, decay: bool, as_json: bool
) -> None:
    """Recall facts, newest first."""
    rows = app.store(create=False).memory.recall(
        entity=entity, attribute=attribute, limit=limit, include_decay=decay
    )
    _rows(rows, as_json)


@memory.command(name="search")
@click.argument("query")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True)
@json_option
@pass_app
def memory_search(app: App, query: str, limit: int, as_json: bool) -> None:
    """Full-text search over entities, attributes and values."""
    _rows(app.store(create=False).memory.search(query, limit=limit), as_json)


@memory.command(name="relate")
@click.argument("from_entity")
@click.argument("to_entity")
@click.argument("rel_type")
@pass_app
def memory_relate(app: App, from_entity: str, to_entity: str, rel_type: str) -> None:
    """Record a typed relation between two entities and print its id."""
    click.echo(app.store().memory.relate(from_entity, to_entity, rel_type))


def _rows(rows: list[dict[str, object]], as_json: bool) -> None:
    if as_json:
        emit_json(rows)
    else:
        table(MEMORY_COLUMNS, [[r.get(c) for c in MEMORY_COLUMNS] for r in rows])


COMMANDS = (views, export_, import_, mcp, diagram, memory)
