"""Shared fixtures: real SQLite stores in tmp dirs, closed after every test."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from minna_tasks import MinnaMemory, TaskStore
from minna_tasks.engines import is_postgres_url

from .pg import Cluster, pg_cluster, pg_dump, pg_url  # noqa: F401 (fixtures)

# The conformance suite: these modules run against every engine (a `backend`
# parameter); a test in them that only makes sense on SQLite (file modes, WAL, plain
# sqlite3) carries @pytest.mark.sqlite_only. Every other module runs on SQLite.
BACKENDS = ("sqlite", "postgresql")
CONFORMANCE = frozenset(
    {
        "test_store",
        "test_loop",
        "test_memory",
        "test_memory_surface",
        "test_memory_seam",
        "test_concurrency",
        "test_crash",
        "test_hostile",
        "test_jsonio",
        "test_fencing",
        "test_dependencies",
        "test_waiting",
        "test_mcp_stdio",
    }
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if module in CONFORMANCE and not metafunc.definition.get_closest_marker("sqlite_only"):
        metafunc.parametrize("backend", BACKENDS)


@pytest.fixture
def backend() -> str:
    """The engine a test runs on (see pytest_generate_tests); SQLite unless parametrized."""
    return "sqlite"


@pytest.fixture
def db_path(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Any:
    """Where the test's store lives: a file path on SQLite, a fresh database's URL on
    PostgreSQL (both accepted by TaskStore, MinnaMemory and --db)."""
    if backend == "postgresql":
        return request.getfixturevalue("pg_url")
    return tmp_path / ".spine" / "minna.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[TaskStore]:
    s = TaskStore(db_path)
    yield s
    s.close()


@pytest.fixture
def memory_store(backend: str, request: pytest.FixtureRequest) -> Iterator[TaskStore]:
    s = TaskStore(request.getfixturevalue("pg_url") if backend == "postgresql" else ":memory:")
    yield s
    s.close()


@pytest.fixture
def memory(backend: str, request: pytest.FixtureRequest) -> Iterator[MinnaMemory]:
    m = MinnaMemory(request.getfixturevalue("pg_url") if backend == "postgresql" else ":memory:")
    yield m
    m.close()


def file_digest(path: Path) -> str:
    """Hash of the database file and its WAL: equal digests mean nothing was written."""
    h = hashlib.sha256()
    for p in (path, path.with_name(path.name + "-wal")):
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()


@contextmanager
def unchanged(path: Path) -> Iterator[None]:
    """Assert that the block leaves the database logically as it found it."""
    before = dump(path)
    yield
    assert dump(path) == before


def dump(path: Path) -> list[str]:
    """The logical content of a database (schema and rows), for 'changed nothing' checks."""
    import sqlite3

    if is_postgres_url(str(path)):
        return pg_dump(str(path))

    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()
