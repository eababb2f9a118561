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
# The store's and the memory's modules: rules and API only (their SQL is the engines',
# engines/sqlite/ the DDL SQLite's migrations run).
RULE_MODULES = sorted(
    str(p.relative_to(ROOT / "minna_tasks"))
    for layer in ("store", "memory")
    for p in (ROOT / "minna_tasks" / layer).glob("*.py")
)
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
def test_the_store_and_memory_hold_no_sql(name: str) -> None:
    found = [s for s in code_strings(ROOT / "minna_tasks" / name) if SQL_WORDS.search(s)]
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


# -- the direction: engines/ stands below store/ and memory/ ----------------------------

PACKAGE = ROOT / "minna_tasks"
ABOVE_ENGINES = ("minna_tasks.store", "minna_tasks.memory")


def module_name(path: Path) -> str:
    """The dotted name of a module file of the package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(text: str, package: str) -> set[str]:
    """Every `minna_tasks` module that source `text` of a module in `package` imports,
    anywhere in it (a function's lazy import and a TYPE_CHECKING one count too):
    `from x import y` names both x and x.y (y may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                head = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{head}.{base}" if base else head
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {n for n in found if n == "minna_tasks" or n.startswith("minna_tasks.")}


def imports_of(path: Path) -> set[str]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return imported(path.read_text(encoding="utf-8"), package)


def is_above(name: str) -> bool:
    return any(name == top or name.startswith(top + ".") for top in ABOVE_ENGINES)


def test_the_import_scan_sees_every_form() -> None:
    """The scan can fail: relative, absolute and lazy imports of store/ and memory/."""
    text = (
        "from ...store.projection import X\n"
        "import minna_tasks.memory.api\n"
        "def f():\n    from ... import memory\n"
        "from ..base import Connected\n"
        "from . import fulltext\n"
    )
    found = imported(text, "minna_tasks.engines.sqlite")
    assert {
        "minna_tasks.store.projection",
        "minna_tasks.memory.api",
        "minna_tasks.memory",
        "minna_tasks.engines.base",
        "minna_tasks.engines.sqlite.fulltext",
    } <= found
    below = imported("from ..base import Connected\nfrom . import fulltext\n", "x.engines.sqlite")
    assert not any(is_above(n) for n in below)
    assert not is_above("minna_tasks.memoryless")


@pytest.mark.parametrize(
    "path",
    sorted((PACKAGE / "engines").rglob("*.py")),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_no_engine_module_imports_store_or_memory(path: Path) -> None:
    """engines/ stands below store/ and memory/ (DESIGN.md): what both need lives below
    them (engines/task_schema.py), never the other way round."""
    assert sorted(n for n in imports_of(path) if is_above(n)) == []


def module_path(name: str) -> Path | None:
    """The file of module `name` of the package, or None (a name inside a module)."""
    base = ROOT / Path(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def reached(path: Path) -> dict[str, str]:
    """Every package module that importing `path` imports in turn (its parent packages
    too, but the package's own __init__, which imports everything for the users), each
    with the module that imports it."""
    by: dict[str, str] = {}
    todo = [path]
    while todo:
        here = todo.pop()
        for name in imports_of(here):
            parts = name.split(".")
            for n in range(2, len(parts) + 1):
                step = ".".join(parts[:n])
                found = module_path(step)
                if found is not None and step not in by:
                    by[step] = module_name(here)
                    todo.append(found)
    return by


@pytest.mark.parametrize(
    "path",
    sorted((PACKAGE / "engines").rglob("*.py")),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_no_engine_module_reaches_store_or_memory_through_another(path: Path) -> None:
    """Nor through a module outside engines/ (records, views, ...) that imports them."""
    assert {n: by for n, by in reached(path).items() if is_above(n)} == {}
