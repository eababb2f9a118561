"""Shared fixtures: real SQLite stores in tmp dirs, closed after every test."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from minna_tasks import MinnaMemory, TaskStore

from .pg import Cluster, pg_cluster, pg_url  # noqa: F401 (fixtures)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / ".spine" / "minna.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[TaskStore]:
    s = TaskStore(db_path)
    yield s
    s.close()


@pytest.fixture
def memory_store() -> Iterator[TaskStore]:
    s = TaskStore(":memory:")
    yield s
    s.close()


@pytest.fixture
def memory() -> Iterator[MinnaMemory]:
    m = MinnaMemory(":memory:")
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

    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()
