"""Dependencies: ready means every dependency completed; counts, cycles, log, processes."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from minna_tasks import (
    DependencyCycle,
    DependencyError,
    MinnaTasksError,
    StateMachine,
    TaskNotFound,
    TaskStore,
    jsonio,
    state_machine_loop,
)
from minna_tasks.engines.sqlite.projection import queue_sql
from minna_tasks.loop import waits_for_held
from minna_tasks.memory import MinnaMemory, utcnow
from minna_tasks.store import TASK_MIGRATIONS

from .conftest import unchanged

ROOT = Path(__file__).resolve().parent.parent


def complete(store: TaskStore, task_id: str) -> None:
    """Drive one task (which must be the next ready one) to completed."""
    task = store.claim("w")
    assert task is not None
    assert task.id == task_id
    store.transition(task_id, "review", actor="w")
    store.transition(task_id, "completed", actor="w")


def counts_right(store: TaskStore) -> bool:
    return store.memory.task_ops.count_errors() == []


def diamond(store: TaskStore) -> tuple[str, str, str, str]:
    a = store.add("A").id
    b = store.add("B", depends_on=[a]).id
    c = store.add("C", depends_on=[a]).id
    d = store.add("D", depends_on=[b, c]).id
    return a, b, c, d


# -- ready and blocked -------------------------------------------------------------


def test_claim_takes_ready_tasks_only_in_a_valid_order(store: TaskStore) -> None:
    a, b, c, d = diamond(store)
    assert store.get(d).depends_on == (b, c)
    assert store.get(d).blocked_by == (b, c)
    assert store.readiness() == {"ready": 1, "blocked": 3}
    assert [t.id for t in store.queue()] == [a]
    assert [t.id for t in store.list(ready=True)] == [a]
    assert [t.id for t in store.list(blocked=True)] == [b, c, d]
    assert store.stats()["pending"] == 4  # stats keeps its shape
    claimed = store.claim("w")
    assert claimed is not None
    assert claimed.id == a
    assert store.claim("w2") is None  # B, C and D wait for A
    store.transition(a, "review", actor="w")
    store.transition(a, "completed", actor="w")
    assert store.get(d).blocked_by == (b, c)
    assert [t.id for t in store.queue()] == [b, c]
    complete(store, b)
    assert store.get(d).blocked_by == (c,)
    complete(store, c)
    assert store.get(d).blocked_by == ()
    complete(store, d)
    assert store.readiness() == {"ready": 0, "blocked": 0}
    assert counts_right(store)


def test_priority_order_holds_among_ready_tasks(store: TaskStore) -> None:
    gate = store.add("gate")
    store.add("high but blocked", priority=9, depends_on=[gate.id])
    low = store.add("low", priority=1)
    first = store.claim("w")
    assert first is not None
    assert first.id == low.id
    second = store.claim("w")
    assert second is not None
    assert second.id == gate.id
    assert store.claim("w") is None


def test_dependency_on_a_completed_task_is_satisfied_at_once(store: TaskStore) -> None:
    a = store.add("a")
    complete(store, a.id)
    b = store.add("b", depends_on=[a.id])
    assert b.depends_on == (a.id,)
    assert b.blocked_by == ()
    assert [t.id for t in store.queue()] == [b.id]


def test_dependency_on_a_held_task_waits(store: TaskStore) -> None:
    a = store.add("a")
    store.claim("w")
    b = store.add("b", depends_on=[a.id])
    assert b.blocked_by == (a.id,)
    assert store.claim("w2") is None
    store.transition(a.id, "review", actor="w")
    assert store.claim("w2") is None  # review is not done
    store.transition(a.id, "completed", actor="w")
    assert store.get(b.id).blocked_by == ()


def test_failed_dependency_keeps_dependents_blocked_until_retried_and_completed(
    store: TaskStore,
) -> None:
    a = store.add("a", max_attempts=1)
    b = store.add("b", depends_on=[a.id])
    c = store.add("c", depends_on=[b.id])
    store.claim("w")
    store.fail(a.id, "w", error="boom")
    assert store.get(a.id).status == "failed"
    assert store.get(b.id).blocked_by == (a.id,)
    assert store.claim("w") is None
    assert [t.id for t in store.stranded()] == [b.id, c.id]  # c waits behind b, behind a
    store.retry(a.id)
    assert store.get(b.id).blocked_by == (a.id,)  # retried, not completed yet
    assert store.stranded() == []
    complete(store, a.id)
    assert store.get(b.id).blocked_by == ()
    assert [t.id for t in store.queue()] == [b.id]
    assert counts_right(store)


def test_undepend_unblocks_and_is_on_record(store: TaskStore) -> None:
    a = store.add("a", max_attempts=1)
    b = store.add("b", depends_on=[a.id], actor="planner")
    store.claim("w")
    store.fail(a.id, "w")
    task = store.undepend(b.id, a.id, actor="alice")
    assert task.depends_on == ()
    assert task.blocked_by == ()
    assert [t.id for t in store.queue()] == [b.id]
    steps = [(s.from_state, s.to_state, s.actor, s.note) for s in store.history(b.id)]
    assert steps == [
        (None, "pending", "planner", "created"),
        ("pending", "pending", "planner", f"depends on {a.id}"),
        ("pending", "pending", "alice", f"no longer depends on {a.id}"),
    ]
    with pytest.raises(DependencyError, match=f"task {b.id} does not depend on {a.id}"):
        store.undepend(b.id, a.id)


def test_depend_is_refused_for_a_held_or_done_task(store: TaskStore) -> None:
    a = store.add("a")
    b = store.add("b")
    store.claim("w")
    with pytest.raises(DependencyError, match=f"task {a.id} is in_progress"):
        store.depend(a.id, b.id)
    assert store.depend(b.id, a.id).blocked_by == (a.id,)
    assert store.depend(b.id, a.id).depends_on == (a.id,)  # again: no change, no new triple
    assert len(store.history(b.id)) == 2


def test_add_many_specs_may_depend_on_each_other_by_task_id(store: TaskStore) -> None:
    existing = store.add("existing")
    tasks = store.add_many(
        [
            {"title": "post", "task_id": "post", "depends_on": ["summary"]},
            {"title": "summary", "task_id": "summary", "depends_on": ["fetch", existing.id]},
            {"title": "fetch", "task_id": "fetch"},
        ]
    )
    assert [t.blocked_by for t in tasks] == [("summary",), ("fetch", existing.id), ()]
    assert [t.id for t in store.queue()] == [existing.id, "fetch"]
    assert counts_right(store)


# -- refusals write nothing ----------------------------------------------------------


def test_unknown_dependency_is_task_not_found_and_writes_nothing(
    store: TaskStore, db_path: Path
) -> None:
    a = store.add("a")
    with unchanged(db_path):
        with pytest.raises(TaskNotFound, match="'nope'"):
            store.add("b", depends_on=[a.id, "nope"])
        with pytest.raises(TaskNotFound, match="'nope'"):
            store.depend(a.id, "nope")
        with pytest.raises(TaskNotFound, match="'nope'"):
            store.depend("nope", a.id)
        with pytest.raises(TaskNotFound, match="'later'"):
            store.add_many([{"title": "x", "depends_on": ["later"]}, {"title": "later"}])
    store.memory.add_entity("alice", "person")
    with pytest.raises(TaskNotFound, match="'alice'"):  # an entity, but not a task
        store.depend(a.id, "alice")


def test_cycles_are_refused_naming_the_cycle_and_writing_nothing(
    store: TaskStore, db_path: Path
) -> None:
    a = store.add("a")
    b = store.add("b", depends_on=[a.id])
    c = store.add("c", depends_on=[b.id])
    with unchanged(db_path):
        with pytest.raises(DependencyCycle, match=f"{a.id} -> {a.id}") as direct:
            store.depend(a.id, a.id)
        with pytest.raises(DependencyCycle) as indirect:
            store.depend(a.id, c.id)
        with pytest.raises(DependencyCycle) as batch:
            store.add_many(
                [
                    {"title": "x", "task_id": "x", "depends_on": ["z"]},
                    {"title": "y", "task_id": "y", "depends_on": ["x"]},
                    {"title": "z", "task_id": "z", "depends_on": ["y", a.id]},
                ]
            )
    assert direct.value.cycle == (a.id, a.id)
    assert indirect.value.cycle == (a.id, c.id, b.id, a.id)
    assert str(indirect.value).startswith(f"dependency cycle: {a.id} -> {c.id} -> {b.id} -> ")
    assert batch.value.cycle[0] == batch.value.cycle[-1]
    assert set(batch.value.cycle) == {"x", "y", "z"}
    assert isinstance(batch.value, MinnaTasksError)


@pytest.mark.sqlite_only
def test_a_dangling_relation_to_a_new_id_takes_part_in_the_cycle_check(
    store: TaskStore, db_path: Path
) -> None:
    """Another tool's plain-SQL relation may name an id a later add_many creates."""
    a = store.add("a")
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(
            "INSERT INTO relations (from_entity, to_entity, rel_type, created_at)"
            " VALUES (?, 'new', 'depends_on', ?)",
            (a.id, utcnow()),
        )
    conn.close()
    assert store.get(a.id).blocked_by == ("new",)  # a missing task is not done
    with pytest.raises(DependencyCycle):
        store.add_many([{"title": "new", "task_id": "new", "depends_on": [a.id]}])
    assert store.add("new").blocked_by == ()
    assert store.get(a.id).blocked_by == ("new",)
    assert counts_right(store)


# -- stored the Minna way ------------------------------------------------------------------


def test_dependencies_are_relations_and_log_triples(store: TaskStore) -> None:
    a = store.add("a")
    b = store.add("b", depends_on=[a.id], actor="planner")
    related = store.memory.get_related(b.id, rel_type="depends_on")
    assert [(r["entity"], r["direction"]) for r in related] == [(a.id, "out")]
    assert [r["entity"] for r in store.memory.get_related(a.id)] == [b.id]
    log = store.memory.recall(entity=b.id, attribute="depends_on")
    assert [(m["value"], m["source"]) for m in log] == [(f'["{a.id}"]', "planner")]
    with pytest.raises(MinnaTasksError, match="are tasks"):
        store.memory.relate(a.id, b.id, "depends_on")
    with pytest.raises(MinnaTasksError, match="is a task"):
        store.remember(b.id, "depends_on", "[]")
    store.memory.relate(a.id, b.id, "see_also")  # other relations between tasks are fine
    store.memory.add_entity("report", "concept")
    store.memory.add_entity("thing", "concept")
    store.memory.relate("report", "thing", "depends_on")  # and depends_on between other things
    assert store.get(a.id).depends_on == ()


@pytest.mark.parametrize(
    ("from_entity", "to_entity"),
    [("TASK", "thing"), ("TASK", "t-99"), ("thing", "TASK"), ("t-99", "TASK")],
)
def test_relate_refuses_depends_on_touching_one_task(
    store: TaskStore, db_path: Path, from_entity: str, to_entity: str
) -> None:
    """A depends_on with a task at either end, whatever (or wherever) the other end is,
    would be counted as open by the triggers and block the task forever."""
    a = store.add("a")
    store.memory.add_entity("thing", "concept")
    ends = [a.id if end == "TASK" else end for end in (from_entity, to_entity)]
    with unchanged(db_path), pytest.raises(DependencyError, match=f"{a.id} is a task"):
        store.memory.relate(ends[0], ends[1], "depends_on")
    assert store.claim("w").id == a.id  # still claimable


def test_as_of_gives_the_dependencies_as_they_stood(store: TaskStore) -> None:
    a = store.add("a")
    b = store.add("b")
    c = store.add("c", depends_on=[a.id])
    t1 = utcnow()
    time.sleep(0.002)
    store.depend(c.id, b.id)
    complete(store, a.id)
    t2 = utcnow()
    time.sleep(0.002)
    store.undepend(c.id, a.id)
    t3 = utcnow()
    assert (store.as_of(c.id, t1).depends_on, store.as_of(c.id, t1).blocked_by) == (
        (a.id,),
        (a.id,),
    )
    assert (store.as_of(c.id, t2).depends_on, store.as_of(c.id, t2).blocked_by) == (
        (a.id, b.id),
        (b.id,),
    )
    assert store.as_of(c.id, t3).depends_on == (b.id,)
    assert store.as_of(c.id, t3) == store.get(c.id)


# -- counts kept right ---------------------------------------------------------------------


@pytest.mark.sqlite_only
def test_counts_follow_status_changes_made_with_plain_sql(store: TaskStore, db_path: Path) -> None:
    a = store.add("a")
    b = store.add("b", depends_on=[a.id])
    conn = sqlite3.connect(db_path)
    with conn:  # another tool appends a status triple: the projection's triggers follow
        conn.execute(
            "INSERT INTO memories (entity, attribute, value, source, created_at)"
            " VALUES (?, 'status', 'completed', 'other-tool', ?)",
            (a.id, utcnow()),
        )
    assert store.get(b.id).blocked_by == ()
    assert [t.id for t in store.queue()] == [b.id]
    with conn:  # or writes the projection itself
        conn.execute("UPDATE task_current SET status = 'failed' WHERE id = ?", (a.id,))
    assert store.get(b.id).blocked_by == (a.id,)
    assert store.queue() == []
    with conn:  # or deletes the relation
        conn.execute("DELETE FROM relations WHERE from_entity = ?", (b.id,))
    assert store.get(b.id).depends_on == ()
    conn.close()
    assert counts_right(store)


@pytest.mark.sqlite_only
def test_claim_is_an_index_seek_on_ready_rows(store: TaskStore) -> None:
    conn = store.memory.connection
    sql = queue_sql(store.machine.initial)
    plan = " ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
    assert "USING INDEX task_current_queue" in plan
    assert "relations" not in plan
    index_sql = conn.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'task_current_queue'"
    ).fetchone()[0]
    assert "open_deps = 0" in index_sql


def _todo_machine(initial: str = "todo") -> StateMachine:
    return StateMachine(
        {initial: ["doing"], "doing": ["done", initial], "done": []},
        initial=initial,
        claimed="doing",
        held=["doing"],
        failed=None,
    )


def test_the_claim_index_covers_the_machines_queue_state(db_path: Any) -> None:
    """A machine whose queue state is not 'pending' claims through the claim index too."""
    with TaskStore(db_path, machine=_todo_machine()) as store:
        assert store.memory.task_ops.queue_indexed("todo")
        assert not store.memory.task_ops.queue_indexed("pending")
        a = store.add("a", priority=1)
        b = store.add("b", priority=5)
        claimed = store.claim("w")
        assert claimed is not None
        assert claimed.id == b.id
        store.transition(b.id, "done", actor="w")
    with TaskStore(db_path) as store:  # a later open keeps it
        assert store.memory.task_ops.queue_indexed("todo")
        assert [t.id for t in store.queue()] == [a.id]


def test_replace_machine_moves_the_claim_index(db_path: Any) -> None:
    hostile = "to'do"
    with TaskStore(db_path, machine=_todo_machine()) as store:
        store.replace_machine(_todo_machine(hostile))
        ops = store.memory.task_ops
        assert ops.queue_indexed(hostile)
        assert not ops.queue_indexed("todo")
        a = store.add("a")
        assert [t.id for t in store.queue()] == [a.id]
        claimed = store.claim("w")
        assert claimed is not None
        assert claimed.id == a.id
        assert store.claim("w") is None
        assert counts_right(store)


@pytest.mark.sqlite_only
def test_a_custom_queue_state_claims_by_an_index_seek(tmp_path: Path) -> None:
    with TaskStore(tmp_path / "m.db", machine=_todo_machine()) as store:
        conn = store.memory.connection
        sql = queue_sql("todo")
        plan = " ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert "USING INDEX task_current_queue" in plan


def test_a_custom_machine_counts_its_own_done_state(tmp_path: Path) -> None:
    machine = StateMachine(
        {"todo": ["doing"], "doing": ["done", "todo"], "done": []},
        initial="todo",
        claimed="doing",
        held=["doing"],
        failed=None,
    )
    with TaskStore(tmp_path / "m.db", machine=machine) as store:
        a = store.add("a")
        b = store.add("b", depends_on=[a.id])
        assert store.claim("w") is not None
        assert store.claim("w") is None
        store.transition(a.id, "done", actor="w")
        assert store.get(b.id).blocked_by == ()
        assert [t.id for t in store.queue()] == [b.id]
        assert counts_right(store)


def test_a_file_from_before_dependencies_migrates_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    memory = MinnaMemory(path)  # a 0.1 file: the first projection migration only
    memory.ensure_component("tasks", TASK_MIGRATIONS[:1])
    with memory.transaction() as conn:
        for n, (title, priority) in enumerate([("one", 0), ("two", 0), ("three", 5)], 1):
            stamp = utcnow()
            conn.execute(
                "INSERT INTO entities (name, entity_type, created_at) VALUES (?, 'task', ?)",
                (f"t-{n}", stamp),
            )
            memory.append(
                [
                    (f"t-{n}", "title", title, "cli", None),
                    (f"t-{n}", "priority", priority, "cli", None),
                    (f"t-{n}", "status", "pending", "cli", "created"),
                ],
                stamp,
            )
        memory.append([("t-3", "status", "in_progress", "w", "claimed")], utcnow())
    before = memory.connection.execute("SELECT count(*) FROM memories").fetchone()[0]
    memory.close()
    with TaskStore(path) as store:
        assert [t.title for t in store.list()] == ["one", "two", "three"]
        assert store.get("t-3").status == "in_progress"
        assert store.readiness() == {"ready": 2, "blocked": 0}
        b = store.add("four", depends_on=["t-1"])
        assert b.blocked_by == ("t-1",)
        assert counts_right(store)
        version = store.memory.connection.execute(
            "SELECT version FROM schema_components WHERE name = 'tasks'"
        ).fetchone()[0]
        assert version == len(TASK_MIGRATIONS)
        count = store.memory.connection.execute("SELECT count(*) FROM memories").fetchone()[0]
        assert count > before


# -- the loop ------------------------------------------------------------------------------


def test_loop_waits_for_a_held_task_that_others_wait_for(db_path: Path) -> None:
    with TaskStore(db_path) as store:
        a = store.add("a")
        b = store.add("b", depends_on=[a.id])
        assert store.claim("elsewhere") is not None
    executed: list[str] = []
    result: dict[str, int] = {}

    def work() -> None:
        with TaskStore(db_path) as mine:
            result.update(state_machine_loop(mine, lambda t: executed.append(t.id)))

    thread = threading.Thread(target=work)
    thread.start()
    time.sleep(0.3)
    assert thread.is_alive()  # nothing ready, but a is held and b waits for it
    with TaskStore(db_path) as store:
        store.transition(a.id, "review", actor="elsewhere")
        store.transition(a.id, "completed", actor="elsewhere")
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert executed == [b.id]


def test_the_loop_tries_again_when_a_task_became_ready_after_its_claim_looked(
    store: TaskStore,
) -> None:
    """A completion between the loop's empty claim and its look at the queue leaves a
    ready task and nothing blocked: the loop must try again, not end (it did, racing)."""
    assert not waits_for_held(store, None, 0.0)  # an empty queue ends the loop
    a = store.add("a")
    store.add("b", depends_on=[a.id])
    assert store.claim("elsewhere") is not None
    assert waits_for_held(store, None, 0.0)  # b waits for a, which is held
    store.transition(a.id, "review", actor="elsewhere")
    store.transition(a.id, "completed", actor="elsewhere")
    assert store.readiness() == {"ready": 1, "blocked": 0}
    assert waits_for_held(store, None, 0.0)  # b is ready now: claim again


def test_loop_ends_with_tasks_stranded_behind_a_failed_one(store: TaskStore) -> None:
    a = store.add("a", max_attempts=1)
    b = store.add("b", depends_on=[a.id])

    def execute(task: object) -> None:
        raise RuntimeError("no")

    summary = state_machine_loop(store, execute)
    assert (summary["failed"], summary["blocked"]) == (1, 1)
    assert store.get(a.id).status == "failed"
    assert [t.id for t in store.stranded()] == [b.id]


# -- real processes ---------------------------------------------------------------------


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.dep_workers", *args],
        cwd=ROOT,
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_diamond_with_four_worker_processes(db_path: Path, tmp_path: Path) -> None:
    with TaskStore(db_path) as store:
        a, b, c, d = diamond(store)
    log = tmp_path / "log"
    procs = [start("diamond", str(db_path), str(log), f"w{i}") for i in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    lines = [line.split() for line in log.read_text().splitlines()]
    order = [line[0] for line in lines]
    assert sorted(order) == sorted([a, b, c, d])  # each executed exactly once
    assert order[0] == a
    assert order[-1] == d
    assert all(ready == "1" for _, ready, _ in lines)  # every dependency done at start
    with TaskStore(db_path) as store:
        assert store.stats()["completed"] == 4
        assert counts_right(store)


def test_depend_racing_completion_never_leaves_a_wrong_count(db_path: Path) -> None:
    count = 150
    with TaskStore(db_path) as store:
        store.add_many(
            [{"title": f"dep {i}", "task_id": f"d-{i}", "priority": 10} for i in range(count)]
        )
        waiting = store.add("waits for all", priority=-100)
    completer = start("complete_all", str(db_path), str(count))
    planner = start("depend_all", str(db_path), waiting.id, str(count))
    for p in (completer, planner):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    with TaskStore(db_path) as store:
        task = store.get(waiting.id)
        assert len(task.depends_on) == count
        assert task.blocked_by == ()
        assert [t.id for t in store.queue()] == [waiting.id]
        assert counts_right(store)


# -- JSON files ----------------------------------------------------------------------------


def test_export_import_round_trip_keeps_dependencies_and_as_of(
    store: TaskStore, tmp_path: Path
) -> None:
    a, b, c, d = diamond(store)
    complete(store, a)
    stamps = [utcnow()]
    time.sleep(0.002)
    store.undepend(d, c)
    stamps.append(utcnow())
    time.sleep(0.002)
    store.depend(d, c)
    complete(store, b)
    stamps.append(utcnow())
    path = tmp_path / "tasks.json"
    jsonio.export_tasks(store, path)
    with TaskStore(tmp_path / "copy.db") as copy:
        jsonio.import_tasks(copy, path)
        for task_id in (a, b, c, d):
            assert copy.get(task_id) == store.get(task_id)
            assert copy.history(task_id) == store.history(task_id)
            assert copy.dependents(task_id) == store.dependents(task_id)
            for stamp in stamps:
                assert copy.as_of(task_id, stamp) == store.as_of(task_id, stamp)
        assert [t.id for t in copy.queue()] == [c]
        assert counts_right(copy)


def test_import_refuses_unknown_dependencies_and_cycles_whole(
    store: TaskStore, tmp_path: Path
) -> None:
    a = store.add("a")
    b = store.add("b", depends_on=[a.id])
    path = tmp_path / "tasks.json"
    jsonio.export_tasks(store, path)
    target = tmp_path / "target.db"
    TaskStore(target).close()
    only_b = tmp_path / "only_b.json"
    document = path.read_text().replace(
        path.read_text().split("\n")[1] + "\n", ""
    )  # drop task a's line: b's dependency is in neither the file nor the database
    only_b.write_text(document.replace('"task_count": 2', '"task_count": 1'))
    with TaskStore(target) as other, unchanged(target):
        with pytest.raises(DependencyError, match=f"depends on '{a.id}'.*nothing was imported"):
            jsonio.import_tasks(other, only_b)
    with TaskStore(target) as other:  # with a in the database it imports
        other.add("a")
        jsonio.import_tasks(other, only_b)
        assert other.get(b.id).blocked_by == (a.id,)
    # A file where a waits for b: importing b (which waits for a) over it closes a cycle.
    with TaskStore(tmp_path / "cyc.db") as cyc:
        cyc.add_many([{"title": "x", "task_id": a.id}, {"title": "y", "task_id": b.id}])
        cyc.depend(a.id, b.id)
    with TaskStore(tmp_path / "cyc.db") as cyc, unchanged(tmp_path / "cyc.db"):
        with pytest.raises(DependencyCycle, match="nothing was imported"):
            jsonio.import_tasks(cyc, only_b, on_conflict="replace")


def test_import_replace_leaves_every_open_count_right(store: TaskStore, tmp_path: Path) -> None:
    a, b, c, d = diamond(store)
    path = tmp_path / "tasks.json"
    jsonio.export_tasks(store, path)  # all pending
    complete(store, a)
    complete(store, b)
    store.undepend(d, c)
    assert store.get(d).blocked_by == ()
    jsonio.import_tasks(store, path, on_conflict="replace")
    assert store.get(d).depends_on == (b, c)
    assert store.get(d).blocked_by == (b, c)
    assert store.get(b).blocked_by == (a,)
    assert [t.id for t in store.queue()] == [a]
    assert counts_right(store)


def test_import_refuses_a_malformed_dependency_triple(store: TaskStore, tmp_path: Path) -> None:
    store.add("a")
    b = store.add("b", depends_on=["t-1"])
    path = tmp_path / "tasks.json"
    jsonio.export_tasks(store, path)
    text = path.read_text().replace('"value": "[\\"t-1\\"]"', '"value": "t-1"')
    path.write_text(text)
    with pytest.raises(MinnaTasksError, match="task 1: history must hold|JSON list"):
        jsonio.import_tasks(TaskStore(":memory:"), path)
    assert b.depends_on == ("t-1",)


def test_replacing_the_machine_recounts_against_its_done_state(store: TaskStore) -> None:
    a = store.add("a")
    b = store.add("b", depends_on=[a.id])
    complete(store, a.id)
    assert store.get(b.id).blocked_by == ()
    moves = {
        "pending": ["in_progress"],
        "in_progress": ["review", "pending", "failed"],
        "review": ["accepted", "completed", "failed", "pending"],
        "failed": ["pending"],
        "accepted": [],
        "completed": [],
    }
    store.replace_machine(StateMachine(moves, done="accepted"))
    assert store.get(b.id).blocked_by == (a.id,)  # completed is not done any more
    assert store.readiness() == {"ready": 0, "blocked": 1}
    assert counts_right(store)


def test_the_file_minna_tasks_0_1_wrote_takes_dependencies(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    shutil.copy(ROOT / "tests" / "data" / "minna-0.1.sqlite", path)
    with TaskStore(path) as store:
        before = {t.id: t for t in store.list()}
        assert {t.status for t in before.values()} == {"completed", "pending"}
        done = next(t.id for t in before.values() if t.status == "completed")
        waiting = next(t.id for t in before.values() if t.status == "pending")
        after = store.add("after both", depends_on=[done, waiting])
        assert after.blocked_by == (waiting,)
        assert store.readiness() == {"ready": 1, "blocked": 1}
        assert [t.id for t in store.list() if t.id in before] == list(before)
        assert all(store.get(t) == before[t] for t in before)
        assert counts_right(store)


def test_count_errors_finds_a_wrong_count_and_changes_nothing(db_path: Any) -> None:
    """The count check recounts with the engine's one recount and writes nothing."""
    with TaskStore(db_path) as store:
        a = store.add("a")
        b = store.add("b", depends_on=[a.id])
        assert store.memory.task_ops.count_errors() == []
        with store.memory.transaction() as conn:  # another tool's wrong write
            conn.execute("UPDATE task_current SET open_deps = 5 WHERE id = ?", (b.id,))
        assert store.memory.task_ops.count_errors() == [(b.id, 1, 5, 1, 1)]
        with store.memory.reading() as conn:
            row = conn.execute("SELECT open_deps FROM task_current WHERE id = ?", (b.id,))
            assert row.fetchone()[0] == 5  # found, not fixed
