"""TaskStore: every method, its bookkeeping, and bad input that must write nothing."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from minna_tasks import (
    InvalidTransition,
    MinnaMemory,
    MinnaTasksError,
    StateMachine,
    Task,
    TaskNotFound,
    TaskState,
    TaskStore,
    Transition,
    TransitionConflict,
)
from minna_tasks.errors import StoreError, TaskExists, UnknownState

from .conftest import dump, unchanged


def later(minutes: float = 10) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def test_add_stores_a_task_entity_with_triples(store: TaskStore) -> None:
    task = store.add(
        "Write report", description="quarterly", priority=2, max_attempts=5, payload={"pages": 3}
    )
    assert task.id == "t-1"
    assert (task.title, task.description, task.status) == ("Write report", "quarterly", "pending")
    assert (task.priority, task.attempts, task.max_attempts) == (2, 0, 5)
    assert task.payload == {"pages": 3}
    assert task.state is TaskState.PENDING
    assert (task.owner, task.lease_expires_at, task.result, task.error) == (None, None, None, None)
    memory = store.memory
    assert memory.recall(entity=task.id, attribute="status")[0]["value"] == "pending"
    assert memory.get_entity(task.id)["entity_type"] == "task"  # type: ignore[index]
    assert store.get(task.id) == task
    assert store.add("second").id == "t-2"


def test_add_with_own_id_and_duplicate(store: TaskStore, db_path: Path) -> None:
    store.add("mine", task_id="build-42")
    before = dump(db_path)
    with pytest.raises(TaskExists, match="task 'build-42' already exists"):
        store.add("again", task_id="build-42")
    assert dump(db_path) == before
    # An automatic id never collides with a custom one.
    store.add("x", task_id="t-2")
    assert [t.id for t in store.add_many(["a", "b"])] == ["t-3", "t-4"]


def test_add_many_is_one_transaction(store: TaskStore, db_path: Path) -> None:
    tasks = store.add_many(["a", {"title": "b", "priority": 3}, {"title": "c", "task_id": "c1"}])
    assert [t.title for t in tasks] == ["a", "b", "c"]
    assert tasks[2].id == "c1"
    before = dump(db_path)
    with pytest.raises(TypeError, match="priority must be an integer"):
        store.add_many(["d", {"title": "e", "priority": "high"}])
    with pytest.raises(TaskExists):
        store.add_many(["d", {"title": "e", "task_id": "c1"}])
    with pytest.raises(TaskExists):
        store.add_many([{"title": "d", "task_id": "z"}, {"title": "e", "task_id": "z"}])
    assert dump(db_path) == before
    assert store.stats()["pending"] == 3


BAD_ADDS = [
    ({"title": ""}, ValueError, "title must not be empty"),
    ({"title": "   "}, ValueError, "title must not be empty"),
    ({"title": None}, TypeError, "title must be a string"),
    ({"title": "x", "priority": "1"}, TypeError, "priority must be an integer, not str"),
    ({"title": "x", "priority": 1.5}, TypeError, "priority must be an integer, not float"),
    ({"title": "x", "priority": True}, TypeError, "priority must be an integer, not bool"),
    ({"title": "x", "max_attempts": 0}, ValueError, "max_attempts must be at least 1, not 0"),
    ({"title": "x", "payload": {"f": object()}}, ValueError, "payload is not JSON-serialisable"),
    ({"title": "x", "payload": float("nan")}, ValueError, "payload is not JSON-serialisable"),
    ({"title": "x", "task_id": ""}, ValueError, "task_id must not be empty"),
    ({"title": "x", "task_id": "a\x00b"}, ValueError, "task_id must not contain NUL"),
    ({"title": "bad \udcff"}, ValueError, "title is not valid UTF-8 text"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_ADDS)
def test_bad_add_writes_nothing(
    store: TaskStore,
    db_path: Path,
    kwargs: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    store.add("existing")
    with unchanged(db_path), pytest.raises(error, match=message):
        store.add(**kwargs)  # type: ignore[arg-type]


def test_task_id_that_names_another_entity(store: TaskStore) -> None:
    store.memory.add_entity("alice", "person")
    with pytest.raises(MinnaTasksError, match="id 'alice' is already used by a 'person' entity"):
        store.add("x", task_id="alice")


def test_get_unknown_and_list(store: TaskStore) -> None:
    with pytest.raises(TaskNotFound, match="task 'nope' not found"):
        store.get("nope")
    a, b, c = store.add_many(["a", "b", "c"])
    store.claim("w1")
    assert [t.id for t in store.list()] == [a.id, b.id, c.id]
    assert [t.id for t in store.list(status="pending")] == [b.id, c.id]
    assert [t.id for t in store.list(status=["pending", "in_progress"])] == [a.id, b.id, c.id]
    assert [t.id for t in store.list(owner="w1")] == [a.id]
    assert [t.id for t in store.list(limit=1)] == [a.id]
    with pytest.raises(UnknownState):
        store.list(status="done")


def test_claim_order_priority_then_age(store: TaskStore) -> None:
    low = store.add("low", priority=0)
    high1 = store.add("high1", priority=9)
    mid = store.add("mid", priority=5)
    high2 = store.add("high2", priority=9)
    assert [t.id for t in store.queue()] == [high1.id, high2.id, mid.id, low.id]
    claimed = [store.claim("w") for _ in range(4)]
    assert [t.id for t in claimed if t] == [high1.id, high2.id, mid.id, low.id]
    assert store.claim("w") is None


def test_claim_sets_owner_and_lease(store: TaskStore) -> None:
    store.add("a")
    before = datetime.now(UTC)
    task = store.claim("worker-1", lease_seconds=60)
    assert task is not None
    assert (task.status, task.owner) == ("in_progress", "worker-1")
    lease = datetime.fromisoformat(task.lease_expires_at or "")
    assert before + timedelta(seconds=59) < lease < before + timedelta(seconds=62)
    (step,) = store.history(task.id)[1:]
    assert (step.from_state, step.to_state, step.actor, step.note) == (
        "pending",
        "in_progress",
        "worker-1",
        "claimed",
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"worker": ""}, ValueError, "worker must not be empty"),
        ({"worker": None}, TypeError, "worker must be a string"),
        ({"worker": "w", "lease_seconds": -5}, ValueError, "lease_seconds must be a positive"),
        ({"worker": "w", "lease_seconds": 0}, ValueError, "lease_seconds must be a positive"),
        ({"worker": "w", "lease_seconds": "5"}, TypeError, "lease_seconds must be a number"),
    ],
)
def test_bad_claim_writes_nothing(
    store: TaskStore,
    db_path: Path,
    kwargs: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    store.add("a")
    with unchanged(db_path), pytest.raises(error, match=message):
        store.claim(**kwargs)  # type: ignore[arg-type]


def test_transition_full_cycle_and_history(store: TaskStore) -> None:
    task = store.add("a")
    store.claim("w")
    reviewed = store.transition(
        task.id, "review", expected="in_progress", actor="w", result={"answer": 42}
    )
    assert reviewed.result == {"answer": 42}
    assert reviewed.owner == "w"  # the lease holds through review
    done = store.transition(
        task.id, TaskState.COMPLETED, expected="review", actor="w", note="looks right"
    )
    assert (done.status, done.owner, done.lease_expires_at) == ("completed", None, None)
    history = store.history(task.id)
    assert [(h.from_state, h.to_state) for h in history] == [
        (None, "pending"),
        ("pending", "in_progress"),
        ("in_progress", "review"),
        ("review", "completed"),
    ]
    assert history[-1] == Transition(
        task.id, "review", "completed", history[-1].at, "w", "looks right"
    )
    stamps = [h.at for h in history]
    assert stamps == sorted(stamps)


def test_rejected_move_leaves_file_unchanged(store: TaskStore, db_path: Path) -> None:
    task = store.add("a")
    before = dump(db_path)
    with pytest.raises(InvalidTransition) as info:
        store.transition(task.id, "completed", actor="me")
    assert str(info.value) == (
        f"cannot move {task.id} from pending to completed: task {task.id} is pending; "
        "it can move to: in_progress"
    )
    assert info.value.allowed == ("in_progress",)
    with pytest.raises(UnknownState, match="unknown state 'done'"):
        store.transition(task.id, "done")
    with pytest.raises(TaskNotFound):
        store.transition("t-999", "in_progress")
    with pytest.raises(ValueError, match="result is not JSON-serialisable"):
        store.transition(task.id, "in_progress", result={1, 2})
    assert dump(db_path) == before


def test_expected_conflict(store: TaskStore, db_path: Path) -> None:
    task = store.add("a")
    store.claim("w1")
    before = dump(db_path)
    with pytest.raises(TransitionConflict) as info:
        store.transition(task.id, "in_progress", expected="pending", actor="w2")
    assert str(info.value) == (
        f"task {task.id} is in_progress, not pending: it moved under you; "
        "it can move to: review, pending, failed"
    )
    with pytest.raises(TransitionConflict, match="held by w1, not w2"):
        store.transition(task.id, "review", expected="in_progress", actor="w2")
    assert dump(db_path) == before


def test_review_to_pending_counts_an_attempt_then_fails(store: TaskStore) -> None:
    task = store.add("a", max_attempts=2)
    store.claim("w")
    store.transition(task.id, "review", actor="w")
    back = store.transition(task.id, "pending", actor="w", note="wrong answer")
    assert (back.status, back.attempts, back.owner) == ("pending", 1, None)
    store.claim("w")
    store.transition(task.id, "review", actor="w")
    failed = store.transition(task.id, "pending", actor="w", note="wrong again")
    assert (failed.status, failed.attempts) == ("failed", 2)
    assert store.history(task.id)[-1].note == "wrong again; attempts used up (2/2)"


def test_fail_records_error(store: TaskStore) -> None:
    task = store.add("a", max_attempts=3)
    store.claim("w")
    failed = store.fail(task.id, "w", error="ValueError: bad", expected="in_progress")
    assert (failed.status, failed.attempts, failed.error) == ("pending", 1, "ValueError: bad")
    with pytest.raises(InvalidTransition, match="task t-1 is pending"):
        store.fail(task.id, "w")


def test_release_heartbeat_and_ownership(store: TaskStore, db_path: Path) -> None:
    task = store.add("a")
    store.claim("w1", lease_seconds=30)
    old = store.get(task.id).lease_expires_at or ""
    time.sleep(0.002)
    beat = store.heartbeat(task.id, "w1", lease_seconds=600)
    assert (beat.lease_expires_at or "") > old
    before = dump(db_path)
    with pytest.raises(TransitionConflict, match="held by w1, not w2"):
        store.heartbeat(task.id, "w2")
    with pytest.raises(TransitionConflict, match="held by w1, not w2"):
        store.release(task.id, "w2")
    assert dump(db_path) == before
    released = store.release(task.id, "w1")
    assert (released.status, released.attempts, released.owner) == ("pending", 0, None)
    with pytest.raises(TransitionConflict, match="is pending and not held by anyone, not w1"):
        store.heartbeat(task.id, "w1")


def test_recover_expired_leases_only(store: TaskStore) -> None:
    a, b, c = store.add_many([{"title": "a", "max_attempts": 1}, "b", "c"])
    store.claim("dead-1", lease_seconds=1)
    store.claim("dead-2", lease_seconds=1)
    store.transition(b.id, "review", actor="dead-2")
    store.claim("alive", lease_seconds=3600)
    assert store.recover() == []  # nothing has expired yet
    recovered = store.recover(now=later(1))
    assert [(t.id, t.status, t.attempts, t.owner) for t in recovered] == [
        (a.id, "failed", 1, None),
        (b.id, "pending", 1, None),
    ]
    assert store.get(c.id).status == "in_progress"  # live lease untouched
    assert "lease of dead-2 expired" in (store.get(b.id).error or "")
    assert store.history(b.id)[-1].actor == "recover"


def test_retry_failed(store: TaskStore, db_path: Path) -> None:
    task = store.add("a", max_attempts=1)
    store.claim("w")
    store.fail(task.id, "w", error="boom")
    assert store.get(task.id).status == "failed"
    retried = store.retry(task.id)
    assert (retried.status, retried.attempts) == ("pending", 0)
    before = dump(db_path)
    # Nothing moved under anyone: the task is simply not failed.
    with pytest.raises(
        InvalidTransition,
        match=r"^cannot retry t-1: task t-1 is pending, not failed; only a failed task can be "
        r"retried; it can move to: in_progress$",
    ):
        store.retry(task.id)
    assert dump(db_path) == before


def test_messages_say_in_for_states_that_are_places(store: TaskStore) -> None:
    store.add("a")
    store.claim("w")
    store.transition("t-1", "review", actor="w")
    with pytest.raises(InvalidTransition, match="task t-1 is in review; it can move to"):
        store.transition("t-1", "in_progress")
    with pytest.raises(TransitionConflict, match="task t-1 is in review, not pending"):
        store.transition("t-1", "completed", expected="pending")


def test_a_forced_move_of_a_held_task_is_recorded_as_forced(store: TaskStore) -> None:
    store.add("a")
    store.claim("alice")
    with pytest.raises(TransitionConflict, match="held by alice, not bob") as refused:
        store.transition("t-1", "review", actor="bob")
    assert refused.value.holder == "alice"
    moved = store.transition("t-1", "review", actor="bob", note="alice is away", force=True)
    assert moved.status == "review"
    step = store.history("t-1")[-1]
    assert (step.actor, step.note) == ("bob", "forced (held by alice): alice is away")
    # The holder itself needs no force, and nothing is recorded as forced.
    store.transition("t-1", "completed", actor="alice", force=True)
    assert store.history("t-1")[-1].note is None


def test_completed_is_terminal(store: TaskStore) -> None:
    task = store.add("a")
    store.claim("w")
    store.transition(task.id, "review")
    store.transition(task.id, "completed")
    for state in ("pending", "in_progress", "review", "failed"):
        with pytest.raises(InvalidTransition, match="it is terminal and cannot move"):
            store.transition(task.id, state)


def test_stats(store: TaskStore) -> None:
    assert store.stats() == {
        "pending": 0,
        "in_progress": 0,
        "review": 0,
        "failed": 0,
        "completed": 0,
    }
    store.add_many(["a", "b", "c"])
    store.claim("w")
    assert store.stats() == {
        "pending": 2,
        "in_progress": 1,
        "review": 0,
        "failed": 0,
        "completed": 0,
    }


def test_as_of_at_several_points(store: TaskStore) -> None:
    task = store.add("a", payload={"v": 1})
    t0 = datetime.now(UTC)
    time.sleep(0.002)
    store.claim("w")
    t1 = datetime.now(UTC)
    time.sleep(0.002)
    store.transition(task.id, "review", actor="w", result="r1")
    t2 = datetime.now(UTC)
    time.sleep(0.002)
    store.transition(task.id, "completed", actor="w")
    assert store.as_of(task.id, t0).status == "pending"
    assert store.as_of(task.id, t0).owner is None
    at1 = store.as_of(task.id, t1)
    assert (at1.status, at1.owner, at1.result) == ("in_progress", "w", None)
    at2 = store.as_of(task.id, t2.isoformat())
    assert (at2.status, at2.result, at2.payload) == ("review", "r1", {"v": 1})
    assert store.as_of(task.id, later()) == store.get(task.id)
    with pytest.raises(TaskNotFound, match="did not exist at"):
        store.as_of(task.id, t0 - timedelta(hours=1))
    with pytest.raises(ValueError, match="not an ISO-8601 time"):
        store.as_of(task.id, "yesterday")


def test_to_dict_from_dict_round_trip(store: TaskStore) -> None:
    task = store.add("a", payload=[1, 2])
    assert Task.from_dict(task.to_dict()) == task
    (step,) = store.history(task.id)
    assert Transition.from_dict(step.to_dict()) == step


@pytest.mark.sqlite_only
def test_plain_sqlite_append_is_the_current_status(store: TaskStore, db_path: Path) -> None:
    task = store.add("a")
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(
            "INSERT INTO memories (entity, attribute, value, source, confidence, context,"
            " created_at) VALUES (?, 'status', 'in_progress', 'other-tool', 1.0, 'by hand',"
            " strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))",
            (task.id,),
        )
        conn.execute(
            "INSERT INTO memories (entity, attribute, value, created_at)"
            " VALUES (?, 'priority', '7', strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))",
            (task.id,),
        )
    conn.close()
    current = store.get(task.id)
    assert (current.status, current.priority) == ("in_progress", 7)
    assert store.history(task.id)[-1].actor == "other-tool"
    assert store.memory.recall(entity=task.id, attribute="status")[0]["value"] == "in_progress"


def test_tasks_written_through_memory_api_appear(db_path: Path) -> None:
    """A task written with the documented Minna calls, before TaskStore ever opened the file."""
    with MinnaMemory(db_path) as memory:
        memory.add_entity("job-1", "task")
        memory.store(entity="job-1", attribute="title", value="from another tool")
        memory.store(entity="job-1", attribute="status", value="pending")
    with TaskStore(db_path) as store:
        task = store.get("job-1")
        assert (task.title, task.status, task.attempts, task.max_attempts) == (
            "from another tool",
            "pending",
            0,
            3,
        )
        assert store.claim("w") == store.get("job-1")


def test_custom_machine_enforced_by_store(tmp_path: Path) -> None:
    machine = StateMachine(
        {"todo": ["doing"], "doing": ["done", "todo"], "done": []},
        initial="todo",
        claimed="doing",
        held=["doing"],
        failed=None,
    )
    with TaskStore(tmp_path / "c.db", machine=machine) as store:
        task = store.add("x")
        assert task.status == "todo"
        with pytest.raises(InvalidTransition, match="it can move to: doing"):
            store.transition(task.id, "done")
        claimed = store.claim("w")
        assert claimed is not None
        assert claimed.status == "doing"
        assert store.transition(task.id, "done", actor="w").status == "done"
        assert store.stats() == {"todo": 0, "doing": 0, "done": 1}


def test_store_on_memory_and_shared_memory_object(memory: MinnaMemory) -> None:
    store = TaskStore(memory)
    task = store.add("in memory")
    assert memory.current(task.id, "title") == "in memory"
    store.close()
    assert memory.current(task.id, "status") == "pending"  # memory still open


def test_directory_and_non_sqlite_paths(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        TaskStore(tmp_path)
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(MinnaTasksError, match="is not a SQLite database"):
        TaskStore(bad)
    assert bad.read_bytes() == b"\x00garbage" * 100


@pytest.mark.sqlite_only
def test_newer_task_schema_refused(db_path: Path) -> None:
    TaskStore(db_path).close()
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE schema_components SET version = 99 WHERE name = 'tasks'")
    conn.close()
    before = dump(db_path)
    with pytest.raises(StoreError, match="tasks schema version 99, newer than"):
        TaskStore(db_path)
    assert dump(db_path) == before


def test_synchronous_full_selectable(tmp_path: Path) -> None:
    with TaskStore(tmp_path / "f.db", synchronous="FULL") as store:
        assert store.memory.connection.execute("PRAGMA synchronous").fetchone()[0] == 2
        store.add("durable")


def _rebuilt_projection(db_path: Path) -> list[tuple[object, ...]]:
    """The projection as the migration's backfill computes it from the triples alone."""
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("DELETE FROM task_current")
        conn.execute("DELETE FROM schema_components WHERE name = 'tasks'")
    conn.close()
    TaskStore(db_path).close()  # re-runs the migration, whose backfill replays every triple
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("SELECT * FROM task_current ORDER BY id").fetchall()
    finally:
        conn.close()


@pytest.mark.sqlite_only
def test_bulk_writes_build_the_projection_the_triggers_would(
    store: TaskStore, db_path: Path
) -> None:
    """add_many and restore write projection rows directly; a replay of the log agrees."""
    store.add_many(["a", {"title": "b", "priority": 4, "payload": {"k": [1]}}])
    stamp = "2026-01-01T00:00:00.000000+00:00"
    facts = [
        {"attribute": "title", "value": "restored", "created_at": stamp},
        {"attribute": "priority", "value": "7", "created_at": stamp},  # text, as plain SQL
        {"attribute": "attempts", "value": "abc", "created_at": stamp},
        {"attribute": "status", "value": "pending", "created_at": stamp, "source": "x"},
        {"attribute": "notes", "value": "not a task field", "created_at": stamp},
        {"attribute": "owner", "value": None, "created_at": "2026-01-02T00:00:00.000000+00:00"},
    ]
    store.restore([{"id": "r-1", "created_at": stamp, "facts": facts}])
    restored = store.get("r-1")
    assert (restored.priority, restored.attempts, restored.description) == (7, 0, "")
    assert restored.updated_at == "2026-01-02T00:00:00.000000+00:00"
    assert store.as_of("r-1", later()) == restored
    conn = sqlite3.connect(db_path)
    before = conn.execute("SELECT * FROM task_current ORDER BY id").fetchall()
    conn.close()
    store.close()
    after = _rebuilt_projection(db_path)
    assert [row[1:] for row in after] == [row[1:] for row in before]  # all but seq
