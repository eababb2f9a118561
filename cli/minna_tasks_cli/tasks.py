"""Task commands: one thin call into TaskStore each."""

from __future__ import annotations

import click

from minna_tasks import defaults
from minna_tasks.errors import TransitionConflict
from minna_tasks.memory import SCHEMA_VERSION
from minna_tasks.wording import is_in

from .app import (
    TASK_COLUMNS,
    App,
    default_worker,
    emit_json,
    history_rows,
    json_option,
    parse_json,
    pass_app,
    show_task,
    table,
    task_row,
)
from .complete import states, task_ids

LEASE = click.FloatRange(min=0, min_open=True)
# One default name for every command that takes a worker or an actor.
WHO_DEFAULT = "$MINNA_WORKER, else USER@HOST"
ACTOR = click.option(
    "--actor",
    default=default_worker,
    show_default=WHO_DEFAULT,
    help="Who makes the change (stored as the status row's source).",
)
WORKER = click.option(
    "--worker",
    default=default_worker,
    show_default=WHO_DEFAULT,
    help="The worker that holds the task.",
)
TOKEN = click.option(
    "--token",
    type=int,
    help="The claim's token (claim --json prints claim_token): refused once another "
    "claim holds the task, even one by the same worker name.",
)
TASK_ID = click.argument("task_id", shell_complete=task_ids)
# `claim`'s exit status when nothing is pending: `while id=$(minna-tasks claim); do ...`.
NOTHING_PENDING = 3


@click.command()
@pass_app
def init(app: App) -> None:
    """Create the database file (and its views), or upgrade an older one."""
    store = app.store()
    click.echo(
        f"Ready: {store.path} (schema version {SCHEMA_VERSION}, "
        f"{sum(store.stats().values())} tasks)"
    )


@click.command()
@click.argument("title")
@click.option("--description", default="", help="Longer text about the task.")
@click.option("--priority", type=int, default=0, show_default=True, help="Higher is claimed first.")
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=defaults.MAX_ATTEMPTS,
    show_default=True,
    help="Failed attempts before the task goes to failed.",
)
@click.option("--payload", metavar="JSON", help="Input for the worker, as JSON.")
@click.option("--id", "task_id", help="Choose the id (default t-N).")
@click.option(
    "--after",
    "after",
    multiple=True,
    metavar="ID",
    help="Wait until this task is completed (repeatable).",
)
@ACTOR
@json_option
@pass_app
def add(
    app: App,
    title: str,
    description: str,
    priority: int,
    max_attempts: int,
    payload: str | None,
    task_id: str | None,
    after: tuple[str, ...],
    actor: str,
    as_json: bool,
) -> None:
    """Add a pending task and print its id (it waits for the --after tasks)."""
    data = parse_json("'--payload'", payload)
    task = app.store().add(
        title,
        description=description,
        priority=priority,
        max_attempts=max_attempts,
        payload=data,
        task_id=task_id,
        actor=actor,
        depends_on=after,
    )
    if as_json:
        emit_json(task.to_dict())
    else:
        click.echo(task.id)


@click.command(name="list")
@click.option("--status", multiple=True, help="Only tasks in this state (repeatable).")
@click.option("--owner", help="Only tasks held by this worker.")
@click.option("--limit", type=click.IntRange(min=0), help="At most this many tasks.")
@click.option("--ready", is_flag=True, help="Only pending tasks whose dependencies are done.")
@click.option("--blocked", is_flag=True, help="Only pending tasks still waiting for others.")
@json_option
@pass_app
def list_(
    app: App,
    status: tuple[str, ...],
    owner: str | None,
    limit: int | None,
    ready: bool,
    blocked: bool,
    as_json: bool,
) -> None:
    """List tasks, oldest first."""
    tasks = app.store(create=False).list(
        status=status or None, owner=owner, limit=limit, ready=ready, blocked=blocked
    )
    if as_json:
        emit_json([t.to_dict() for t in tasks])
    else:
        table(TASK_COLUMNS, [task_row(t) for t in tasks])


@click.command()
@TASK_ID
@click.option("--as-of", metavar="TIME", help="Show the task as it stood at this ISO-8601 time.")
@json_option
@pass_app
def show(app: App, task_id: str, as_of: str | None, as_json: bool) -> None:
    """Show one task: every current field, what it waits for and what waits for it."""
    store = app.store(create=False)
    task = store.get(task_id) if as_of is None else store.as_of(task_id, as_of)
    needed_by = store.dependents(task_id) if as_of is None else None
    if as_json:
        emit_json(task.to_dict() | ({} if needed_by is None else {"needed_by": needed_by}))
    else:
        show_task(task, needed_by)


@click.command()
@TASK_ID
@click.argument("state", shell_complete=states)
@click.option(
    "--expect",
    metavar="STATE",
    shell_complete=states,
    help="Refuse unless the task is in this state.",
)
@click.option("--note", help="Why (stored with the status change).")
@click.option("--result", metavar="JSON", help="A result to store, as JSON.")
@click.option("--error", "error_text", metavar="TEXT", help="An error to store.")
@click.option(
    "--event",
    metavar="NAME",
    help="Which event, for a move with several (in_progress -> pending: release, fail, expire).",
)
@ACTOR
@click.option(
    "--force",
    is_flag=True,
    help="Move a task another worker holds (the history records it as forced).",
)
@TOKEN
@json_option
@pass_app
def move(
    app: App,
    task_id: str,
    state: str,
    expect: str | None,
    note: str | None,
    result: str | None,
    error_text: str | None,
    event: str | None,
    actor: str,
    force: bool,
    token: int | None,
    as_json: bool,
) -> None:
    """Move a task to STATE (checked against the state machine).

    A task a worker holds moves for that worker: pass `--actor HOLDER`, or
    `--force` to move it anyway (recorded as forced).
    """
    value = parse_json("'--result'", result)
    store = app.store(create=False)
    before = store.get(task_id).status
    try:
        task = store.transition(
            task_id,
            state,
            expected=expect,
            actor=actor,
            note=note,
            result=value,
            error=error_text,
            event=event,
            force=force,
            token=token,
        )
    except TransitionConflict as e:
        if e.holder is None:
            raise
        raise TransitionConflict(
            e.task_id,
            e.state,
            f"task {e.task_id} {is_in(e.state)} and held by {e.holder}, not {actor}; "
            f"pass --actor {e.holder} to act as its holder, or --force to move it anyway",
            e.allowed,
            holder=e.holder,
        ) from None
    if as_json:
        emit_json(task.to_dict())
    else:
        click.echo(f"{task.id}: {before} -> {task.status}")


@click.command()
@WORKER
@click.option(
    "--lease",
    type=LEASE,
    default=defaults.LEASE_SECONDS,
    show_default=True,
    help="Seconds the claim holds without a heartbeat.",
)
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Wait up to this long for a task (any process may add one).",
)
@json_option
@pass_app
def claim(app: App, worker: str, lease: float, wait: float | None, as_json: bool) -> None:
    """Claim the next pending task (highest priority, then oldest) and print its id.

    Exits 3 when nothing is pending (with --json it prints null), so
    `while id=$(minna-tasks claim); do ...; done` works the queue. With --wait, it
    first waits up to SECONDS for a task any process adds (holding no lock).
    """
    task = app.store(create=False).claim(worker, lease, wait=wait)
    if as_json:
        emit_json(None if task is None else task.to_dict())
    elif task is not None:
        click.echo(task.id)
    if task is None:
        if not as_json:
            click.echo("No pending task.", err=True)
        click.get_current_context().exit(NOTHING_PENDING)


@click.command()
@TASK_ID
@WORKER
@click.option(
    "--lease",
    type=LEASE,
    default=defaults.LEASE_SECONDS,
    show_default=True,
    help="Seconds from now the lease holds.",
)
@TOKEN
@pass_app
def heartbeat(app: App, task_id: str, worker: str, lease: float, token: int | None) -> None:
    """Extend the lease on a task you hold."""
    task = app.store(create=False).heartbeat(task_id, worker, lease, token=token)
    click.echo(f"{task.id}: lease held by {task.owner} until {task.lease_expires_at}")


@click.command()
@TASK_ID
@WORKER
@click.option("--note", help="Why (stored with the status change).")
@TOKEN
@pass_app
def release(app: App, task_id: str, worker: str, note: str | None, token: int | None) -> None:
    """Hand a task you hold back to the queue (no attempt counted)."""
    task = app.store(create=False).release(task_id, worker, note=note, token=token)
    click.echo(f"{task.id}: {task.status}")


@click.command()
@TASK_ID
@WORKER
@click.option("--error", "error_text", metavar="TEXT", help="What went wrong (stored).")
@click.option("--note", help="Why (stored with the status change).")
@click.option("--expect", metavar="STATE", help="Refuse unless the task is in this state.")
@TOKEN
@json_option
@pass_app
def fail(
    app: App,
    task_id: str,
    worker: str,
    error_text: str | None,
    note: str | None,
    expect: str | None,
    token: int | None,
    as_json: bool,
) -> None:
    """Record a failed attempt of a task you hold: back to the queue, or to failed once
    its attempts are used up."""
    store = app.store(create=False)
    task = store.fail(task_id, worker, error=error_text, note=note, expected=expect, token=token)
    if as_json:
        emit_json(task.to_dict())
    else:
        click.echo(f"{task.id}: {task.status} (attempts {task.attempts}/{task.max_attempts})")


@click.command()
@click.option("--now", metavar="TIME", help="Treat this ISO-8601 time as now.")
@pass_app
def recover(app: App, now: str | None) -> None:
    """Put tasks whose lease expired back in the queue (or to failed)."""
    tasks = app.store(create=False).recover(now)
    for task in tasks:
        click.echo(f"{task.id}: {task.status} (attempts {task.attempts}/{task.max_attempts})")
    click.echo(f"Recovered {len(tasks)} task(s).", err=True)


@click.command()
@TASK_ID
@click.option("--note", help="Why (stored with the status change).")
@ACTOR
@pass_app
def retry(app: App, task_id: str, note: str | None, actor: str) -> None:
    """Give a failed task a fresh start (failed -> pending, attempts reset)."""
    task = app.store(create=False).retry(task_id, actor=actor, note=note)
    click.echo(f"{task.id}: {task.status}")


@click.command()
@TASK_ID
@json_option
@pass_app
def history(app: App, task_id: str, as_json: bool) -> None:
    """Every status change of a task, oldest first (the audit trail)."""
    steps = app.store(create=False).history(task_id)
    if as_json:
        emit_json([s.to_dict() for s in steps])
    else:
        table(("at", "from", "to", "actor", "note"), history_rows(steps))


@click.command()
@json_option
@pass_app
def stats(app: App, as_json: bool) -> None:
    """Number of tasks per state."""
    store = app.store(create=False)
    counts = store.stats()
    if as_json:
        emit_json(counts)
    else:
        rows: list[list[object]] = []
        for k, v in counts.items():
            rows.append([k, v])
            if k == store.machine.initial:  # how many of them wait for dependencies
                rows += [[f"{k}: {w}", n] for w, n in store.readiness().items()]
        table(("status", "count"), [*rows, ["total", sum(counts.values())]])


COMMANDS = (
    init,
    add,
    list_,
    show,
    move,
    claim,
    heartbeat,
    release,
    fail,
    recover,
    retry,
    history,
    stats,
)
