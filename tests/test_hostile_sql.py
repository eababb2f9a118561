"""No SQL is ever built from input: every string-formatted SQL text in the package is
listed here with the reason it is safe, and anything new fails this test.

The scan reads the source of `minna_tasks/` and `cli/` with `ast`: an f-string,
`.format()`, `%` or `+` that builds text containing SQL is a finding. Values
always travel as bound parameters (`?`, `:name`); the whitelisted sites only
splice constants, placeholder lists or internal counters into the SQL.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("minna_tasks", "cli")
SQL = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|PRAGMA|WHERE|SAVEPOINT|ROLLBACK|RELEASE|"
    r"VALUES|ORDER BY|GROUP BY|LIMIT|AND|OR|IN \()\b|\?"
)

# (file, enclosing function or <module>) -> why the formatted SQL there is safe.
ALLOWED: dict[tuple[str, str], str] = {
    ("minna_tasks/engines/sqlite/database.py", "Database._open"): (
        "PRAGMA synchronous= one of the constant SYNCHRONOUS names (checked in __init__); "
        "and a file URI with ?mode=ro, which is not SQL"
    ),
    ("minna_tasks/engines/sqlite/database.py", "Database._check_schema"): (
        "PRAGMA table_info() of each constant OWN_TABLES name"
    ),
    (
        "minna_tasks/engines/sqlite/database.py",
        "Database._migrate",
    ): "PRAGMA user_version= an int counter",
    ("minna_tasks/engines/sqlite/database.py", "_Transaction.__enter__"): (
        "SAVEPOINT minna_<depth>: an internal int counter"
    ),
    ("minna_tasks/engines/sqlite/database.py", "_Transaction.__exit__"): (
        "ROLLBACK TO/RELEASE minna_<depth>: an internal int counter"
    ),
    ("minna_tasks/engines/sqlite/locking.py", "begin_immediate"): (
        "PRAGMA busy_timeout= int() of the store's float timeout, in milliseconds"
    ),
    ("minna_tasks/engines/sqlite/memories.py", "<module>"): (
        "SELECT lists from the constant MEMORY_COLUMNS / ENTITY_COLUMNS and count(*) FROM "
        "each name of the constant COUNTED_TABLES"
    ),
    ("minna_tasks/engines/sqlite/memories.py", "SqliteMemories.recall"): (
        "WHERE joins constant 'entity = ?' / 'attribute = ?' clauses; values are bound"
    ),
    ("minna_tasks/engines/sqlite/memories.py", "SqliteMemories.conflicting"): (
        "constant 'm.entity = ?' / 'm.attribute = ?' clauses and the class's constant "
        "DISTINCT_VALUE and BYTEWISE; values (and the skipped type) are bound"
    ),
    ("minna_tasks/engines/sqlite/memories.py", "SqliteMemories.entity_types"): (
        "the class's constant BYTEWISE collation clause"
    ),
    ("minna_tasks/engines/sqlite/memories.py", "SqliteMemories.find_entities"): (
        "WHERE joins constant LIKE / entity_type clauses (the class's constant LIKE and "
        "BYTEWISE); the pattern and type are bound"
    ),
    ("minna_tasks/engines/sqlite/memories.py", "SqliteMemories.of_type"): (
        "an IN list of '?' placeholders, one per name, and the class's constant BYTEWISE; "
        "names and type are bound"
    ),
    ("minna_tasks/engines/sqlite/memories.py", "SqliteMemories.relations"): (
        "column names from the constant RELATION_SIDES (the direction is checked by "
        "MinnaMemory and looked up, never spliced), each with an IN list of '?' "
        "placeholders; the names and rel_type are bound"
    ),
    ("minna_tasks/engines/sqlite/memories.py", "SqliteMemories.preferences"): (
        "appends a constant 'WHERE category = ?' and the class's constant BYTEWISE; the "
        "value is bound"
    ),
    ("minna_tasks/engines/sqlite/fulltext.py", "_search"): (
        "column lists from the constant MEMORY_COLUMNS; the MATCH text is bound (and quoted "
        "word by word by fts_query/any_word_query)"
    ),
    ("minna_tasks/engines/sqlite/projection.py", "_table_ddl"): (
        "the projection table's DDL from the constant FIELDS and QUEUE_STATE"
    ),
    ("minna_tasks/engines/sqlite/projection.py", "_rules_ddl"): (
        "triggers and backfill from the constants FIELDS, IMPLIED and ENTITY_TYPE"
    ),
    ("minna_tasks/engines/sqlite/projection.py", "_as_of_sql"): (
        "the tasks_as_of canned query from the constants FIELDS and ENTITY_TYPE"
    ),
    ("minna_tasks/engines/sqlite/projection.py", "_latest"): (
        "a replay subquery from the constants FIELDS and IMPLIED"
    ),
    ("minna_tasks/engines/sqlite/projection.py", "_fields_trigger"): (
        "the fields trigger from the constant FIELDS"
    ),
    ("minna_tasks/engines/sqlite/projection.py", "<module>"): (
        "SELECT_TASK, INSERT_TASK_ROW and QUEUE_SQL from the constants COLUMNS and QUEUE_STATE"
    ),
    ("minna_tasks/engines/sqlite/tasks.py", "SqliteTasks.earliest_lease"): (
        "an IN list of '?' placeholders, one per held state of the machine"
    ),
    ("minna_tasks/engines/sqlite/tasks.py", "SqliteTasks.owners"): (
        "IN lists of '?' placeholders per chunk of names"
    ),
    ("minna_tasks/engines/sqlite/tasks.py", "SqliteTasks.rows"): (
        "an IN list of '?' placeholders (one per checked status) and constant clauses"
    ),
    ("minna_tasks/engines/sqlite/tasks.py", "SqliteTasks.queue"): (
        "the claim-order query + LIMIT ?"
    ),
    ("minna_tasks/engines/sqlite/tasks.py", "SqliteTasks._first_ready"): (
        "the claim-order query + LIMIT 1 + the engine's constant lock clause"
    ),
    ("minna_tasks/engines/sqlite/tasks.py", "SqliteTasks.expired"): (
        "an IN list of '?' placeholders, one per held state of the machine, and the engine's"
        " constant lock clause"
    ),
    ("minna_tasks/engines/sqlite/tasks.py", "SqliteTasks.open_edges"): (
        "an IN list of '?' placeholders, one per done state of the machine"
    ),
    ("minna_tasks/engines/sqlite/tasks.py", "SqliteTasks.index_queue"): (
        "the claim index's constant DDL with projection.queue_where (the state quoted)"
    ),
    ("minna_tasks/engines/sqlite/projection.py", "queue_where"): (
        "the machine's queue state as an SQL string literal, its quotes doubled (sql_text):"
        " a partial index is used only for a query whose text implies its WHERE"
    ),
    (
        "minna_tasks/engines/sqlite/projection.py",
        "queue_sql",
    ): "SELECT_TASK + queue_where + ORDER BY",
    ("minna_tasks/engines/sqlite/dependencies.py", "<module>"): (
        "the migration, recount and count check from the constant REL_TYPE"
    ),
    ("minna_tasks/views.py", "view_sql"): (
        "CREATE VIEW of a constant VIEWS entry, its name quoted with quote_identifier"
    ),
    ("minna_tasks/views.py", "_stale"): "an IN list of '?' placeholders, one per view",
    ("minna_tasks/engines/postgres/database.py", "PostgresDatabase.transaction"): (
        "SAVEPOINT/ROLLBACK TO/RELEASE minna_<depth>: an internal int counter"
    ),
    ("minna_tasks/engines/postgres/dependencies.py", "<module>"): (
        "the dependency DDL, built from the constant REL_TYPE"
    ),
    ("minna_tasks/engines/postgres/dialect.py", "many"): (
        "a multi-row INSERT: the store's own constant statement head, its row of"
        " placeholders repeated; the values are parameters"
    ),
    ("minna_tasks/engines/postgres/dialect.py", "translate"): (
        "the store's own constant SQL with RETURNING id / ON CONFLICT appended"
    ),
    ("minna_tasks/engines/postgres/changes.py", "<module>"): (
        "the constant AFTER condition spliced into the feed's two queries; positions are parameters"
    ),
    ("minna_tasks/engines/postgres/fulltext.py", "_search"): (
        "plainto_tsquery(?) placeholders and the constant SEARCH_VECTOR; the words are parameters"
    ),
    ("minna_tasks/engines/postgres/schema.py", "<module>"): (
        "DDL built from the constant SEARCH_TEXT, and CREATE VIEW of each constant view "
        "name with its constant SELECT (engines/task_views.py)"
    ),
    ("minna_tasks/engines/postgres/schema.py", "_latest"): (
        "the backfill's SQL, built from the constant FIELDS and IMPLIED (as SQLite's)"
    ),
    ("minna_tasks/engines/postgres/schema.py", "_projection_ddl"): (
        "the projection DDL, built from the constant TASK_ATTRIBUTES (as SQLite's)"
    ),
    ("minna_tasks/engines/postgres/memories.py", "rows_values"): (
        "the numbered VALUES list of the one-statement appends: a row of placeholders per "
        "row (an integer count), the constant column names and their constant casts"
    ),
    ("minna_tasks/engines/postgres/memories.py", "token_insert"): (
        "a claim's INSERT ... SELECT: rows_values, the constant column names, the token "
        "row's position (an integer) and the entity and sources its two callers pass as "
        "constants; every value is a parameter"
    ),
    ("minna_tasks/engines/postgres/memories.py", "_claim_sql"): (
        "a claim's multi-row INSERT: a row of placeholders per row and the token row's "
        "position, both integers; every value is a parameter"
    ),
    ("minna_tasks/engines/postgres/tasks.py", "_claim_sql"): (
        "the claim in one statement: queue_sql's claim-order query (the queue state a "
        "quoted literal, see queue_sql), a row of placeholders per row and the token "
        "row's position (integers); every value is a parameter"
    ),
    ("minna_tasks/engines/postgres/tasks.py", "_move_sql"): (
        "a move's conditional multi-row INSERT: a row of placeholders per row (an "
        "integer count); every value is a parameter"
    ),
}


def _constant_text(node: ast.AST) -> str:
    """All literal text inside an expression (the parts a programmer wrote)."""
    return " ".join(
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    )


def _is_formatting(node: ast.AST) -> bool:
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr in ("format", "format_map") and isinstance(
            node.func.value, ast.Constant | ast.Name
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return isinstance(node.left, ast.Constant | ast.JoinedStr) or isinstance(
            node.right, ast.Constant | ast.JoinedStr
        )
    if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add):
        return isinstance(node.value, ast.Constant | ast.JoinedStr)
    return False


def findings() -> dict[tuple[str, str], list[int]]:
    """Every place that formats text containing SQL, by file and enclosing function."""
    found: dict[tuple[str, str], list[int]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            rel = path.relative_to(ROOT).as_posix()
            for scope, node in _walk(tree, "<module>"):
                if _is_formatting(node) and SQL.search(_constant_text(node)):
                    found.setdefault((rel, scope), []).append(getattr(node, "lineno", 0))
    return found


def _walk(node: ast.AST, scope: str) -> list[tuple[str, ast.AST]]:
    out = []
    for child in ast.iter_child_nodes(node):
        inner = scope
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            inner = child.name if scope == "<module>" else f"{scope}.{child.name}"
        out.append((inner, child))
        out.extend(_walk(child, inner))
    return out


def test_no_sql_is_formatted_from_input() -> None:
    found = findings()
    unexplained = {site: lines for site, lines in found.items() if site not in ALLOWED}
    assert unexplained == {}, "string-formatted SQL with no reason on the whitelist"


def test_the_whitelist_names_only_sites_that_exist() -> None:
    assert set(ALLOWED) <= set(findings())


def test_the_scanner_catches_formatted_sql(tmp_path: Path) -> None:
    """The scan would find a real injection (it can fail)."""
    bad = ast.parse('conn.execute(f"SELECT * FROM t WHERE id = {task_id}")')
    ok = ast.parse('conn.execute("SELECT * FROM t WHERE id = ?", (task_id,))')
    assert [n for _, n in _walk(bad, "<module>") if _is_formatting(n)]
    assert not [n for _, n in _walk(ok, "<module>") if _is_formatting(n)]
    concat = ast.parse('sql = "SELECT * FROM t WHERE name = \'" + name + "\'"')
    hits = [n for _, n in _walk(concat, "<module>") if _is_formatting(n)]
    assert hits
    assert SQL.search(_constant_text(hits[0]))
