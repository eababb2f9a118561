"""MinnaMemory's whole documented surface: profiles, entities, relations, sessions,
stats, conflicts, decay, the records it returns, and a 0.1 file migrating."""

from __future__ import annotations

import copy
import pickle
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from minna_tasks import MinnaMemory, MinnaTasksError, TaskStore
from minna_tasks.engines.sqlite.schema import statements
from minna_tasks.memory import (
    ENTITY_TYPES,
    MIGRATIONS,
    SCHEMA_VERSION,
    Entity,
    Memory,
    check_entity_type,
)


def _age(memory: MinnaMemory, memory_id: int, days: float) -> None:
    """Make a memory `days` old, with plain SQL (as another tool or time would)."""
    when = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="microseconds")
    memory.connection.execute("UPDATE memories SET created_at = ? WHERE id = ?", (when, memory_id))


def test_a_memory_two_half_lives_old_is_filtered_until_verified(memory: MinnaMemory) -> None:
    old = memory.store("Jack", "timezone", "UTC-5", confidence=1.0)
    fresh = memory.store("Jack", "team", "core")
    _age(memory, old, 180)
    # min_confidence filters on effective confidence, with or without include_decay.
    assert [m.id for m in memory.recall(entity="Jack", min_confidence=0.5)] == [fresh]
    decayed = memory.recall(entity="Jack", include_decay=True, min_confidence=0.5)
    assert [m.id for m in decayed] == [fresh]
    (row,) = memory.recall(entity="Jack", attribute="timezone")
    assert row.confidence == 1.0  # reported undecayed without include_decay
    assert row.effective_confidence == pytest.approx(0.25, rel=1e-3)
    (row,) = memory.recall(entity="Jack", attribute="timezone", include_decay=True)
    assert row.confidence == row.effective_confidence == pytest.approx(0.25, rel=1e-3)
    memory.verify(old)
    back = memory.recall(entity="Jack", min_confidence=0.5)
    assert [m.id for m in back] == [fresh, old]
    assert back[1].effective_confidence == pytest.approx(1.0)
    # A freshly stored memory has its full confidence, so min_confidence=1.0 keeps it.
    assert [m.id for m in memory.recall(entity="Jack", min_confidence=1.0)] == [fresh, old]


def test_who_is_the_whole_profile(memory: MinnaMemory) -> None:
    assert memory.who("Jack") is None
    memory.add_entity("Jack", "person", aliases=["jack@example.org"])
    memory.store(entity="Jack", attribute="prefers", value="dark mode code blocks")
    memory.store(entity="Jack", attribute="communication", value="concise, no emojis")
    memory.store(entity="Jack", attribute="communication", value="concise")
    memory.relate("Jack", "spine", "works_on")
    memory.relate("Ann", "Jack", "mentors")
    profile = memory.who("jack@example.org")
    assert profile is not None
    assert (profile["name"], profile["entity_type"], profile["aliases"]) == (
        "Jack",
        "person",
        ["jack@example.org"],
    )
    assert profile["facts"] == {"communication": "concise", "prefers": "dark mode code blocks"}
    assert [m.value for m in profile["memories"]] == [
        "concise",
        "concise, no emojis",
        "dark mode code blocks",
    ]
    assert [(r["entity"], r["rel_type"], r["direction"]) for r in profile["related"]] == [
        ("spine", "works_on", "out"),
        ("Ann", "mentors", "in"),
    ]
    # Facts stored under a name no entity row describes still make a profile.
    memory.store("error_patterns", "timeout", "retry")
    loose = memory.who("error_patterns")
    assert loose is not None
    assert (loose["entity_type"], loose["facts"]) == (None, {"timeout": "retry"})


def test_entities_found_by_name_alias_and_type(memory: MinnaMemory) -> None:
    memory.add_entity("adr:spine:auth-jwt", "concept")
    memory.add_entity("Jack", "person", aliases=["jj"])
    memory.add_entity("Jill", "person")
    memory.add_entity("100%_sure", "topic")
    names = [e.name for e in memory.find_entities()]
    assert names == ["100%_sure", "Jack", "Jill", "adr:spine:auth-jwt"]
    assert [e.name for e in memory.find_entities("j")] == ["Jack", "Jill", "adr:spine:auth-jwt"]
    assert [e.name for e in memory.find_entities("JJ")] == ["Jack"]  # an alias, any case
    assert [e.name for e in memory.find_entities(entity_type="person", limit=1)] == ["Jack"]
    assert [e.name for e in memory.find_entities("%_")] == ["100%_sure"]  # no wildcards
    assert all(isinstance(e, Entity) for e in memory.find_entities())


def test_related_both_ways_with_the_other_end(memory: MinnaMemory) -> None:
    memory.add_entity("Jack", "person", aliases=["jj"])
    first = memory.relate("Jack", "spine", "works_on")
    memory.relate("Ann", "Jack", "mentors")
    related = memory.get_related("jj")
    assert [(r["id"], r["entity"], r["direction"]) for r in related] == [
        (first, "spine", "out"),
        (first + 1, "Ann", "in"),
    ]
    assert {"entity", "rel_type", "direction", "id", "created_at"} <= related[0].keys()
    assert [r["entity"] for r in memory.get_related("Jack", rel_type="mentors")] == ["Ann"]
    assert [r["entity"] for r in memory.get_related("Jack", direction="in")] == ["Ann"]
    assert memory.get_relations("Jack") == memory.get_related("Jack")  # the 0.1 name
    with pytest.raises(ValueError, match="direction must be"):
        memory.get_related("Jack", direction="up")


def test_stats_count_everything(memory: MinnaMemory) -> None:
    assert memory.stats() == {
        "memories": 0,
        "entities": 0,
        "relations": 0,
        "sessions": 0,
        "preferences": 0,
        "entity_types": {},
    }
    TaskStore(memory).add("a task")
    memory.add_entity("Jack", "person")
    memory.relate("Jack", "t-1", "owns")
    memory.summarize_session("s", "done")
    memory.set_preference("code_style", "line_length", "100")
    stats = memory.stats()
    assert stats["entity_types"] == {"person": 1, "task": 1}
    assert (stats["entities"], stats["relations"], stats["sessions"], stats["preferences"]) == (
        2,
        1,
        1,
        1,
    )
    assert stats["memories"] > 3  # the task's fields


def test_spine_conflict_example_has_the_documented_shape(memory: MinnaMemory) -> None:
    memory.add_entity("Jack", "person", aliases=["jj"])
    a = memory.store(entity="Jack", attribute="timezone", value="UTC-5")
    b = memory.store(entity="Jack", attribute="timezone", value="UTC+1")
    memory.store(entity="Jack", attribute="team", value="core")
    memory.store(entity="Jack", attribute="team", value="core")  # the same value twice
    expected = {
        "conflicts": [
            {
                "entity": "Jack",
                "attribute": "timezone",
                "values": ["UTC-5", "UTC+1"],
                "memory_ids": [a, b],
            }
        ]
    }
    assert memory.detect_conflicts(entity="Jack") == expected
    assert memory.detect_conflicts(entity="jj") == expected  # an alias names the entity
    assert memory.detect_conflicts(attribute="timezone") == expected
    assert memory.detect_conflicts(attribute="team") == {"conflicts": []}
    c = memory.store(entity="Jack", attribute="timezone", value="UTC-5")
    (conflict,) = memory.detect_conflicts()["conflicts"]
    assert (conflict["values"], conflict["memory_ids"]) == (["UTC-5", "UTC+1"], [a, b, c])
    memory.store("x", "n", 1)
    memory.store("x", "n", "1")  # another type is another value
    assert memory.detect_conflicts(entity="x")["conflicts"][0]["values"] == [1, "1"]


def test_a_task_moved_through_all_its_states_has_no_conflicts(db_path: Path) -> None:
    with TaskStore(db_path) as store:
        task = store.add("write", payload={"n": 1})
        store.claim("w")
        store.transition(task.id, "review", actor="w", result={"ok": False})
        store.transition(task.id, "pending", actor="w", note="not yet")
        store.claim("w")
        store.transition(task.id, "review", actor="w", result={"ok": True})
        store.transition(task.id, "completed", actor="w")
        store.remember("agent:w", "status", "active")
        store.remember("agent:w", "status", "offline")
        conflicts = store.memory.detect_conflicts()["conflicts"]
        assert [(c["entity"], c["attribute"]) for c in conflicts] == [("agent:w", "status")]
        assert store.memory.detect_conflicts(entity=task.id) == {"conflicts": []}


def test_only_the_documented_entity_types_pass_the_front_check(memory: MinnaMemory) -> None:
    assert ENTITY_TYPES == ("person", "project", "concept", "topic", "preference")
    for entity_type in ENTITY_TYPES:
        assert check_entity_type(entity_type) == entity_type
    with pytest.raises(MinnaTasksError) as refused:
        check_entity_type("agent")
    assert str(refused.value) == (
        "unknown entity type 'agent'; use one of: person, project, concept, topic, preference"
    )
    with pytest.raises(MinnaTasksError, match=r"'task' \(tasks are made by the task tools\)"):
        check_entity_type("task")
    # The library itself takes any type: tasks are entities of type "task".
    assert memory.add_entity("job-1", "task") > 0


def test_sessions_keep_topics_and_entity_ids(memory: MinnaMemory) -> None:
    jack = memory.add_entity("Jack", "person")
    first = memory.summarize_session("s-1", "kick-off")
    second = memory.summarize_session(
        session_id="session-2026-01-18",
        summary="Completed Minna integration",
        topics=["minna-memory", "documentation"],
        entity_ids=[jack, "spine"],
    )
    assert second > first
    newest, oldest = memory.get_context(limit=5)
    assert newest.id == second
    assert (newest.topics, newest.entity_ids) == (
        ["minna-memory", "documentation"],
        [jack, "spine"],
    )
    assert (oldest.topics, oldest.entity_ids) == ([], [])
    with pytest.raises(TypeError, match="topics must be a list, not str"):
        memory.summarize_session("s-3", "x", topics="abc")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="an entity id must be an integer or a name"):
        memory.summarize_session("s-3", "x", entity_ids=[1.5])  # type: ignore[list-item]
    assert len(memory.get_context(limit=10)) == 2


def test_records_are_read_only_and_copy_and_pickle(memory: MinnaMemory) -> None:
    memory.store("alice", "city", "Lisbon")
    m = memory.recall()[0]
    assert isinstance(m, Memory)
    with pytest.raises(TypeError, match="a Memory is read-only"):
        m["value"] = "Porto"
    with pytest.raises(TypeError, match="read-only"):
        m.value = "Porto"
    with pytest.raises(TypeError, match="read-only"):
        m.update(value="Porto")
    with pytest.raises(AttributeError, match="Memory has no field 'colour'"):
        _ = m.colour
    assert pickle.loads(pickle.dumps(m)) == m
    assert type(copy.deepcopy(m)) is Memory
    assert copy.copy(m) == m
    assert repr(m).startswith("Memory({'id': 1,")
    with pytest.raises(TypeError, match="Memory is missing entity, attribute, value,"):
        Memory(id=1)


def _write_01_file(path: Path) -> None:
    """A file exactly as 0.1 left it: its schema (migration 1) and rows of every kind."""
    conn = sqlite3.connect(path)
    for statement in statements(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.executemany(
        "INSERT INTO preferences (key, value, category, updated_at) VALUES (?, ?, ?, ?)",
        [
            ("theme", "dark", "general", "2026-01-01T00:00:00.000000+00:00"),
            ("editor", "vim", "tools", "2026-01-02T00:00:00.000000+00:00"),
            ("line_length", 100, "code_style", "2026-01-03T00:00:00.000000+00:00"),
        ],
    )
    conn.execute(
        "INSERT INTO memories (entity, attribute, value, source, confidence, context,"
        " created_at) VALUES ('Jack', 'timezone', 'UTC-5', 'user', 0.9, 'chat',"
        " '2026-01-01T00:00:00.000000+00:00')"
    )
    conn.execute(
        "INSERT INTO sessions (session_id, summary, topics, created_at)"
        " VALUES ('s-1', 'old session', '[\"a\"]', '2026-01-01T00:00:00.000000+00:00')"
    )
    conn.commit()
    conn.close()


def test_a_01_file_migrates_keeping_every_preference_and_memory(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _write_01_file(path)
    with MinnaMemory(path) as memory:
        assert memory.connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert [(p["category"], p["key"], p["value"]) for p in memory.get_preferences()] == [
            ("code_style", "line_length", 100),
            ("general", "theme", "dark"),
            ("tools", "editor", "vim"),
        ]
        assert memory.get_preferences()[1]["updated_at"] == "2026-01-01T00:00:00.000000+00:00"
        assert memory.set_preference("general", "theme") == "dark"
        memory.set_preference("writing", "theme", "serif")  # one key, two categories
        assert memory.set_preference("general", "theme") == "dark"
        (old,) = memory.recall(entity="Jack")
        assert (old.value, old.confidence, old.context) == ("UTC-5", 0.9, "chat")
        (session,) = memory.get_context()
        assert (session.summary, session.topics, session.entity_ids) == ("old session", ["a"], [])
        assert memory.search("UTC")[0].id == old.id
    with MinnaMemory(path) as again:  # opening again changes nothing
        assert len(again.get_preferences()) == 4


def test_a_file_written_by_01_opens_migrates_and_keeps_everything(tmp_path: Path) -> None:
    """tests/data/minna-0.1.sqlite was written by minna-tasks 0.1.0 itself: two tasks (one
    completed), facts, an entity with an alias, a relation, a session, three preferences."""
    path = tmp_path / "minna.db"
    path.write_bytes((Path(__file__).parent / "data" / "minna-0.1.sqlite").read_bytes())
    with sqlite3.connect(path) as conn:
        old_memories = conn.execute("SELECT * FROM memories ORDER BY id").fetchall()
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    with TaskStore(path) as store:
        memory = store.memory
        assert memory.connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        rows = memory.connection.execute(
            "SELECT id, entity, attribute, value, source, confidence, context, created_at,"
            " verified_at FROM memories ORDER BY id"
        ).fetchall()
        assert rows == old_memories
        assert [(p["category"], p["key"], p["value"]) for p in memory.get_preferences()] == [
            ("code_style", "line_length", 100),
            ("general", "theme", "dark"),
            ("tools", "editor", "vim"),
        ]
        assert [(t.id, t.status) for t in store.list()] == [
            ("t-1", "completed"),
            ("t-2", "pending"),
        ]
        assert store.get("t-1").result == {"words": 120}
        assert [h.to_state for h in store.history("t-1")] == [
            "pending",
            "in_progress",
            "review",
            "completed",
        ]
        assert memory.who("jj")["facts"] == {"timezone": "UTC+1"}  # type: ignore[index]
        assert [r["entity"] for r in memory.get_related("Jack")] == ["t-1"]
        (session,) = memory.get_context()
        assert (session.summary, session.topics, session.entity_ids) == (
            "first session",
            ["setup"],
            [],
        )
        assert memory.detect_conflicts()["conflicts"] == [
            {
                "entity": "Jack",
                "attribute": "timezone",
                "values": ["UTC-5", "UTC+1"],
                "memory_ids": [m[0] for m in old_memories if m[1] == "Jack"],
            }
        ]
        store.add("after the upgrade")
        assert store.get("t-3").status == "pending"
