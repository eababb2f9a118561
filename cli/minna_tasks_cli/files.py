"""Commands around the file: views and JSON export/import."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from minna_tasks import defaults, jsonio
from minna_tasks.store import file_machine

from .app import App, pass_app


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

    store = app.store()  # a writable open makes the views current
    for name in views_module.VIEWS:
        click.echo(name)
    if metadata is not None:
        views_module.write_datasette_metadata(metadata, store.path)
        click.echo(f"Wrote {metadata}; browse with: datasette {store.path} -m {metadata}", err=True)


@click.command(name="export")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@pass_app
def export_(app: App, path: Path) -> None:
    """Write every task with its full history to a JSON file (atomically), or to stdout with `-`.

    Only a regular file at PATH is replaced; a symlink, a device or a directory
    there is refused and left as it was.
    """
    store = app.store(create=False)
    if str(path) == "-":
        count = jsonio.write_document(store, sys.stdout)
        click.echo(f"Exported {count} task(s) to stdout", err=True)
        return
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


COMMANDS = (views, export_, import_)
