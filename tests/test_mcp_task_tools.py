"""The task tools an agent lacked in 0.1: fail_task (a counted failed attempt), retry_task,
and the task://stats resource, through the SDK's in-process client."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
from mcp.client import Client
from mcp.types import CallToolResult

from minna_tasks import TaskStore
from minna_tasks.mcp_server import STATS_URI, build_server

from .conftest import dump

T = TypeVar("T")


def run(store: TaskStore, body: Callable[[Client], Awaitable[T]]) -> T:
    async def main() -> T:
        async with Client(build_server(store)) as c:
            with anyio.fail_after(20):
                return await body(c)

    return anyio.run(main)


def text(result: CallToolResult) -> str:
    (block,) = result.content
    assert block.type == "text"
    return block.text


def value(result: CallToolResult) -> Any:
    assert not result.is_error, text(result)
    data = json.loads(text(result))
    assert result.structured_content == data
    return data


def test_a_task_that_always_fails_ends_failed_and_can_be_retried(db_path: Path) -> None:
    with TaskStore(db_path) as store:
        store.add("flaky", max_attempts=2)

        async def body(c: Client) -> dict[str, Any]:
            out: dict[str, Any] = {"fails": []}
            for _ in range(2):  # an agent that claims and fails until nothing is left
                claimed = value(await c.call_tool("claim_task", {"worker": "agent"}))
                failed = await c.call_tool(
                    "fail_task",
                    {"task_id": claimed["id"], "worker": "agent", "error": "timeout"},
                )
                out["fails"].append(value(failed))
            out["nothing"] = await c.call_tool("claim_task", {"worker": "agent"})
            (stats,) = (await c.read_resource(STATS_URI)).contents
            out["stats"] = json.loads(stats.text)  # type: ignore[union-attr]
            out["retry"] = value(await c.call_tool("retry_task", {"task_id": "t-1"}))
            return out

        out = run(store, body)
        first, second = out["fails"]
        assert (first["status"], first["attempts"], first["error"]) == ("pending", 1, "timeout")
        assert (second["status"], second["attempts"]) == ("failed", 2)
        assert out["nothing"].structured_content == {"result": None}
        assert out["stats"] == {
            "pending": 0,
            "in_progress": 0,
            "review": 0,
            "failed": 1,
            "completed": 0,
            "readiness": {"ready": 0, "blocked": 0},
        }
        assert (out["retry"]["status"], out["retry"]["attempts"]) == ("pending", 0)
        history = store.history("t-1")
        assert [h.to_state for h in history] == [
            "pending",
            "in_progress",
            "pending",
            "in_progress",
            "failed",
            "pending",
        ]
        assert (history[-1].actor, history[-1].note) == ("mcp", "retry")


def test_fail_and_retry_refuse_what_the_store_refuses(db_path: Path) -> None:
    with TaskStore(db_path) as store:
        store.add("held")
        store.add("waiting")
        store.claim("w")  # t-1 held by w, t-2 pending
        before = dump(db_path)

        async def body(c: Client) -> list[CallToolResult]:
            return [
                await c.call_tool(
                    "fail_task", {"task_id": "t-1", "worker": "intruder", "error": "x"}
                ),
                await c.call_tool("fail_task", {"task_id": "t-404", "worker": "w", "error": "x"}),
                await c.call_tool("fail_task", {"task_id": "t-1", "worker": "w"}),
                await c.call_tool("retry_task", {"task_id": "t-2"}),
            ]

        results = run(store, body)
        assert all(r.is_error for r in results)
        assert text(results[0]).startswith("task t-1 is in_progress and held by w, not intruder")
        assert text(results[1]) == "task 't-404' not found"
        assert text(results[2]) == "invalid arguments for fail_task: error: Field required"
        assert text(results[3]).startswith("cannot retry t-2: task t-2 is pending, not failed")
        assert dump(db_path) == before
