"""The dependency graph as text: Mermaid flowcharts of tasks and what they wait for.

Pure functions over TaskStore.dependency_graph(): no storage here.
"""

from __future__ import annotations

from collections.abc import Sequence

from .records import Task


def _label(task: Task) -> str:
    """A node label Mermaid shows as written: quotes and markup characters escaped."""
    text = f"{task.id}: {task.title} ({task.status})"
    for char, entity in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, entity)
    return " ".join(text.split())


def _style(task: Task) -> str:
    if task.blocked_by:
        return "blocked"
    return task.status if task.status.isidentifier() else "other"


def to_mermaid(tasks: Sequence[Task], edges: Sequence[tuple[str, str]]) -> str:
    """A Mermaid flowchart: an arrow from each dependency to the task waiting for it."""
    nodes = {task.id: f"n{i}" for i, task in enumerate(tasks)}
    lines = ["flowchart TD"]
    for task in tasks:
        lines.append(f'    {nodes[task.id]}["{_label(task)}"]:::{_style(task)}')
    for task_id, dep in edges:
        if task_id in nodes and dep in nodes:
            lines.append(f"    {nodes[dep]} --> {nodes[task_id]}")
    lines += [
        "    classDef blocked fill:#fde2e1,stroke:#c0392b",
        "    classDef pending fill:#e8f4fd,stroke:#2e86c1",
        "    classDef in_progress fill:#fff4d6,stroke:#d4a017",
        "    classDef review fill:#fff4d6,stroke:#d4a017",
        "    classDef completed fill:#e3f6e8,stroke:#1e8449",
        "    classDef failed fill:#f5b7b1,stroke:#922b21",
    ]
    return "\n".join(lines)
