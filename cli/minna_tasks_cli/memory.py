"""`minna-tasks memory ...`: the Minna memory underneath the tasks, all of it.

The same surface as the 16 memory MCP tools: facts (store, recall, search,
verify, conflicts), entities and relations (who, entity add|get|find, relate,
related), preferences, session summaries and stats. Each command calls one
MinnaMemory method; records print as a table, or as JSON with --json.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click

from minna_tasks.errors import MinnaTasksError
from minna_tasks.memory import check_entity_type

from .app import App, MinnaGroup, emit_json, json_option, pass_app, table


@click.group(cls=MinnaGroup)
def memory() -> None:
    """The Minna memory underneath: facts, entities, relations, preferences, sessions."""


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


MEMORY_COLUMNS = (
    "id",
    "entity",
    "attribute",
    "value",
    "source",
    "confidence",
    "effective_confidence",
    "created_at",
)


@memory.command(name="recall")
@click.option("--entity", help="Only facts about this entity.")
@click.option("--attribute", help="Only this attribute.")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--decay", is_flag=True, help="Show confidence decayed by age.")
@click.option(
    "--min-confidence",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Leave out facts whose effective (decayed) confidence is lower.",
)
@click.option(
    "--half-life",
    "half_life_days",
    type=click.FloatRange(min=0, min_open=True),
    default=90.0,
    show_default=True,
    metavar="DAYS",
    help="Days for confidence to halve without verification.",
)
@json_option
@pass_app
def memory_recall(
    app: App,
    entity: str | None,
    attribute: str | None,
    limit: int,
    decay: bool,
    min_confidence: float,
    half_life_days: float,
    as_json: bool,
) -> None:
    """Recall facts, newest first, each with its effective (decayed) confidence."""
    rows = app.store(create=False).memory.recall(
        entity=entity,
        attribute=attribute,
        limit=limit,
        include_decay=decay,
        half_life_days=half_life_days,
        min_confidence=min_confidence,
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


@memory.command(name="related")
@click.argument("entity")
@click.option("--type", "rel_type", help="Only relations of this type.")
@json_option
@pass_app
def memory_related(app: App, entity: str, rel_type: str | None, as_json: bool) -> None:
    """The relations of an entity (a name or an alias), oldest first."""
    related = app.store(create=False).memory.get_related(entity, rel_type)
    _records(related, ("id", "direction", "rel_type", "entity", "created_at"), as_json)


@memory.command(name="who")
@click.argument("name")
@json_option
@pass_app
def memory_who(app: App, name: str, as_json: bool) -> None:
    """Everything known about an entity (a name or an alias): its facts, memories and
    relations."""
    profile = app.store(create=False).memory.who(name)
    if profile is None:
        raise MinnaTasksError(f"nothing is known about {name!r}")
    if as_json:
        emit_json(profile)
        return
    aliases = ", ".join(profile["aliases"]) or "-"
    click.echo(f"name:        {profile['name']}")
    click.echo(f"entity_type: {profile['entity_type'] or '-'}")
    click.echo(f"aliases:     {aliases}")
    click.echo("")
    table(("attribute", "value"), sorted(profile["facts"].items()))
    if profile["related"]:
        click.echo("")
        table(
            ("direction", "rel_type", "entity"),
            [[r["direction"], r["rel_type"], r["entity"]] for r in profile["related"]],
        )


@memory.command(name="verify")
@click.argument("memory_id", type=int)
@json_option
@pass_app
def memory_verify(app: App, memory_id: int, as_json: bool) -> None:
    """Re-confirm a fact: its confidence decays again from now. Prints the time."""
    verified_at = app.store(create=False).memory.verify(memory_id)
    _value({"memory_id": memory_id, "verified_at": verified_at}, "verified_at", as_json)


@memory.command(name="conflicts")
@click.option("--entity", help="Only this entity (a name or an alias).")
@click.option("--attribute", help="Only this attribute.")
@json_option
@pass_app
def memory_conflicts(app: App, entity: str | None, attribute: str | None, as_json: bool) -> None:
    """Facts that contradict each other: an entity's attribute with more than one value.
    A task's own fields are its history and are never listed."""
    found = app.store(create=False).memory.detect_conflicts(entity, attribute)
    if as_json:
        emit_json(found)
        return
    table(
        ("entity", "attribute", "values", "memory_ids"),
        [[c["entity"], c["attribute"], c["values"], c["memory_ids"]] for c in found["conflicts"]],
    )


@memory.command(name="stats")
@json_option
@pass_app
def memory_stats(app: App, as_json: bool) -> None:
    """How many memories, entities, relations, sessions and preferences the file holds."""
    stats = app.store(create=False).memory.stats()
    if as_json:
        emit_json(stats)
        return
    types = stats.pop("entity_types")
    for key, count in stats.items():
        click.echo(f"{key + ':':<13}{count}")
    for entity_type, count in types.items():
        click.echo(f"  {entity_type + ':':<11}{count}")


# -- entities ---------------------------------------------------------------------


@memory.group(name="entity", cls=MinnaGroup)
def entity() -> None:
    """Named entities (person, project, concept, topic, preference) and their aliases."""


ENTITY_COLUMNS = ("id", "name", "entity_type", "aliases", "created_at")


@entity.command(name="add")
@click.argument("name")
@click.argument("entity_type", metavar="TYPE")
@click.option("--alias", "aliases", multiple=True, help="Another name for it (repeatable).")
@json_option
@pass_app
def entity_add(
    app: App, name: str, entity_type: str, aliases: tuple[str, ...], as_json: bool
) -> None:
    """Add an entity of TYPE (person, project, concept, topic or preference), or aliases to
    an existing one, and print its id. Tasks are made by `minna-tasks add`."""
    memory = app.store().memory
    entity_id = memory.add_entity(name, check_entity_type(entity_type), list(aliases))
    _value({"entity_id": entity_id}, "entity_id", as_json)


@entity.command(name="get")
@click.argument("name")
@json_option
@pass_app
def entity_get(app: App, name: str, as_json: bool) -> None:
    """Show the entity with this name or alias."""
    found = app.store(create=False).memory.get_entity(name)
    if found is None:
        raise MinnaTasksError(f"no entity is named {name!r}")
    if as_json:
        emit_json(found)
    else:
        _fields(found)


@entity.command(name="find")
@click.argument("query", required=False)
@click.option("--type", "entity_type", help="Only entities of this type.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@json_option
@pass_app
def entity_find(
    app: App, query: str | None, entity_type: str | None, limit: int, as_json: bool
) -> None:
    """Entities whose name or an alias contains QUERY (any case), by name."""
    found = app.store(create=False).memory.find_entities(query, entity_type, limit)
    _records(found, ENTITY_COLUMNS, as_json)


# -- preferences ------------------------------------------------------------------


@memory.group(name="pref", cls=MinnaGroup)
def pref() -> None:
    """Preferences, keyed by category and key."""


@pref.command(name="set")
@click.argument("category")
@click.argument("key")
@click.argument("value")
@json_option
@pass_app
def pref_set(app: App, category: str, key: str, value: str, as_json: bool) -> None:
    """Set the preference CATEGORY KEY to VALUE."""
    stored = app.store().memory.set_preference(category, key, value)
    _value({"category": category, "key": key, "value": stored}, "value", as_json)


@pref.command(name="get")
@click.argument("category")
@click.argument("key")
@json_option
@pass_app
def pref_get(app: App, category: str, key: str, as_json: bool) -> None:
    """Print the value of the preference CATEGORY KEY."""
    value = app.store(create=False).memory.get_preference(category, key)
    if value is None:
        raise MinnaTasksError(f"no preference {key!r} in category {category!r}")
    _value({"category": category, "key": key, "value": value}, "value", as_json)


@pref.command(name="list")
@click.option("--category", help="Only this category.")
@json_option
@pass_app
def pref_list(app: App, category: str | None, as_json: bool) -> None:
    """Every preference, by category then key."""
    prefs = app.store(create=False).memory.get_preferences(category)
    _records(prefs, ("category", "key", "value", "updated_at"), as_json)


# -- sessions ---------------------------------------------------------------------


@memory.group(name="session", cls=MinnaGroup)
def session() -> None:
    """Session summaries: what a session did, for the next one to read."""


@session.command(name="add")
@click.argument("session_id")
@click.argument("summary")
@click.option("--topic", "topics", multiple=True, help="A topic of the session (repeatable).")
@click.option(
    "--entity-id",
    "entity_ids",
    multiple=True,
    help="An entity the session was about: its id or name (repeatable).",
)
@json_option
@pass_app
def session_add(
    app: App,
    session_id: str,
    summary: str,
    topics: tuple[str, ...],
    entity_ids: tuple[str, ...],
    as_json: bool,
) -> None:
    """Keep a session's summary and print its id."""
    ids: list[int | str] = [int(e) if e.isdecimal() else e for e in entity_ids]
    summary_id = app.store().memory.summarize_session(session_id, summary, list(topics), ids)
    _value({"summary_id": summary_id}, "summary_id", as_json)


@session.command(name="list")
@click.option("--limit", type=click.IntRange(min=1), default=5, show_default=True)
@json_option
@pass_app
def session_list(app: App, limit: int, as_json: bool) -> None:
    """The newest session summaries, newest first."""
    summaries = app.store(create=False).memory.get_context(limit)
    _records(summaries, ("id", "session_id", "created_at", "topics", "summary"), as_json)


def _records(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], as_json: bool) -> None:
    if as_json:
        emit_json(list(rows))
    else:
        table(columns, [[r.get(c) for c in columns] for r in rows])


def _fields(record: Mapping[str, Any]) -> None:
    width = max(len(k) for k in record)
    for key, value in record.items():
        text = ", ".join(value) if isinstance(value, list) else value
        click.echo(f"{key + ':':<{width + 1}} {'-' if text in (None, '') else text}")


def _value(record: Mapping[str, Any], shown: str, as_json: bool) -> None:
    """Print the whole record as JSON, or just its `shown` field as plain text."""
    if as_json:
        emit_json(dict(record))
    else:
        click.echo(record[shown])


def _rows(rows: Sequence[Mapping[str, Any]], as_json: bool) -> None:
    _records(rows, MEMORY_COLUMNS, as_json)
