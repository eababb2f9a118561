"""The storage seam, task side: TaskStore keeps the rules and runs its SQL only through
its engine's TaskOperations; the fronts never reach past the store to a connection."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from minna_tasks import MinnaMemory, TaskStore
from minna_tasks.engines.base import TaskOperations
from minna_tasks.engines.postgres.tasks import PostgresTasks
from minna_tasks.engines.sqlite.tasks import SqliteTasks

ROOT = Path(__file__).resolve().parent.parent
SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP)\b\s+\S")
# The store's modules with rules only (their SQL is the engines'); projection.py holds
# the projection's DDL and machines.py its table's, which the migrations run; fields.py
# asks a private in-memory SQLite for CAST's answer on odd values (a calculator, no store).
RULE_MODULES = ("task_store.py", "dependencies.py", "names.py", "fencing.py")
FRONTS = sorted(
    str(p.relative_to(ROOT))
    for p in [
        ROOT / "minna_tasks" / "loop.py",
        ROOT / "minna_tasks" / "jsonio.py",
        *(ROOT / "minna_tasks").glob("mcp_*.py"),
        *(ROOT / "cli").rglob("*.py"),
    ]
)
# A connection, a snapshot or a transaction taken past the store, or SQL run directly.
REACH = re.compile(r"memory\.connection|\.memory\.(reading|transaction)\(|\.execute(many)?\(")


def code_strings(path: Path) -> list[str]:
    """The string constants of a module, its docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


@pytest.mark.parametrize("name", RULE_MODULES)
def test_the_store_rules_hold_no_sql(name: str) -> None:
    found = [s for s in code_strings(ROOT / "minna_tasks" / "store" / name) if SQL_WORDS.search(s)]
    assert found == []


def test_the_scans_find_what_they_look_for() -> None:
    """The checks here can fail."""
    assert SQL_WORDS.search("SELECT 1 FROM task_current")
    assert not SQL_WORDS.search("the task to select")
    assert REACH.search("with store.memory.reading() as conn:")
    assert REACH.search("store.memory.connection.execute(sql)")
    assert not REACH.search("multiprocessing.connection.wait(alive)")


def test_the_store_never_asks_which_engine() -> None:
    path = ROOT / "minna_tasks" / "store" / "task_store.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    asked = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "engine"]
    named = [s for s in code_strings(path) if re.search("postgres|sqlite", s, re.IGNORECASE)]
    assert (asked, named) == ([], [])


def test_only_the_engines_compare_an_engine_name() -> None:
    """Outside minna_tasks/engines, nothing decides by `x.engine == "..."`: what differs
    between engines is an operation of theirs (views.ensure_views asked until now)."""
    found = []
    for path in sorted((ROOT / "minna_tasks").rglob("*.py")):
        if "engines" in path.relative_to(ROOT / "minna_tasks").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and any(
                isinstance(side, ast.Attribute) and side.attr == "engine"
                for side in (node.left, *node.comparators)
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


@pytest.mark.parametrize("front", FRONTS)
def test_no_front_reaches_past_the_store(front: str) -> None:
    text = (ROOT / front).read_text(encoding="utf-8")
    assert REACH.findall(text) == []


def test_each_engine_exposes_its_task_operations(tmp_path: Path) -> None:
    with MinnaMemory(tmp_path / "m.db") as memory:
        assert type(memory.task_ops) is SqliteTasks
        assert isinstance(memory.task_ops, TaskOperations)
        assert memory.task_ops is memory.task_ops  # one per engine object
    assert issubclass(PostgresTasks, SqliteTasks)


def test_snapshot_and_transaction_of_the_store(tmp_path: Path) -> None:
    with TaskStore(tmp_path / "s.db") as store:
        with store.transaction():
            store.add("a")
            store.add("b")
        with pytest.raises(RuntimeError, match="undo"):
            _add_then_fail(store)
        with store.snapshot():
            assert [t.title for t in store.list()] == ["a", "b"]
            assert store.stats()["pending"] == 2


def _add_then_fail(store: TaskStore) -> None:
    with store.transaction():
        store.add("c")
        raise RuntimeError("undo")
