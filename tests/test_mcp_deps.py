"""Dependencies over MCP: add_task(depends_on=...), task://queue lists ready tasks only,
and every task carries depends_on and blocked_by."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client

from minna_tasks import TaskStore
from minna_tasks.mcp_server import QUEUE_URI, STATS_URI, task_uri

from .conftest import dump
from .test_mcp_server import read_json, run, text, value


@pytest.fixture
def deps_store(db_path: Path) -> Iterator[TaskStore]:
    s = TaskStore(db_path)
    yield s
    s.close()


def test_add_task_with_dependencies_and_the_ready_queue(deps_store: TaskStore) -> None:
    async def body(c: Client) -> dict[str, Any]:
        out: dict[str, Any] = {}
        out["fetch"] = value(await c.call_tool("add_task", {"title": "fetch"}))
        out["summary"] = value(
            await c.call_tool("add_task", {"title": "summary", "depends_on": [out["fetch"]["id"]]})
        )
        out["queue"] = await read_json(c, QUEUE_URI)
        out["stats"] = await read_json(c, STATS_URI)
        out["one"] = await read_json(c, task_uri(out["summary"]["id"]))
        out["listed"] = value(await c.call_tool("list_tasks", {"status": "pending"}))
        out["claim"] = value(await c.call_tool("claim_task", {"worker": "w"}))
        out["none"] = value(await c.call_tool("claim_task", {"worker": "w2"}))
        return out

    out = run(deps_store, body)
    fetch = out["fetch"]["id"]
    assert (out["fetch"]["depends_on"], out["fetch"]["blocked_by"]) == ([], [])
    assert (out["summary"]["depends_on"], out["summary"]["blocked_by"]) == ([fetch], [fetch])
    assert [t["id"] for t in out["queue"]] == [fetch]
    assert out["stats"]["pending"] == 2
    assert out["stats"]["readiness"] == {"ready": 1, "blocked": 1}
    assert out["one"]["blocked_by"] == [fetch]
    assert [h["note"] for h in out["one"]["history"]] == ["created", f"depends on {fetch}"]
    assert [t["blocked_by"] for t in out["listed"]] == [[], [fetch]]
    assert out["claim"]["id"] == fetch
    assert out["none"] is None  # summary waits for fetch


def test_add_task_with_an_unknown_or_cyclic_dependency_writes_nothing(
    deps_store: TaskStore, db_path: Path
) -> None:
    deps_store.add("a", task_id="a")
    before = dump(db_path)

    async def body(c: Client) -> tuple[Any, Any]:
        unknown = await c.call_tool("add_task", {"title": "b", "depends_on": ["nope"]})
        cyclic = await c.call_tool("add_task", {"title": "c", "task_id": "c", "depends_on": ["c"]})
        return unknown, cyclic

    unknown, cyclic = run(deps_store, body)
    assert unknown.is_error
    assert text(unknown) == "task 'nope' not found"
    assert cyclic.is_error
    assert text(cyclic).startswith("dependency cycle: c -> c")
    assert dump(db_path) == before
