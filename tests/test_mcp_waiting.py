"""The MCP server hears of every process's changes, and claim_task can wait for work.

A real `minna-tasks mcp` subprocess, the SDK's stdio client, and the CLI as a
third process on the same file.
"""

from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client import Client
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.shared.subscriptions import ResourceUpdated
from mcp.types import ResourceUpdatedNotification

from minna_tasks import TaskStore
from minna_tasks.mcp_server import QUEUE_URI, build_server, task_uri

from .conftest import unchanged
from .test_mcp_stdio import MINNA_TASKS, params, text, value


async def cli(db: Path, *args: str) -> str:
    """The CLI as another process on the file."""
    done = await anyio.run_process([MINNA_TASKS, "--db", str(db), *args], check=True)
    return done.stdout.decode().strip()


def run(body: Any) -> Any:
    async def main() -> Any:
        with anyio.fail_after(60):
            return await body()

    return anyio.run(main)


def test_a_listening_client_hears_of_a_task_the_cli_adds(db_path: Path) -> None:
    TaskStore(db_path).close()

    async def body() -> tuple[str, list[str]]:
        heard: list[str] = []
        async with Client(params(db_path)) as c:
            async with c.listen(resource_subscriptions=[QUEUE_URI]) as sub:
                task_id = await cli(db_path, "add", "from the command line")
                async for event in sub:
                    assert isinstance(event, ResourceUpdated)
                    heard.append(event.uri)
                    break
        return task_id, heard

    task_id, heard = run(body)
    assert task_id == "t-1"
    assert heard == [QUEUE_URI]


def test_a_subscribed_legacy_client_hears_of_a_task_the_cli_adds(db_path: Path) -> None:
    TaskStore(db_path).close()
    heard: list[str] = []
    got = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            heard.append(message.params.uri)
            got.set()

    async def body() -> None:
        async with Client(params(db_path), mode="legacy", message_handler=on_message) as c:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await c.subscribe_resource(QUEUE_URI)
                await c.subscribe_resource(task_uri("t-1"))
            await cli(db_path, "add", "from the command line")
            await got.wait()
            while len(heard) < 2:
                await anyio.sleep(0.01)

    run(body)
    assert heard == [QUEUE_URI, task_uri("t-1")]


def test_claim_task_waits_for_work_while_the_server_keeps_answering(db_path: Path) -> None:
    TaskStore(db_path).close()

    async def body() -> dict[str, Any]:
        got: dict[str, Any] = {}
        async with Client(params(db_path)) as c:

            async def wait_for_work() -> None:
                result = await c.call_tool("claim_task", {"worker": "agent", "wait_seconds": 50})
                got["claimed"] = value(result)

            async with anyio.create_task_group() as group:
                group.start_soon(wait_for_work)
                # The server answers other calls while the claim waits.
                got["listed"] = value(await c.call_tool("list_tasks", {}))
                got["added"] = await cli(db_path, "add", "work for the agent")
        return got

    got = run(body)
    assert got["listed"] == {"result": []} or got["listed"] == []
    assert got["claimed"]["id"] == got["added"]
    assert got["claimed"]["owner"] == "agent"


@pytest.mark.parametrize(
    ("wait", "message"),
    [
        (61, "wait_seconds must be at most 60, not 61: call claim_task again to wait longer"),
        (-1, "wait must be zero or more seconds, not -1"),
    ],
)
def test_a_bad_wait_is_refused_and_writes_nothing(db_path: Path, wait: int, message: str) -> None:
    with TaskStore(db_path) as store:
        store.add("pending still")

        async def body() -> Any:
            async with Client(build_server(store)) as c:
                return await c.call_tool("claim_task", {"worker": "w", "wait_seconds": wait})

        with unchanged(db_path):
            result = run(body)
        assert result.is_error
        assert text(result) == message
        assert store.get("t-1").status == "pending"


def test_claim_task_with_a_wait_times_out_with_null(db_path: Path) -> None:
    with TaskStore(db_path) as store:

        async def body() -> Any:
            async with Client(build_server(store)) as c:
                return await c.call_tool("claim_task", {"worker": "w", "wait_seconds": 0.2})

        assert json.loads(text(run(body))) is None


def test_the_cli_adding_through_a_pipe_is_seen(db_path: Path) -> None:
    """The relay reads the file's own log: tasks added by plain library calls in another
    process count as much as the CLI's."""
    TaskStore(db_path).close()

    async def body() -> list[str]:
        heard: list[str] = []
        async with Client(params(db_path)) as c:
            async with c.listen(resource_subscriptions=[task_uri("t-2")]) as sub:
                code = (
                    "import sys\nfrom minna_tasks import TaskStore\n"
                    "with TaskStore(sys.argv[1]) as s:\n    s.add('a'); s.add('b')\n"
                )
                await anyio.to_thread.run_sync(
                    lambda: subprocess.run(
                        [MINNA_TASKS.replace("minna-tasks", "python"), "-c", code, str(db_path)],
                        check=True,
                    )
                )
                async for event in sub:
                    assert isinstance(event, ResourceUpdated)
                    heard.append(event.uri)
                    break
        return heard

    assert run(body) == [task_uri("t-2")]
