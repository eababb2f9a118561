"""Dependency commands: depend, undepend, graph. One thin call into TaskStore each."""

from __future__ import annotations

import click

from minna_tasks import Task

from .app import App, emit_json, json_option, pass_app

ACTOR = click.option(
    "--actor",
    default="cli",
    show_default=True,
    help="Who makes the change (stored in the task's log).",
)


@click.command()
@click.argument("task_id")
@click.option("--on", "on", required=True, metavar="OTHER", help="The task to wait for.")
@ACTOR
@json_option
@pass_app
def depend(app: App, task_id: str, on: str, actor: str, as_json: bool) -> None:
    """Make TASK_ID wait until OTHER is completed (refused if it closes a cycle)."""
    task = app.store(create=False).depend(task_id, on, actor=actor)
    _report(task, as_json)


@click.command()
@click.argument("task_id")
@click.option("--on", "on", required=True, metavar="OTHER", help="The task to stop waiting for.")
@ACTOR
@json_option
@pass_app
def undepend(app: App, task_id: str, on: str, actor: str, as_json: bool) -> None:
    """Stop TASK_ID waiting for OTHER."""
    task = app.store(create=False).undepend(task_id, on, actor=actor)
    _report(task, as_json)


def _report(task: Task, as_json: bool) -> None:
    """The task after a dependency change: as JSON, or what it waits for now."""
    if as_json:
        emit_json(task.to_dict())
        return
    if not task.depends_on:
        click.echo(f"{task.id}: depends on nothing")
        return
    blocked = task.blocked_by
    state = f"blocked by {', '.join(blocked)}" if blocked else "ready"
    click.echo(f"{task.id}: depends on {', '.join(task.depends_on)} ({state})")


@click.command()
@json_option
@pass_app
def graph(app: App, as_json: bool) -> None:
    """Print the dependency graph of the open tasks as a Mermaid flowchart."""
    from minna_tasks.graph import to_mermaid

    tasks, edges = app.store(create=False).dependency_graph()
    if as_json:
        emit_json(
            {
                "tasks": [t.to_dict() for t in tasks],
                "edges": [{"task": a, "depends_on": b} for a, b in edges],
            }
        )
    else:
        click.echo(to_mermaid(tasks, edges))


COMMANDS = (depend, undepend, graph)
