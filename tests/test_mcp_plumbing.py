"""The MCP server's plumbing, over a real `minna-tasks mcp` subprocess.

Store calls run off the event loop and reads have their own connections, so a
write stuck behind another process's lock stalls no read; stdin lines the SDK
cannot read get a JSON-RPC error reply; odd arguments get a clear message; the
server names the file it serves and refuses a relative --db that is not there.
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import subprocess
import threading
from pathlib import Path
from typing import Any

import anyio
from mcp.client import Client

from minna_tasks import TaskStore

from .test_mcp_stdio import MINNA_TASKS, params, run, text, value

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"},
    },
}


class RawServer:
    """`minna-tasks mcp` fed raw stdin lines; replies read by a thread into a queue."""

    def __init__(self, db: Path, cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen(
            [MINNA_TASKS, "--db", str(db), "mcp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        self.replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.send(json.dumps(INIT))
        assert self.reply()["id"] == 1
        self.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.replies.put(json.loads(line))

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def reply(self) -> dict[str, Any]:
        return self.replies.get(timeout=30)

    def call(self, request_id: int, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        self.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": request_id,
                    "method": "tools/call",
                    "params": {"name": tool, "arguments": arguments},
                }
            )
        )
        return self.reply()

    def close(self) -> str:
        """Close stdin, wait for the exit; returns stderr."""
        assert self.proc.stdin is not None
        assert self.proc.stderr is not None
        assert self.proc.stdout is not None
        self.proc.stdin.close()
        code = self.proc.wait(timeout=30)
        self.reader.join(timeout=30)
        self.proc.stdout.close()
        with self.proc.stderr:
            stderr = self.proc.stderr.read()
        assert code == 0, stderr
        return stderr


def test_unreadable_lines_get_json_rpc_errors_and_the_server_goes_on(tmp_path: Path) -> None:
    db = tmp_path / "raw.db"
    server = RawServer(db)
    try:
        server.send("this is not json")
        reply = server.reply()
        assert reply["id"] is None
        assert reply["error"]["code"] == -32700
        assert reply["error"]["message"].startswith("Parse error: ")

        deep = "[" * 5000 + "]" * 5000
        server.send(
            '{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name":'
            f' "add_task", "arguments": {{"title": "x", "payload": {deep}}}}}}}'
        )
        reply = server.reply()
        assert reply["id"] == 7
        assert reply["error"]["code"] == -32700
        assert "nested deeper" in reply["error"]["message"]

        server.send(
            '{"jsonrpc": "2.0", "id": "eight", "method": "tools/call", "params": {"name":'
            ' "add_task", "arguments": {"title": "\\ud800"}}}'
        )
        reply = server.reply()
        assert reply["id"] == "eight"
        assert "surrogate" in reply["error"]["message"]

        server.send('{"jsonrpc": "2.0", "id": 9}')
        reply = server.reply()
        assert reply["id"] == 9
        assert reply["error"]["code"] == -32600

        reply = server.call(10, "claim_task", {"worker": "w", "lease_seconds": 1e12})
        assert reply["id"] == 10
        assert reply["result"]["isError"] is True
        assert reply["result"]["content"][0]["text"].startswith("lease_seconds must be at most")

        reply = server.call(11, "add_task", {"title": "still serving"})
        assert reply["result"]["structuredContent"]["title"] == "still serving"
    finally:
        stderr = server.close()
    assert "Traceback" not in stderr
    assert f"serving {db}" in stderr
    with TaskStore(db) as store:
        assert [t.title for t in store.list()] == ["still serving"]  # the bad calls wrote nothing


READS: list[tuple[str, dict[str, Any]]] = [
    ("get_task", {}),
    ("list_tasks", {}),
    ("memory_recall", {"entity": "someone"}),
    ("memory_search", {"query": "tea"}),
    ("memory_who", {"name": "someone"}),
]


def test_a_write_waiting_for_the_lock_stalls_no_read(tmp_path: Path) -> None:
    """Another process holds the write lock: a claim waits for it (the busy timeout)
    while ten reads in flight (task and memory tools) are all answered; the claim ends
    once the lock is free."""
    db = tmp_path / "busy.db"
    with TaskStore(db) as store:
        task = store.add("one")
        store.memory.store("someone", "likes", "tea")
    holder = sqlite3.connect(db, isolation_level=None)

    async def body() -> None:
        async with Client(params(db)) as c:
            await c.call_tool("list_tasks", {})  # every connection open before the lock
            holder.execute("BEGIN IMMEDIATE")
            claimed: list[Any] = []
            async with anyio.create_task_group() as tg:

                async def claim() -> None:
                    claimed.append(value(await c.call_tool("claim_task", {"worker": "w"})))

                tg.start_soon(claim)
                reads: list[Any] = []

                async def read(n: int) -> None:
                    tool, arguments = READS[n % len(READS)]
                    arguments = arguments or {"task_id": task.id}
                    reads.append((tool, value(await c.call_tool(tool, arguments))))

                async with anyio.create_task_group() as readers:
                    for n in range(10):
                        readers.start_soon(read, n)
                assert len(reads) == 10  # all answered while the lock is held...
                assert claimed == []  # ...and the claim still waits for it
                assert all(r["status"] == "pending" for t, r in reads if t == "get_task")
                holder.execute("COMMIT")
            assert claimed[0]["id"] == task.id

    try:
        run(body)
    finally:
        holder.close()


def test_an_explicit_relative_db_that_is_missing_is_refused(tmp_path: Path) -> None:
    for command in (
        [MINNA_TASKS, "--db", "typo.db", "mcp"],
        [str(Path(MINNA_TASKS).with_name("python")), "-m", "minna_tasks.mcp_server"]
        + ["--db", "typo.db"],
    ):
        done = subprocess.run(
            command, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=30,
        )  # fmt: skip
        assert done.returncode != 0
        assert done.stderr == (
            f"Error: typo.db does not exist in {tmp_path} (the folder the MCP server was"
            " started in); give --db an absolute path, or create the file first with"
            " `minna-tasks --db typo.db init`\n"
        )
        assert not (tmp_path / "typo.db").exists()


def test_the_environment_path_is_created_on_first_use(tmp_path: Path) -> None:
    env = {**os.environ, "MINNA_DB": "fresh.db"}
    done = subprocess.run(
        [MINNA_TASKS, "mcp"], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"minna-tasks MCP server: serving {tmp_path / 'fresh.db'}\n"
    assert (tmp_path / "fresh.db").exists()


def test_the_tools_still_answer_with_our_messages(tmp_path: Path) -> None:
    db = tmp_path / "m.db"

    async def body() -> str:
        async with Client(params(db)) as c:
            result = await c.call_tool("get_task", {"task_id": "t-404"})
            assert result.is_error
            return text(result)

    assert "t-404" in run(body)
