"""JSON files: export -> import reproduces every task and its history; bad files change nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from minna_tasks import MinnaTasksError, StateMachine, TaskStore, jsonio
from minna_tasks.errors import ImportFormatError
from tests.conftest import dump

STATES = StateMachine().states


def _busy_store(path: Path) -> TaskStore:
    """A store whose tasks went through every kind of change."""
    store = TaskStore(path)
    store.add_many(
        [
            {"title": "plain"},
            {"title": "with payload", "payload": {"n": [1, 2, {"k": "é"}]}, "priority": 4},
            {"title": "fails", "max_attempts": 1, "description": "multi\nline"},
            {"title": "done", "task_id": "custom-id"},
        ]
    )
    store.memory.store("t-1", "notes", "an extra triple another tool wrote", source="tool")
    task = store.claim("w1", lease_seconds=60)
    assert task is not None
    store.heartbeat(task.id, "w1", 120)
    store.transition(task.id, "review", actor="w1", result={"ok": True, "x": 1.5})
    store.transition(task.id, "completed", actor="w1", note="verified")
    store.transition("t-3", "in_progress", actor="w2")
    store.fail("t-3", "w2", error="boom")
    store.retry("t-3", note="again")
    store.claim("w3")
    return store


def _snapshot(store: TaskStore) -> list[Any]:
    return [(t, store.history(t.id), store.facts(t.id)) for t in store.list()]


def test_export_then_import_reproduces_tasks_and_history(tmp_path: Path) -> None:
    with _busy_store(tmp_path / "a.db") as source:
        count = jsonio.export_tasks(source, tmp_path / "tasks.json")
        expected = _snapshot(source)
    assert count == 4
    with TaskStore(tmp_path / "b.db") as target:
        result = jsonio.import_tasks(target, tmp_path / "tasks.json")
        assert result == jsonio.ImportResult(imported=4, skipped=0)
        assert _snapshot(target) == expected
        # Exporting the copy gives the same tasks again (only the export time differs).
        jsonio.export_tasks(target, tmp_path / "again.json")
    first = json.loads((tmp_path / "tasks.json").read_text())
    again = json.loads((tmp_path / "again.json").read_text())
    assert first.pop("exported_at") != ""
    assert again.pop("exported_at") != ""
    assert first == again


def test_document_shape(tmp_path: Path) -> None:
    with _busy_store(tmp_path / "a.db") as store:
        jsonio.export_tasks(store, tmp_path / "t.json")
    text = (tmp_path / "t.json").read_text()
    doc = json.loads(text)
    assert (doc["format"], doc["version"], doc["task_count"]) == ("minna-tasks", 1, 4)
    assert len(text.splitlines()) == 4 + 2  # header line, one line per task, closing line
    task = doc["tasks"][1]
    assert {"id", "title", "status", "attempts", "payload", "history"} <= set(task)
    assert task["payload"] == {"n": [1, 2, {"k": "é"}]}
    assert set(task["history"][0]) == {"attribute", "value", "source", "context", "created_at"}
    assert [f["value"] for f in task["history"] if f["attribute"] == "status"] == [
        "pending",
        "in_progress",
        "review",
        "completed",
    ]


def test_export_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "t.json"
    target.write_text("the previous export\n")
    with _busy_store(tmp_path / "a.db") as store:

        def broken(task_id: str) -> list[Any]:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(store, "facts", broken)  # inject a fault half-way
        with pytest.raises(OSError, match="No space left"):
            jsonio.export_tasks(store, target)
    assert target.read_text() == "the previous export\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_on_conflict_skip_and_replace(tmp_path: Path) -> None:
    with _busy_store(tmp_path / "a.db") as source:
        jsonio.export_tasks(source, tmp_path / "t.json")
        expected = _snapshot(source)
    with TaskStore(tmp_path / "b.db") as target:
        target.add("mine", task_id="t-1")
        target.add("other")  # t-2: so t-1 and t-2 clash, t-3 and custom-id do not
        before = dump(tmp_path / "b.db")
        with pytest.raises(MinnaTasksError, match="task 't-1' already exists; nothing was"):
            jsonio.import_tasks(target, tmp_path / "t.json")
        assert dump(tmp_path / "b.db") == before
        skipped = jsonio.import_tasks(target, tmp_path / "t.json", on_conflict="skip")
        assert skipped == jsonio.ImportResult(imported=2, skipped=2)
        assert target.get("t-1").title == "mine"
        replaced = jsonio.import_tasks(target, tmp_path / "t.json", on_conflict="replace")
        assert replaced == jsonio.ImportResult(imported=4, skipped=0)
        got = {t.id: (t, target.history(t.id)) for t in target.list()}
    assert {t.id: (t, h) for t, h, _ in expected} == got


def test_batches_are_one_transaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A conflict in a later batch undoes the earlier batches too."""
    monkeypatch.setattr(jsonio, "BATCH", 3)
    doc = {"format": "minna-tasks", "version": 1, "tasks": [_task(f"n-{i}") for i in range(10)]}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc))
    seen: list[int] = []
    with TaskStore(tmp_path / "b.db") as store:
        store.add("clash", task_id="n-8")
        before = dump(tmp_path / "b.db")
        with pytest.raises(MinnaTasksError, match="task 'n-8' already exists"):
            jsonio.import_tasks(store, path, on_progress=seen.append)
        assert seen == [3, 3]  # two batches went in before the third failed
        assert dump(tmp_path / "b.db") == before
        assert jsonio.import_tasks(store, path, "skip").imported == 9


def _task(task_id: str, **over: Any) -> dict[str, Any]:
    stamp = "2026-01-01T00:00:00.000000+00:00"
    item = {
        "id": task_id,
        "created_at": stamp,
        "history": [
            {
                "attribute": "title",
                "value": task_id,
                "source": None,
                "context": None,
                "created_at": stamp,
            },
            {
                "attribute": "status",
                "value": "pending",
                "source": "me",
                "context": "created",
                "created_at": stamp,
            },
        ],
    }
    item.update(over)
    return item


def test_a_minimal_hand_written_task_imports(tmp_path: Path) -> None:
    records = jsonio.validate_document(
        {"format": "minna-tasks", "version": 1, "tasks": [_task("hand")]}, STATES
    )
    with TaskStore(tmp_path / "b.db") as store:
        jsonio.restore_records(store, records)
        task = store.get("hand")
    assert (task.title, task.status, task.attempts, task.max_attempts, task.description) == (
        "hand",
        "pending",
        0,
        3,
        "",
    )


BAD: list[tuple[Any, str]] = [
    ([], "doc is not a minna-tasks file (its format is None, not 'minna-tasks')"),
    (
        {"format": "minna-tasks", "version": "1"},
        "doc has format version '1'; this minna-tasks reads version 1",
    ),
    ({"format": "minna-tasks", "version": 1, "tasks": {}}, "doc: 'tasks' must be a list"),
    (
        {"format": "minna-tasks", "version": 1, "tasks": [7]},
        "task number 1 in the file: must be an object, not int",
    ),
    (
        {"format": "minna-tasks", "version": 1, "tasks": [_task("")]},
        "task number 1 in the file: id must be a non-empty string, not ''",
    ),
    (
        {"format": "minna-tasks", "version": 1, "tasks": [_task("a", history=[])]},
        "task a: history must be a non-empty list of triples",
    ),
    (
        {"format": "minna-tasks", "version": 1, "tasks": [_task("a", history=[{"value": 1}])]},
        "task a: history[0].attribute must be a non-empty string, not None",
    ),
    (
        {
            "format": "minna-tasks",
            "version": 1,
            "tasks": [_task("a", history=[{"attribute": "status", "created_at": "2026-01-01"}])],
        },
        "task a: history[0].value is missing",
    ),
    (
        {
            "format": "minna-tasks",
            "version": 1,
            "tasks": [
                _task(
                    "a",
                    history=[
                        {
                            "attribute": "status",
                            "value": "pending",
                            "source": 3,
                            "created_at": "2026-01-01",
                        }
                    ],
                )
            ],
        },
        "task a: history[0].source must be a string or null, not int",
    ),
    (
        {
            "format": "minna-tasks",
            "version": 1,
            "tasks": [
                _task(
                    "a",
                    history=[
                        {
                            "attribute": "status",
                            "value": "pending",
                            "extra": 1,
                            "created_at": "2026-01-01",
                        }
                    ],
                )
            ],
        },
        "task a: history[0] has unknown key(s): extra",
    ),
    (
        {
            "format": "minna-tasks",
            "version": 1,
            "tasks": [
                _task(
                    "a", history=[{"attribute": "title", "value": "x", "created_at": "2026-01-01"}]
                )
            ],
        },
        "task a: status None is not a known state (pending, in_progress, review, failed, "
        "completed)",
    ),
    (
        {"format": "minna-tasks", "version": 1, "tasks": [_task("a", attempts=2)]},
        "task a: attempts is 2 but its history ends with 0",
    ),
]


@pytest.mark.parametrize(("document", "message"), BAD, ids=[m[:30] for _, m in BAD])
def test_validation_names_task_and_field(document: Any, message: str) -> None:
    with pytest.raises(ImportFormatError) as caught:
        jsonio.validate_document(document, STATES, name="doc")
    assert str(caught.value) == message


def test_imported_tasks_are_searchable_and_later_writes_too(tmp_path: Path) -> None:
    """The import indexes its triples for search in one pass; the index trigger survives."""
    with _busy_store(tmp_path / "a.db") as source:
        jsonio.export_tasks(source, tmp_path / "t.json")
    with TaskStore(tmp_path / "b.db") as store:
        store.memory.store("note", "text", "an unrelated zebra fact")
        store.add("clash", task_id="t-3")
        with pytest.raises(MinnaTasksError, match="already exists"):
            jsonio.import_tasks(store, tmp_path / "t.json")
        jsonio.import_tasks(store, tmp_path / "t.json", on_conflict="replace")
        found = store.memory.search("payload")  # its title and its payload triple
        assert sorted((r["entity"], r["attribute"]) for r in found) == [
            ("t-2", "payload"),
            ("t-2", "title"),
        ]
        assert [r["value"] for r in store.memory.search("zebra")] == ["an unrelated zebra fact"]
        assert store.memory.search("clash") == []  # the replaced task's triples are gone
        store.add("a giraffe task")
        assert [r["value"] for r in store.memory.search("giraffe")] == ["a giraffe task"]


def test_export_gets_the_users_umask(tmp_path: Path) -> None:
    import os

    with TaskStore(tmp_path / "a.db") as store:
        store.add("one")
        old = os.umask(0o027)
        try:
            jsonio.export_tasks(store, tmp_path / "t.json")
        finally:
            os.umask(old)
    assert (tmp_path / "t.json").stat().st_mode & 0o777 == 0o640


def test_readme_example_document_imports(tmp_path: Path) -> None:
    """The JSON shown in the README is a real, importable document."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## JSON files", 1)[1]
    block = section.split("```json\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "readme.json"
    path.write_text(block)
    document = json.loads(block)
    with TaskStore(tmp_path / "r.db") as store:
        assert jsonio.import_tasks(store, path) == jsonio.ImportResult(imported=1, skipped=0)
        task = store.get("t-1")
        steps = [(s.to_state, s.actor) for s in store.history("t-1")]
    shown = {k: v for k, v in document["tasks"][0].items() if k != "history"}
    assert task.to_dict() == shown
    assert steps == [("pending", "cli"), ("in_progress", "alice")]
