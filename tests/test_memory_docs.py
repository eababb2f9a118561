"""Every documented Minna memory example, run with only the import changed.

The pages: fbratten/8me-showcase `docs/concepts/minna-memory.md` (reads records
as `memories[0]["value"]`), `labs/12-memory.md` (reads them as `m.entity`) and
`docs/concepts/state-management.md`. Each test body is the page's code as
written, after `from minna_tasks import MinnaMemory` instead of
`from minna_memory import MinnaMemory`; the lines around it only set the stage
(a task, an error) and check what the example promised.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from minna_tasks import MinnaMemory, TaskStore


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the pages use the relative path .spine/minna.db


# -- docs/concepts/minna-memory.md ------------------------------------------------


def test_concept_basic_usage() -> None:
    memory = MinnaMemory(".spine/minna.db")

    # Store memory
    memory.store(entity="my-project", attribute="status", value="In development", confidence=1.0)

    # Recall memories
    memories = memory.recall(entity="my-project")

    # Search across all memories
    results = memory.search("development")

    # Relationships
    memory.relate(from_entity="user", to_entity="my-project", rel_type="works_on")

    assert memories[0]["value"] == "In development"
    assert results[0]["entity"] == "my-project"
    assert memory.get_related("user")[0]["entity"] == "my-project"
    memory.close()


def test_concept_confidence_decay_and_verify() -> None:
    memory = MinnaMemory(".spine/minna.db")
    for i in range(123):  # so that memory 123, which the page verifies, exists
        memory.store(entity="my-project", attribute="note", value=f"n{i}")

    # Initial confidence: 1.0
    # After 90 days without verification: ~0.5

    memories = memory.recall(entity="my-project", include_decay=True, half_life_days=90)

    # Verify to reset decay
    memory.verify(memory_id=123)

    assert memories[0]["confidence"] == pytest.approx(1.0)
    assert memory.recall(entity="my-project", limit=1)[0]["verified_at"] is not None
    memory.close()


def test_concept_progress_tracking() -> None:
    memory = MinnaMemory(".spine/minna.db")
    task = TaskStore(memory).add("Summarise the report")
    memory.store(entity=task.id, attribute="progress", value="page 3")

    previous = memory.recall(entity=task.id, attribute="progress")
    if previous:
        start_from = previous[0]["value"]  # Resume

    assert start_from == "page 3"
    memory.close()


def test_concept_error_pattern_learning() -> None:
    memory = MinnaMemory(".spine/minna.db")
    memory.store("error_patterns", "timeout_api_call", "Add retry with exponential backoff")
    error = SimpleNamespace(message="API call failed: timeout after 30s")

    similar = memory.search(error.message)
    if similar:
        fix = similar[0]["value"]  # Apply known fix

    assert fix == "Add retry with exponential backoff"
    memory.close()


def test_concept_user_preferences() -> None:
    memory = MinnaMemory(".spine/minna.db")
    memory.set_preference("output", "verbosity", "brief")

    verbosity = memory.set_preference("output", "verbosity")

    assert verbosity == "brief"
    memory.close()


# -- labs/12-memory.md ----------------------------------------------------------------


def test_lab_pattern_1_entity_attribute_value() -> None:
    memory = MinnaMemory(".spine/minna.db")

    memory.store(
        entity="project_alpha", attribute="tech_stack", value="Python, FastAPI, PostgreSQL"
    )

    # Later...
    stack = memory.recall(entity="project_alpha", attribute="tech_stack")

    assert stack[0].value == "Python, FastAPI, PostgreSQL"
    memory.close()


def test_lab_pattern_2_session_summaries() -> None:
    memory = MinnaMemory(".spine/minna.db")

    # End of session
    memory.summarize_session(
        session_id="2026-01-19-001",
        summary="Implemented login flow, fixed CORS issue",
        topics=["authentication", "cors", "api"],
    )

    # Next session
    context = memory.get_context(limit=5)  # Last 5 session summaries

    assert [s.summary for s in context] == ["Implemented login flow, fixed CORS issue"]
    assert context[0].topics == ["authentication", "cors", "api"]
    memory.close()


def test_lab_pattern_3_error_patterns() -> None:
    memory = MinnaMemory(".spine/minna.db")

    # When error occurs
    memory.store(
        entity="error_patterns",
        attribute="timeout_api_call",
        value="Solution: Add retry with exponential backoff",
    )

    # When similar error occurs
    solutions = memory.search("timeout")

    assert solutions[0].value == "Solution: Add retry with exponential backoff"
    memory.close()


def test_lab_memory_decay() -> None:
    memory = MinnaMemory(".spine/minna.db")
    memory.store("project", "goal", "ship it")

    # Minna Memory supports confidence decay
    recalled = memory.recall(
        entity="project",
        include_decay=True,  # Apply time-based decay
        half_life_days=90,  # Confidence halves every 90 days
        min_confidence=0.3,  # Filter out low-confidence memories
    )

    assert [m.value for m in recalled] == ["ship it"]
    memory.close()


def test_lab_demo_sessions_and_error_learning(capsys: pytest.CaptureFixture[str]) -> None:
    """memory_demo.py's memory calls, with MinnaMemory in place of the lab's InMemoryStore."""
    memory = MinnaMemory(".spine/minna.db")

    # Pre-populate with some "historical" memories
    memory.add_entity("my_project", "project", aliases=["proj", "myproj"])
    memory.store("my_project", "tech_stack", "Python, FastAPI", source="initial_setup")
    memory.store(
        "error_patterns", "timeout_error", "Use retry with backoff", source="past_learning"
    )

    # MemoryOrchestrator.start_session / end_session
    relevant = memory.recall(entity="my_project", limit=20)
    prior = memory.get_context(limit=5)
    prior_summaries = [s.summary for s in prior]
    memory.store(
        entity="my_project", attribute="session_started", value="s-1", source="orchestrator"
    )
    memory.summarize_session(session_id="s-1", summary="Session 1: Processed 2 tasks", topics=[])
    memory.store(
        entity="my_project",
        attribute="session_ended",
        value="s-1: Session 1: Processed 2 tasks",
        source="orchestrator",
    )

    # Show accumulated memory
    print("\n--- ACCUMULATED MEMORY ---")
    all_memories = memory.recall(limit=20)
    for m in all_memories:
        print(f"  [{m.entity}:{m.attribute}] {m.value[:60]}...")

    print("\n--- SESSION SUMMARIES ---")
    summaries = memory.get_context(limit=5)
    for s in summaries:
        print(f"  [{s.session_id}] {s.summary}")

    # demo_error_learning
    memory.store(
        entity="error_patterns",
        attribute="api_timeout",
        value="Caused by large payload. Solution: chunk requests into smaller batches",
        source="session_1",
    )
    print("\nSearching for timeout solutions...")
    results = memory.search("timeout")
    for r in results:
        print(f"Found: {r.value}")

    # get_relevant_context: deduplicate by id, format by attribute
    seen_ids = set()
    unique = []
    for keyword in ["timeout", "payload"]:
        for m in memory.search(keyword, limit=3):
            if m.id not in seen_ids:
                seen_ids.add(m.id)
                unique.append(m)

    out = capsys.readouterr().out
    assert [m.value for m in relevant] == ["Python, FastAPI"]
    assert prior_summaries == []
    assert "  [my_project:session_ended] s-1: Session 1: Processed 2 tasks..." in out
    assert "  [s-1] Session 1: Processed 2 tasks" in out
    assert "Found: Use retry with backoff" in out
    assert "Found: Caused by large payload." in out
    assert len(unique) == len(seen_ids) == 2
    assert memory.get_entity("myproj").name == "my_project"  # type: ignore[union-attr]
    memory.close()


# -- docs/concepts/state-management.md ------------------------------------------------


def test_state_management_sqlite_option() -> None:
    memory = MinnaMemory(".spine/minna.db")
    task = TaskStore(memory).add("a task")

    # Store task state
    memory.store(entity=task.id, attribute="status", value="in_progress")

    # Recall state
    state = memory.recall(entity=task.id, attribute="status")

    assert state[0]["value"] == state[0].value == "in_progress"
    memory.close()


# -- both ways, one record --------------------------------------------------------------


def test_records_read_both_ways_and_serialise_as_their_dict() -> None:
    memory = MinnaMemory(".spine/minna.db")
    memory.store("alice", "city", "Lisbon")
    memory.add_entity("alice", "person", aliases=["al"])
    memory.summarize_session("s-1", "met alice", topics=["intro"], entity_ids=[1])
    m = memory.recall(entity="alice")[0]
    e = memory.get_entity("al")
    s = memory.get_context()[0]
    assert e is not None
    for record in (m, e, s):
        plain = dict(record)
        assert record == plain
        assert json.loads(json.dumps(record)) == plain
        assert list(record.keys()) == list(type(record).FIELDS)
        for field in record.keys():
            assert getattr(record, field) == record[field]
    assert (m.entity, m["entity"], m.value, m["value"]) == ("alice", "alice", "Lisbon", "Lisbon")
    assert (e.name, e.aliases) == ("alice", ["al"])
    assert (s.session_id, s.entity_ids) == ("s-1", [1])
    memory.close()
