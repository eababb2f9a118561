"""Dependency commands: depend, undepend, graph. One thin call into TaskStore each."""

from __future__ import annotations

import click

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
    if as_json:
        emit_json(task.to_dict())
    else:
        click.echo(_waits(task.id, task.depends_on, task.blocked_by))


@click.command()
@click.argument("task_id")
@click.option("--on", "on", required=True, metavar="OTHER", help="The task to stop waiting for.")
@ACTOR
@json_option
@pass_app
def undepend(app: App, task_id: str, on: str, actor: str, as_json: bool) -> None:
    """Stop TASK_ID waiting for OTHER."""
    task = app.store(create=False).undepend(task_id, on, actor=actor)
    if as_json:
        emit_json(task.to_dict())
    else:
        click.echo(_waits(task.id, task.depends_on, task.blocked_by))


def _waits(task_id: str, depends_on: tuple[str, ...], blocked_by: tuple[str, ...]) -> str:
    if not depends_on:
        return f"{task_id}: depends on nothing"
    state = f"blocked by {', '.join(blocked_by)}" if blocked_by else "ready"
    return f"{task_id}: depends on {', '.join(depends_on)} ({state})"


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
