"""MinnaMemory: the documented Minna examples, schema safety and file refusal."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from minna_tasks import MinnaMemory, MinnaTasksError, TaskStore
from minna_tasks.errors import StoreError
from minna_tasks.memory import SCHEMA_VERSION

from .conftest import file_digest


def test_documented_store_and_recall_newest_first(memory: MinnaMemory) -> None:
    first = memory.store(entity="task-1", attribute="status", value="pending")
    second = memory.store(entity="task-1", attribute="status", value="in_progress")
    assert second > first
    state = memory.recall(entity="task-1", attribute="status")
    assert [m["value"] for m in state] == ["in_progress", "pending"]
    row = state[0]
    assert {
        "id",
        "entity",
        "attribute",
        "value",
        "source",
        "confidence",
        "context",
        "created_at",
    } <= row.keys()
    assert row["id"] == second
    assert row["confidence"] == 1.0
    assert memory.current("task-1", "status") == "in_progress"


def test_recall_filters_and_limit(memory: MinnaMemory) -> None:
    for i in range(15):
        memory.store("alice", "mood", f"m{i}", source="chat", context=f"c{i}")
    memory.store("bob", "mood", "calm")
    assert len(memory.recall(entity="alice")) == 10
    assert len(memory.recall(entity="alice", limit=None)) == 15
    assert [m["entity"] for m in memory.recall(attribute="mood", limit=2)] == ["bob", "alice"]
    newest = memory.recall(entity="alice", limit=1)[0]
    assert (newest["value"], newest["source"], newest["context"]) == ("m14", "chat", "c14")


def test_values_keep_their_type(memory: MinnaMemory) -> None:
    memory.store("x", "n", 3)
    memory.store("x", "f", 2.5)
    memory.store("x", "none", None)
    assert memory.current("x", "n") == 3
    assert memory.current("x", "f") == 2.5
    assert memory.current("x", "none") is None
    with pytest.raises(TypeError, match="encode structured values as JSON"):
        memory.store("x", "d", {"a": 1})  # type: ignore[arg-type]


def test_search_full_text(memory: MinnaMemory) -> None:
    memory.store("project-apollo", "goal", "land on the moon")
    memory.store("project-gemini", "goal", "orbit the earth")
    hits = memory.search("moon")
    assert [h["entity"] for h in hits] == ["project-apollo"]
    assert [h["entity"] for h in memory.search("gemini")] == ["project-gemini"]
    assert memory.search("goal", limit=1)
    assert len(memory.search("goal", limit=1)) == 1
    # FTS5 syntax in user text is quoted, never an error: no memory holds all three
    # words, so those holding any of them (here "moon") are found.
    assert [h["entity"] for h in memory.search('moon" OR (')] == ["project-apollo"]
    assert memory.search('"" OR (') == []
    assert memory.search("   ") == []


def _backdate(memory: MinnaMemory, memory_id: int, days: float) -> None:
    when = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="microseconds")
    memory.connection.execute("UPDATE memories SET created_at = ? WHERE id = ?", (when, memory_id))


def test_decay_halves_per_half_life_and_verify_resets(memory: MinnaMemory) -> None:
    mid = memory.store("alice", "likes", "tea", confidence=0.8)
    _backdate(memory, mid, 90)
    (row,) = memory.recall("alice", "likes", include_decay=True, half_life_days=90)
    assert row["confidence"] == pytest.approx(0.4, rel=1e-3)
    (row,) = memory.recall("alice", "likes", include_decay=True, half_life_days=45)
    assert row["confidence"] == pytest.approx(0.2, rel=1e-3)
    # Without decay the stored confidence is untouched; decay never changes the value.
    (row,) = memory.recall("alice", "likes")
    assert (row["confidence"], row["value"]) == (0.8, "tea")
    assert memory.recall("alice", "likes", include_decay=True, min_confidence=0.5) == []
    memory.verify(mid)
    (row,) = memory.recall("alice", "likes", include_decay=True, half_life_days=90)
    assert row["confidence"] == pytest.approx(0.8, rel=1e-3)
    assert row["verified_at"] is not None
    with pytest.raises(MinnaTasksError, match="memory 999 not found"):
        memory.verify(999)


def test_entities_and_aliases(memory: MinnaMemory) -> None:
    eid = memory.add_entity("Alice Smith", "person", aliases=["alice", "al"])
    entity = memory.get_entity("al")
    assert entity is not None
    assert entity["id"] == eid
    assert (entity["name"], entity["entity_type"]) == ("Alice Smith", "person")
    assert entity["aliases"] == ["alice", "al"]
    assert memory.get_entity("Alice Smith") == entity
    assert memory.get_entity("nobody") is None
    assert memory.add_entity("Alice Smith", "person", aliases=["smithy"]) == eid
    assert memory.get_entity("smithy")["aliases"] == ["alice", "al", "smithy"]  # type: ignore[index]
    memory.add_entity("Bob", "person")
    with pytest.raises(MinnaTasksError, match="alias 'al' already names another entity"):
        memory.add_entity("Bob", "person", aliases=["al"])
    with pytest.raises(MinnaTasksError, match="exists with type 'person', not 'task'"):
        memory.add_entity("Bob", "task")


def test_relations_read_back(memory: MinnaMemory) -> None:
    r1 = memory.relate("t-1", "t-2", "blocks")
    memory.relate("t-3", "t-1", "part_of")
    out = memory.get_relations("t-1", direction="out")
    assert [(r["id"], r["to_entity"], r["rel_type"]) for r in out] == [(r1, "t-2", "blocks")]
    assert [r["from_entity"] for r in memory.get_relations("t-1", direction="in")] == ["t-3"]
    assert len(memory.get_relations("t-1")) == 2
    assert memory.get_relations("t-1", rel_type="part_of")[0]["from_entity"] == "t-3"


def test_session_context_newest_first(memory: MinnaMemory) -> None:
    memory.summarize_session("s1", "set up the queue", topics=["setup"])
    memory.summarize_session("s2", "ran the workers", topics=["run", "workers"])
    context = memory.get_context(limit=5)
    assert [c["session_id"] for c in context] == ["s2", "s1"]
    assert context[0]["topics"] == ["run", "workers"]
    assert {"session_id", "summary", "topics", "created_at"} <= context[0].keys()
    assert len(memory.get_context(limit=1)) == 1


def test_preferences_keyed_by_category_and_key(memory: MinnaMemory) -> None:
    assert memory.set_preference("tools", "editor", "vim") == "vim"
    assert memory.set_preference("tools", "editor", "helix") == "helix"
    assert memory.set_preference("writing", "editor", "Ann") == "Ann"  # no collision
    memory.set_preference("writing", "tone", "brief")
    assert memory.set_preference("tools", "editor") == "helix"  # two arguments read
    assert memory.set_preference("tools", "missing") is None
    assert memory.get_preference("tools", "editor") == "helix"
    assert memory.get_preference("tools", "missing", "x") == "x"
    assert [(p["key"], p["value"]) for p in memory.get_preferences("tools")] == [
        ("editor", "helix")
    ]
    assert [(p["category"], p["key"], p["value"]) for p in memory.get_preferences()] == [
        ("tools", "editor", "helix"),
        ("writing", "editor", "Ann"),
        ("writing", "tone", "brief"),
    ]
    assert set(memory.get_preferences()[0]) == {"category", "key", "value", "updated_at"}


def test_transaction_is_atomic_and_nested_calls_join(memory: MinnaMemory) -> None:
    def two_then_fail() -> None:
        with memory.transaction():
            memory.store("a", "x", 1)
            memory.store("a", "y", 2)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        two_then_fail()
    assert memory.recall("a") == []

    def inner() -> None:
        with memory.transaction():
            memory.store("b", "y", 2)
            raise ValueError("inner")

    with memory.transaction():
        memory.store("b", "x", 1)
        with pytest.raises(ValueError, match="inner"):
            inner()
        memory.store("b", "z", 3)
    assert sorted(m["attribute"] for m in memory.recall("b")) == ["x", "z"]


def test_timestamps_are_utc_iso_with_microseconds(memory: MinnaMemory) -> None:
    memory.store("e", "a", "v")
    stamp = memory.recall("e")[0]["created_at"]
    parsed = datetime.fromisoformat(stamp)
    assert parsed.utcoffset() == timedelta(0)
    assert len(stamp.split(".")[1]) == len("123456+00:00")


@pytest.mark.sqlite_only
def test_current_value_uses_index_not_history(memory: MinnaMemory) -> None:
    plan = memory.connection.execute(
        "EXPLAIN QUERY PLAN SELECT value FROM memories WHERE entity = ? AND attribute = ?"
        " ORDER BY id DESC LIMIT 1",
        ("e", "a"),
    ).fetchall()
    detail = " ".join(row[-1] for row in plan)
    assert "USING INDEX memories_entity_attribute" in detail or "USING COVERING INDEX" in detail
    assert "SCAN" not in detail


def test_file_settings(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "folder" / "m.db"
    with MinnaMemory(path) as m:
        conn = m.connection
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with MinnaMemory(path, synchronous="FULL") as m:
        assert m.connection.execute("PRAGMA synchronous").fetchone()[0] == 2
    with pytest.raises(ValueError, match="synchronous must be one of NORMAL, FULL"):
        MinnaMemory(path, synchronous="OFF")


def test_reopen_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with MinnaMemory(path) as m:
        m.store("e", "a", "v1")
    with MinnaMemory(path) as m:
        assert m.current("e", "a") == "v1"


def test_refuses_non_sqlite_file_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 10)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="is not a SQLite database"):
        MinnaMemory(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_refuses_newer_schema_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = file_digest(path)
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer than"):
        MinnaMemory(path)
    assert file_digest(path) == before
    assert not (tmp_path / "future.db-wal").exists()


def test_refuses_foreign_table_of_same_name_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE memories (id INTEGER PRIMARY KEY, text TEXT)")
    conn.execute("INSERT INTO memories (text) VALUES ('mine')")
    conn.commit()
    conn.close()
    before = file_digest(path)
    with pytest.raises(StoreError, match="table 'memories' that is not a Minna memory table"):
        MinnaMemory(path)
    assert file_digest(path) == before


def test_shares_a_file_with_other_tables(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('keep me')")
    conn.commit()
    conn.close()
    with MinnaMemory(path) as m:
        m.store("e", "a", 1)
        assert m.connection.execute("SELECT body FROM notes").fetchone()[0] == "keep me"


def test_directory_as_path(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory, not a database file"):
        MinnaMemory(tmp_path)


def test_bad_names_write_nothing(memory: MinnaMemory) -> None:
    with pytest.raises(ValueError, match="entity must not be empty"):
        memory.store("", "a", "v")
    with pytest.raises(ValueError, match="attribute must not contain NUL"):
        memory.store("e", "a\x00b", "v")
    with pytest.raises(TypeError, match="entity must be a string"):
        memory.store(3, "a", "v")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        memory.store("e", "a", "v", confidence=2)
    assert memory.recall() == []


def test_odd_entity_names_round_trip(memory: MinnaMemory) -> None:
    names = ["Robert'); DROP TABLE memories;--", 'quo"te', "ünïcødé ✓", "a b\tc", "%_*", "x" * 5000]
    for name in names:
        memory.store(name, "status", "pending")
    for name in names:
        assert memory.recall(entity=name)[0]["entity"] == name
    assert len(memory.recall(limit=None)) == len(names)


def test_read_only_file_reads_but_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    with TaskStore(path) as s:
        s.add("one")
    path.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        before = file_digest(path)
        with MinnaMemory(path) as m:
            assert m.readonly
            assert m.recall(attribute="title")[0]["value"] == "one"
            with pytest.raises(StoreError, match="is read-only; nothing was written"):
                m.store("e", "a", "v")
        assert file_digest(path) == before
    finally:
        tmp_path.chmod(0o755)
        path.chmod(0o644)


def test_connection_is_reopened_after_fork(tmp_path: Path) -> None:
    import os

    path = tmp_path / "fork.db"
    m = MinnaMemory(path)
    m.store("parent", "a", 1)
    pid = os.fork()
    if pid == 0:  # child: must open its own connection, not reuse the parent's
        code = 0
        try:
            m.store("child", "a", 2)
            code = 0 if m.connection is not None else 1
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert m.current("child", "a") == 2
    m.store("parent", "b", 3)
    m.close()
