"""The MCP server in process: every resource and tool through the SDK's own client.

Fast coverage of each handler against a real SQLite file; the stdio tests in
test_mcp_stdio.py run the same server as a subprocess.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from mcp.client import Client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.subscriptions import ResourceUpdated
from mcp.types import INVALID_PARAMS, CallToolResult, ResourceUpdatedNotification

from minna_tasks import TaskStore
from minna_tasks.mcp_memory import MEMORY_TOOLS
from minna_tasks.mcp_server import CURRENT_URI, QUEUE_URI, STATS_URI, build_server, task_uri

from .conftest import dump

T = TypeVar("T")

TASK_TOOLS = {
    "add_task",
    "claim_task",
    "transition_task",
    "list_tasks",
    "get_task",
    "heartbeat_task",
    "release_task",
    "fail_task",
    "retry_task",
}
TOOLS = TASK_TOOLS | set(MEMORY_TOOLS)


@pytest.fixture
def mcp_store(db_path: Path) -> Iterator[TaskStore]:
    s = TaskStore(db_path)
    yield s
    s.close()


def run(store: TaskStore, body: Callable[[Client], Awaitable[T]], **client: Any) -> T:
    """Connect the SDK's in-process client to a server over `store` and run `body`."""

    async def main() -> T:
        async with Client(build_server(store), **client) as c:
            with anyio.fail_after(20):
                return await body(c)

    return anyio.run(main)


def text(result: CallToolResult) -> str:
    assert len(result.content) == 1
    block = result.content[0]
    assert block.type == "text"
    return block.text


def value(result: CallToolResult) -> Any:
    """The JSON a successful tool call returned (text and structured content agree)."""
    assert not result.is_error, text(result)
    data = json.loads(text(result))
    structured = data if isinstance(data, dict) else {"result": data}
    assert result.structured_content == structured
    return data


async def read_json(c: Client, uri: str) -> Any:
    result = await c.read_resource(uri)
    (content,) = result.contents
    assert content.mime_type == "application/json"
    return json.loads(content.text)  # type: ignore[union-attr]


def test_lists_resources_templates_and_tools(mcp_store: TaskStore) -> None:
    async def body(c: Client) -> tuple[Any, Any, Any]:
        return (
            await c.list_resources(),
            await c.list_resource_templates(),
            await c.list_tools(),
        )

    resources, templates, tools = run(mcp_store, body)
    assert {str(r.uri) for r in resources.resources} == {QUEUE_URI, CURRENT_URI, STATS_URI}
    assert [t.uri_template for t in templates.resource_templates] == ["task://{task_id}"]
    assert {t.name for t in tools.tools} == TOOLS
    for tool in tools.tools:
        assert tool.description, f"{tool.name} has no description"
    schemas = {t.name: t.input_schema for t in tools.tools}
    assert schemas["claim_task"]["required"] == ["worker"]
    assert "ctx" not in schemas["transition_task"]["properties"]
    assert set(schemas["transition_task"]["required"]) == {"task_id", "to_state"}


def test_resources_show_queue_current_and_one_task_with_history(mcp_store: TaskStore) -> None:
    low = mcp_store.add("low")
    high = mcp_store.add("high", priority=5)
    held = mcp_store.add("held", priority=9)
    mcp_store.claim("w1", lease_seconds=60)
    assert mcp_store.get(held.id).owner == "w1"

    async def body(c: Client) -> tuple[Any, Any, Any]:
        return (
            await read_json(c, QUEUE_URI),
            await read_json(c, CURRENT_URI),
            await read_json(c, task_uri(held.id)),
        )

    queue, current, one = run(mcp_store, body)
    assert [t["id"] for t in queue] == [high.id, low.id]
    assert [(t["id"], t["status"], t["owner"]) for t in current] == [(held.id, "in_progress", "w1")]
    assert current[0]["lease_expires_at"] == mcp_store.get(held.id).lease_expires_at
    assert one["id"] == held.id
    assert one["owner"] == "w1"
    assert [(h["from_state"], h["to_state"], h["actor"]) for h in one["history"]] == [
        (None, "pending", None),
        ("pending", "in_progress", "w1"),
    ]


def test_reading_an_unknown_task_is_a_not_found_error(mcp_store: TaskStore) -> None:
    async def body(c: Client) -> None:
        with pytest.raises(MCPError) as caught:
            await c.read_resource("task://t-404")
        assert caught.value.code == INVALID_PARAMS
        assert caught.value.message == "task 't-404' not found"

    run(mcp_store, body)


def test_task_tools_do_the_whole_cycle(mcp_store: TaskStore) -> None:
    async def body(c: Client) -> dict[str, Any]:
        out: dict[str, Any] = {}
        out["add"] = value(
            await c.call_tool(
                "add_task",
                {"title": "Summarise", "priority": 2, "payload": {"url": "u"}, "task_id": "job-1"},
            )
        )
        out["claim"] = value(await c.call_tool("claim_task", {"worker": "w", "lease_seconds": 30}))
        out["beat"] = value(
            await c.call_tool(
                "heartbeat_task", {"task_id": "job-1", "worker": "w", "lease_seconds": 600}
            )
        )
        out["review"] = value(
            await c.call_tool(
                "transition_task",
                {"task_id": "job-1", "to_state": "review", "actor": "w", "result": {"n": 3}},
            )
        )
        out["done"] = value(
            await c.call_tool(
                "transition_task",
                {
                    "task_id": "job-1",
                    "to_state": "completed",
                    "expected": "review",
                    "note": "ok",
                    "actor": "w",
                },
            )
        )
        out["empty"] = value(await c.call_tool("claim_task", {"worker": "w"}))
        value(await c.call_tool("add_task", {"title": "Second"}))
        value(await c.call_tool("claim_task", {"worker": "w2"}))
        out["release"] = value(
            await c.call_tool("release_task", {"task_id": "t-2", "worker": "w2", "note": "later"})
        )
        out["all"] = value(await c.call_tool("list_tasks", {}))
        out["completed"] = value(await c.call_tool("list_tasks", {"status": "completed"}))
        out["get"] = value(await c.call_tool("get_task", {"task_id": "job-1"}))
        return out

    out = run(mcp_store, body)
    assert out["add"]["id"] == "job-1"
    assert out["add"]["status"] == "pending"
    assert out["add"]["payload"] == {"url": "u"}
    assert (out["claim"]["id"], out["claim"]["status"], out["claim"]["owner"]) == (
        "job-1",
        "in_progress",
        "w",
    )
    assert out["beat"]["lease_expires_at"] > out["claim"]["lease_expires_at"]
    assert out["review"]["status"] == "review"
    assert out["review"]["result"] == {"n": 3}
    assert out["done"]["status"] == "completed"
    assert out["empty"] is None
    assert (out["release"]["status"], out["release"]["owner"]) == ("pending", None)
    assert [t["id"] for t in out["all"]] == ["job-1", "t-2"]
    assert [t["id"] for t in out["completed"]] == ["job-1"]
    assert [h["to_state"] for h in out["get"]["history"]] == [
        "pending",
        "in_progress",
        "review",
        "completed",
    ]
    assert out["get"]["history"][-1]["note"] == "ok"
    # The store (the same file, through the core) agrees with what the tools said.
    assert mcp_store.get("job-1").to_dict() == {
        k: v for k, v in out["get"].items() if k != "history"
    }
    assert [t.to_dict() for t in mcp_store.history("job-1")] == out["get"]["history"]
    assert mcp_store.get("t-2").status == "pending"
    assert mcp_store.history("t-2")[-1].note == "later"


def test_memory_tools_store_recall_and_search(mcp_store: TaskStore) -> None:
    mcp_store.add("a task")

    async def body(c: Client) -> dict[str, Any]:
        first = value(
            await c.call_tool(
                "memory_store",
                {"entity": "alice", "attribute": "city", "value": "Lisbon", "context": "chat"},
            )
        )
        second = value(
            await c.call_tool(
                "memory_store",
                {"entity": "alice", "attribute": "city", "value": "Porto", "confidence": 0.5},
            )
        )
        return {
            "ids": (first["memory_id"], second["memory_id"]),
            "recall": value(
                await c.call_tool("memory_recall", {"entity": "alice", "attribute": "city"})
            )["memories"],
            "one": value(await c.call_tool("memory_recall", {"entity": "alice", "limit": 1}))[
                "memories"
            ],
            "decay": value(
                await c.call_tool("memory_recall", {"entity": "alice", "include_decay": True})
            )["memories"],
            "search": value(await c.call_tool("memory_search", {"query": "lisbon"}))["memories"],
            # A task entity takes facts of its own; only its task fields are refused.
            "on_task": value(
                await c.call_tool(
                    "memory_store", {"entity": "t-1", "attribute": "note", "value": "tricky"}
                )
            ),
        }

    out = run(mcp_store, body)
    assert out["ids"][1] > out["ids"][0]
    assert [(m["value"], m["source"]) for m in out["recall"]] == [
        ("Porto", "mcp"),
        ("Lisbon", "mcp"),
    ]
    assert out["recall"][1]["context"] == "chat"
    assert out["recall"][0]["confidence"] == 0.5
    assert [m["value"] for m in out["one"]] == ["Porto"]
    assert 0.49 < out["decay"][0]["confidence"] <= 0.5
    assert [m["id"] for m in out["search"]] == [out["ids"][0]]
    assert mcp_store.memory.recall(entity="alice", attribute="city")[0]["value"] == "Porto"
    on_task = mcp_store.memory.recall(entity="t-1", attribute="note")[0]
    assert on_task["id"] == out["on_task"]["memory_id"]


# (tool, arguments, the exact error text or its start ending in "...")
BAD_CALLS = [
    ("get_task", {"task_id": "t-404"}, "task 't-404' not found"),
    ("transition_task", {"task_id": "t-404", "to_state": "review"}, "task 't-404' not found"),
    ("heartbeat_task", {"task_id": "t-404", "worker": "w"}, "task 't-404' not found"),
    ("release_task", {"task_id": "t-404", "worker": "w"}, "task 't-404' not found"),
    (
        "transition_task",
        {"task_id": "t-1", "to_state": "completed"},
        "cannot move t-1 from pending to completed: task t-1 is pending; it can move to: "
        "in_progress",
    ),
    (
        "transition_task",
        {"task_id": "t-2", "to_state": "review", "expected": "pending"},
        "task t-2 is in_progress, not pending: it moved under you; it can move to: "
        "review, pending, failed",
    ),
    (
        "transition_task",
        {"task_id": "t-2", "to_state": "review", "actor": "intruder"},
        "task t-2 is in_progress and held by w, not intruder; move it as w or force the move",
    ),
    (
        "transition_task",
        {"task_id": "t-1", "to_state": "done"},
        "unknown state 'done'; known states: pending, in_progress, review, failed, completed",
    ),
    ("heartbeat_task", {"task_id": "t-2", "worker": "other"}, "task t-2 is in_progress and ..."),
    ("release_task", {"task_id": "t-1", "worker": "w"}, "task t-1 is pending and not held ..."),
    ("add_task", {"title": "again", "task_id": "t-1"}, "task 't-1' already exists"),
    ("add_task", {"title": "  "}, "title must not be empty"),
    ("add_task", {"title": "x", "max_attempts": 0}, "max_attempts must be at least 1, not 0"),
    (
        "add_task",
        {"title": "x", "priority": "high"},
        "invalid arguments for add_task: priority: Input should be a valid integer...",
    ),
    ("add_task", {}, "invalid arguments for add_task: title: Field required"),
    (
        "claim_task",
        {"worker": "w", "lease_seconds": -1},
        "lease_seconds must be a positive number of seconds, not -1.0",
    ),
    ("claim_task", {"worker": ""}, "worker must not be empty"),
    ("list_tasks", {"status": "bogus"}, "unknown state 'bogus'; ..."),
    (
        "memory_store",
        {"entity": "e", "attribute": "a", "value": "v", "confidence": 2},
        "confidence must be between 0 and 1",
    ),
    ("memory_store", {"entity": "", "attribute": "a", "value": "v"}, "entity must not be empty"),
    (
        "memory_store",
        {"entity": "e", "attribute": "a", "value": {"nested": 1}},
        "invalid arguments for memory_store: ...",
    ),
    (
        "memory_store",
        {"entity": "t-1", "attribute": "status", "value": "completed"},
        "t-1 is a task: its status changes only through the task commands (add, move, claim, "
        "heartbeat, release, retry)",
    ),
    ("memory_recall", {"half_life_days": 0}, "half_life_days must be positive"),
    ("memory_search", {"limit": 5}, "invalid arguments for memory_search: query: Field required"),
]


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    BAD_CALLS,
    ids=[f"{t}-{i}" for i, (t, *_) in enumerate(BAD_CALLS)],
)
def test_a_bad_call_is_a_tool_error_and_writes_nothing(
    mcp_store: TaskStore, db_path: Path, tool: str, arguments: dict[str, Any], message: str
) -> None:
    mcp_store.add("first")
    mcp_store.add("second", priority=1)
    mcp_store.claim("w")  # t-1 is pending, t-2 in_progress held by w
    before = dump(db_path)

    async def body(c: Client) -> tuple[CallToolResult, CallToolResult]:
        bad = await c.call_tool(tool, arguments)
        after = await c.call_tool("list_tasks", {})  # the server still answers
        return bad, after

    bad, after = run(mcp_store, body)
    assert bad.is_error
    if message.endswith("..."):
        assert text(bad).startswith(message[:-3]), text(bad)
    else:
        assert text(bad) == message
    assert "\n" not in text(bad)
    assert [t["id"] for t in value(after)] == ["t-1", "t-2"]
    assert dump(db_path) == before


def test_an_unknown_tool_is_refused(mcp_store: TaskStore) -> None:
    async def body(c: Client) -> CallToolResult:
        return await c.call_tool("drop_tables", {})

    result = run(mcp_store, body)
    assert result.is_error
    assert text(result) == "Unknown tool: drop_tables"


def test_listeners_hear_which_resources_a_tool_changed(mcp_store: TaskStore) -> None:
    """subscriptions/listen (2026-07-28): a change notifies the queue, current and the task;
    a refused call notifies nothing (the first event after it comes from the next change)."""
    mcp_store.add("old")
    watched = [QUEUE_URI, CURRENT_URI, task_uri("t-1"), task_uri("t-2")]

    async def body(c: Client) -> list[str]:
        events: list[str] = []
        async with c.listen(resource_subscriptions=watched) as sub:
            bad = await c.call_tool("transition_task", {"task_id": "t-1", "to_state": "review"})
            assert bad.is_error
            value(await c.call_tool("claim_task", {"worker": "w"}))
            async for event in sub:
                assert isinstance(event, ResourceUpdated)
                events.append(event.uri)
                if len(events) == 3:
                    break
            value(await c.call_tool("add_task", {"title": "new"}))
            async for event in sub:
                assert isinstance(event, ResourceUpdated)
                events.append(event.uri)
                if event.uri == task_uri("t-2"):
                    break
        return events

    events = run(mcp_store, body)
    assert events[:3] == [QUEUE_URI, CURRENT_URI, task_uri("t-1")]
    assert events[3:] == [QUEUE_URI, CURRENT_URI, task_uri("t-2")]


def test_legacy_resource_subscribers_are_notified(mcp_store: TaskStore) -> None:
    """resources/subscribe (handshake-era protocol): subscribed URIs only, until unsubscribed."""
    received: list[str] = []
    got_one = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            received.append(message.params.uri)
            got_one.set()

    async def body(c: Client) -> None:
        assert c.server_capabilities.resources is not None
        assert c.server_capabilities.resources.subscribe
        with warnings.catch_warnings():  # the request is deprecated in the newer protocol
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await c.subscribe_resource(task_uri("t-1"))
        value(await c.call_tool("add_task", {"title": "watched"}))
        await got_one.wait()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await c.unsubscribe_resource(task_uri("t-1"))
        value(await c.call_tool("claim_task", {"worker": "w"}))

    run(mcp_store, body, mode="legacy", message_handler=on_message)
    assert received == [task_uri("t-1")]
    assert mcp_store.get("t-1").status == "in_progress"


def test_task_uris_percent_encode_odd_ids(mcp_store: TaskStore) -> None:
    mcp_store.add("odd", task_id="a b/c")

    async def body(c: Client) -> Any:
        return await read_json(c, task_uri("a b/c"))

    assert task_uri("a b/c") == "task://a%20b%2Fc"
    assert run(mcp_store, body)["id"] == "a b/c"
