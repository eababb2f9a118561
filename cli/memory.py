"""`minna-tasks memory ...`: the Minna memory underneath the tasks."""

from __future__ import annotations

import click

from .app import App, MinnaGroup, emit_json, json_option, pass_app, table


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
