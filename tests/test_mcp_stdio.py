"""`minna-tasks mcp` as a real subprocess, driven by the SDK's stdio client.

Covers what only a real process shows: the stdio transport, the file shared
with TaskStore and the CLI, and two servers on one file claiming from one queue.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.types import CallToolResult

from minna_tasks import TaskStore
from minna_tasks.install_hint import mcp_install_hint
from minna_tasks.mcp_server import CURRENT_URI, QUEUE_URI, STATS_URI, task_uri

from .conftest import dump

T = TypeVar("T")


MINNA_TASKS = str(Path(sys.executable).with_name("minna-tasks"))  # the venv's console script
README = Path(__file__).resolve().parent.parent / "README.md"


def server_command(db: Path) -> list[str]:
    """The command an MCP host runs: `minna-tasks --db FILE mcp`, the server on stdio."""
    return [MINNA_TASKS, "--db", str(db), "mcp"]


def params(db: Path) -> StdioServerParameters:
    command, *args = server_command(db)
    return StdioServerParameters(command=command, args=args)


def readme_params(db: Path) -> StdioServerParameters:
    """The host configuration the README shows, pointed at `db`."""
    section = README.read_text(encoding="utf-8").split("\n## MCP\n", 1)[1]
    snippet = section.split("```json\n", 1)[1].split("```", 1)[0]
    server = json.loads(snippet)["mcpServers"]["minna-tasks"]
    assert server["command"] == "minna-tasks"
    args = [str(db) if a.endswith("minna.db") else a for a in server["args"]]
    assert args == server_command(db)[1:]
    return StdioServerParameters(command=MINNA_TASKS, args=args)


def cli_json(db: Path, *args: str) -> Any:
    done = subprocess.run(
        [MINNA_TASKS, "--db", str(db), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(done.stdout)


def run(body: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        with anyio.fail_after(30):
            return await body()

    return anyio.run(main)


def text(result: CallToolResult) -> str:
    (block,) = result.content
    assert block.type == "text"
    return block.text


def value(result: CallToolResult) -> Any:
    assert not result.is_error, text(result)
    return json.loads(text(result))


async def read_json(c: Client, uri: str) -> Any:
    (content,) = (await c.read_resource(uri)).contents
    return json.loads(content.text)  # type: ignore[union-attr]


def test_a_client_uses_every_resource_and_tool_over_stdio(db_path: Path) -> None:
    with TaskStore(db_path) as store:  # made before the server starts: it shares the file
        store.add("seeded", priority=1)

    async def body() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with Client(readme_params(db_path)) as c:
            out["resources"] = {str(r.uri) for r in (await c.list_resources()).resources}
            out["templates"] = [
                t.uri_template for t in (await c.list_resource_templates()).resource_templates
            ]
            out["tools"] = {t.name for t in (await c.list_tools()).tools}
            out["add"] = value(await c.call_tool("add_task", {"title": "from mcp"}))
            out["queue"] = await read_json(c, QUEUE_URI)
            out["claim"] = value(await c.call_tool("claim_task", {"worker": "agent"}))
            out["current"] = await read_json(c, CURRENT_URI)
            value(await c.call_tool("heartbeat_task", {"task_id": "t-1", "worker": "agent"}))
            value(await c.call_tool("claim_task", {"worker": "agent"}))
            value(await c.call_tool("release_task", {"task_id": "t-2", "worker": "agent"}))

            # Refused calls: an error result with our message, the file untouched.
            before = dump(db_path)
            unknown = await c.call_tool("get_task", {"task_id": "t-404"})
            invalid = await c.call_tool("transition_task", {"task_id": "t-2", "to_state": "review"})
            bad_args = await c.call_tool("claim_task", {"worker": "agent", "lease_seconds": "x"})
            out["errors"] = [(r.is_error, text(r)) for r in (unknown, invalid, bad_args)]
            out["unchanged"] = dump(db_path) == before

            value(
                await c.call_tool(
                    "transition_task",
                    {"task_id": "t-1", "to_state": "review", "actor": "agent", "result": [1, 2]},
                )
            )
            value(
                await c.call_tool(
                    "transition_task",
                    {"task_id": "t-1", "to_state": "completed", "actor": "agent"},
                )
            )
            out["task"] = await read_json(c, task_uri("t-1"))
            out["get"] = value(await c.call_tool("get_task", {"task_id": "t-1"}))
            out["list"] = value(await c.call_tool("list_tasks", {"status": "pending"}))
            value(
                await c.call_tool(
                    "memory_store", {"entity": "agent", "attribute": "mood", "value": "busy"}
                )
            )
            out["recall"] = value(await c.call_tool("memory_recall", {"entity": "agent"}))
            out["search"] = value(await c.call_tool("memory_search", {"query": "busy"}))
            out["stats"] = await read_json(c, STATS_URI)
        return out

    out = run(body)
    assert out["resources"] == {QUEUE_URI, CURRENT_URI, STATS_URI}
    assert out["templates"] == ["task://{task_id}"]
    assert len(out["tools"]) == 9 + 16
    assert out["add"]["id"] == "t-2"
    assert [t["id"] for t in out["queue"]] == ["t-1", "t-2"]  # priority first
    assert out["claim"]["id"] == "t-1"
    assert [(t["id"], t["owner"]) for t in out["current"]] == [("t-1", "agent")]
    assert out["errors"] == [
        (True, "task 't-404' not found"),
        (
            True,
            "cannot move t-2 from pending to review: task t-2 is pending; "
            "it can move to: in_progress",
        ),
        (
            True,
            "invalid arguments for claim_task: lease_seconds: "
            "Input should be a valid number, unable to parse string as a number",
        ),
    ]
    assert out["unchanged"]
    assert out["task"] == out["get"]
    assert [h["to_state"] for h in out["task"]["history"]] == [
        "pending",
        "in_progress",
        "review",
        "completed",
    ]
    assert [t["id"] for t in out["list"]] == ["t-2"]
    assert out["recall"]["memories"][0]["value"] == "busy"
    assert out["search"]["memories"][0]["entity"] == "agent"
    assert out["stats"] == {
        "pending": 1,
        "in_progress": 0,
        "review": 0,
        "failed": 0,
        "completed": 1,
        "readiness": {"ready": 1, "blocked": 0},
    }

    # Afterwards the core sees exactly what the agent did.
    with TaskStore(db_path) as store:
        done = store.get("t-1")
        assert (done.status, done.result, done.owner) == ("completed", [1, 2], None)
        assert [t.to_dict() for t in store.history("t-1")] == out["task"]["history"]
        assert store.get("t-2").status == "pending"
        assert store.history("t-2")[-1].note == "released"
        assert store.memory.recall(entity="agent", attribute="mood")[0]["value"] == "busy"
    # ... and so do people, through the CLI.
    shown = cli_json(db_path, "show", "t-1")
    assert {k: shown[k] for k in ("id", "title", "status", "attempts", "result")} == {
        "id": "t-1",
        "title": "seeded",
        "status": "completed",
        "attempts": 0,
        "result": [1, 2],
    }
    assert [h["to_state"] for h in cli_json(db_path, "history", "t-1")] == [
        h["to_state"] for h in out["task"]["history"]
    ]


def test_two_servers_on_one_file_never_hand_out_a_task_twice(db_path: Path) -> None:
    n = 40
    with TaskStore(db_path) as store:
        store.add_many([f"job {i}" for i in range(n)])

    async def body() -> dict[str, list[str]]:
        claimed: dict[str, list[str]] = {"a": [], "b": []}
        async with Client(params(db_path)) as a, Client(params(db_path)) as b:

            async def drain(worker: str, c: Client) -> None:
                while True:
                    task = value(await c.call_tool("claim_task", {"worker": worker}))
                    if task is None:
                        return
                    assert task["owner"] == worker
                    claimed[worker].append(task["id"])

            async with anyio.create_task_group() as tg:
                tg.start_soon(drain, "a", a)
                tg.start_soon(drain, "b", b)
        return claimed

    claimed = run(body)
    every = claimed["a"] + claimed["b"]
    assert sorted(every) == sorted(f"t-{i}" for i in range(1, n + 1))  # each exactly once
    with TaskStore(db_path) as store:
        for worker, ids in claimed.items():
            for task_id in ids:
                steps = [(t.to_state, t.actor) for t in store.history(task_id)]
                assert steps == [("pending", None), ("in_progress", worker)]


@pytest.mark.parametrize("module", [False, True], ids=["minna-tasks-mcp", "python-m"])
def test_a_bad_database_is_a_one_line_error(tmp_path: Path, module: bool) -> None:
    folder = tmp_path / "not-a-file"
    folder.mkdir()
    command = server_command(folder)
    if module:
        command = [sys.executable, "-m", "minna_tasks.mcp_server", "--db", str(folder)]
    done = subprocess.run(
        command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30
    )
    assert done.returncode != 0
    assert done.stdout == ""
    assert done.stderr == f"Error: {folder} is a directory, not a database file\n"


def test_without_the_mcp_extra_the_error_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['mcp'] = None  # as if the mcp extra were not installed\n"
        "try:\n"
        "    import minna_tasks.mcp_server\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    # A command that works for this install (no index has minna-tasks itself).
    assert done.stdout.strip() == (
        f"MinnaTasksError the MCP server needs the mcp extra: {mcp_install_hint()}"
    )
