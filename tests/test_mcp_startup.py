"""`minna-tasks mcp` answers `initialize` and `server/discover` while the SDK is loading.

The early reply (mcp_handshake) must be the one the SDK itself sends; requests
sent before the SDK is ready wait and get their answers; the SDK's own reply to
that opening request is never sent twice; a failed SDK load is a one-line error.
Deterministic without timing: a wrapper holds the SDK's import until the test
releases it (a FIFO), so "answered while loading" is what the test observes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types
import pytest
from mcp.client.client import Client
from mcp.client.session import DEFAULT_CLIENT_INFO
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.server.mcpserver import MCPServer
from mcp.shared.message import SessionMessage
from mcp.types import InitializeResult, ListToolsResult, jsonrpc_message_adapter

from minna_tasks import TaskStore, mcp_handshake
from minna_tasks.install_hint import mcp_install_hint
from minna_tasks.mcp_handshake import early_reply
from minna_tasks.mcp_server import TOOL_SETS, build_server

from .test_mcp_server import TASK_TOOLS
from .test_mcp_stdio import MINNA_TASKS, run, server_command, text

CLIENT_VERSIONS = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"]
UNSUPPORTED = "1999-01-01"


def initialize(version: str, request_id: int | str = 1, **params: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "startup-test", "version": "1"},
            **params,
        },
    }


DEFAULT_CLIENT = DEFAULT_CLIENT_INFO.model_dump(mode="json", exclude_none=True)


def discover(
    version: str = "2026-07-28",
    request_id: int | str = 0,
    capabilities: Any = None,
    client_info: Any = DEFAULT_CLIENT,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A `server/discover` as the SDK's `Client` sends it (the 2026-07-28 envelope)."""
    envelope: dict[str, Any] = {
        mcp_types.PROTOCOL_VERSION_META_KEY: version,
        mcp_types.CLIENT_CAPABILITIES_META_KEY: {} if capabilities is None else capabilities,
    }
    if client_info is not None:
        envelope[mcp_types.CLIENT_INFO_META_KEY] = client_info
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "server/discover",
        "params": {"_meta": {**envelope, **(meta or {})}},
    }


INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


async def sdk_reply(server: MCPServer, request: dict[str, Any]) -> dict[str, Any]:
    """What the SDK's own server answers to `request`, as its stdio transport writes it."""
    lowlevel = server._lowlevel_server
    send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](1)
    out_send, out = anyio.create_memory_object_stream[SessionMessage](1)
    message = jsonrpc_message_adapter.validate_python(request, by_name=False)
    async with send, receive, out_send, out, anyio.create_task_group() as tg:
        tg.start_soon(lowlevel.run, receive, out_send, lowlevel.create_initialization_options())
        await send.send(SessionMessage(message))
        reply = await out.receive()
        tg.cancel_scope.cancel()
    dumped: dict[str, Any] = json.loads(
        reply.message.model_dump_json(by_alias=True, exclude_unset=True)
    )
    return dumped


def sdk_replies(tmp_path: Path, tools: str, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The SDK's own replies to `requests`, one by one, from a server of the tool set."""
    with TaskStore(tmp_path / "t.db") as store:
        server = build_server(store, tools)

        async def replies() -> list[dict[str, Any]]:
            return [await sdk_reply(server, r) for r in requests]

        return run(replies)


@pytest.mark.parametrize("tools", TOOL_SETS)
def test_the_early_reply_is_the_sdks_reply(tmp_path: Path, tools: str) -> None:
    requests = [initialize(v) for v in [*CLIENT_VERSIONS, UNSUPPORTED, "not-a-date"]]
    requests.append(
        initialize(
            "2025-06-18",
            request_id="init-7",
            capabilities={"roots": {"listChanged": True}, "sampling": {}, "experimental": {}},
            clientInfo={"name": "host", "title": "A Host", "version": "2.0"},
        )
    )
    expected = sdk_replies(tmp_path, tools, requests)
    for request, sdk in zip(requests, expected, strict=True):
        ours = early_reply(json.dumps(request), tools)
        assert ours == sdk
    # The negotiation itself, as the SDK does it: a handshake version is kept; an
    # unknown or a 2026 (discover-era) one gets the newest handshake version.
    versions = [r["result"]["protocolVersion"] for r in expected]
    assert versions[:4] == CLIENT_VERSIONS[:4]
    assert versions[4:7] == ["2025-11-25"] * 3


@pytest.mark.parametrize(
    "request_",
    [
        "not json",
        json.dumps([initialize("2025-06-18")]),
        json.dumps({**initialize("2025-06-18"), "id": True}),
        json.dumps({**initialize("2025-06-18"), "id": 1.5}),
        json.dumps({**initialize("2025-06-18"), "jsonrpc": "1.0"}),
        json.dumps({**initialize("2025-06-18"), "method": "server/discover"}),
        json.dumps(initialize("2025-06-18", _meta={"progressToken": 1})),
        json.dumps(initialize(2025)),  # type: ignore[arg-type]
        json.dumps(initialize("2025-06-18", capabilities={"tasks": {}})),
        json.dumps(initialize("2025-06-18", capabilities={"roots": {"listChanged": "yes"}})),
        json.dumps(initialize("2025-06-18", capabilities={"sampling": 1})),
        json.dumps(initialize("2025-06-18", clientInfo={"name": "x"})),
        json.dumps(initialize("2025-06-18", clientInfo={"name": "x", "version": "1", "icons": []})),
    ],
)
def test_anything_but_a_plain_initialize_waits_for_the_sdk(request_: str) -> None:
    assert early_reply(request_, "all") is None


@pytest.mark.parametrize("tools", TOOL_SETS)
def test_the_early_discover_reply_is_the_sdks_reply(tmp_path: Path, tools: str) -> None:
    requests = [
        discover(),
        discover(request_id="probe-1", client_info=None),
        discover(
            request_id=7,
            capabilities={
                "roots": {"listChanged": True},
                "sampling": {},
                "elicitation": {"form": {}, "url": {}},
                "experimental": {"x": {}},
                "extensions": {"io.example/ui": {"mode": "full"}},
            },
            client_info={"name": "host", "title": "A Host", "version": "2.0"},
        ),
    ]
    expected = sdk_replies(tmp_path, tools, requests)
    for request, sdk in zip(requests, expected, strict=True):
        ours = early_reply(json.dumps(request), tools)
        assert ours == sdk
    result = expected[0]["result"]
    assert result["supportedVersions"] == ["2026-07-28"]
    assert result["_meta"][mcp_types.SERVER_INFO_META_KEY]["name"] == "minna-tasks"
    # The memory set has no resources: it announces no subscriptions or list changes.
    listen = tools != "memory"
    assert result["capabilities"]["resources"]["subscribe"] is listen
    assert result["capabilities"]["tools"]["listChanged"] is listen


def test_the_envelope_keys_are_the_sdks() -> None:
    assert mcp_handshake.PROTOCOL_VERSION_KEY == mcp_types.PROTOCOL_VERSION_META_KEY
    assert mcp_handshake.CLIENT_INFO_KEY == mcp_types.CLIENT_INFO_META_KEY
    assert mcp_handshake.CLIENT_CAPABILITIES_KEY == mcp_types.CLIENT_CAPABILITIES_META_KEY
    assert mcp_handshake.SERVER_INFO_KEY == mcp_types.SERVER_INFO_META_KEY


UNUSUAL_DISCOVERS = [
    discover("2025-11-25"),  # a handshake version in the envelope: the SDK's -32022
    discover(UNSUPPORTED),
    discover(2026),  # type: ignore[arg-type]
    discover(capabilities={"tasks": {}}),
    discover(capabilities={"roots": {"listChanged": "yes"}}),
    discover(client_info={"name": "x"}),
    discover(client_info={"name": "x", "version": "1", "icons": []}),
    discover(meta={"progressToken": 1}),
    discover(meta={"io.modelcontextprotocol/logLevel": "debug"}),
    {**discover(), "id": True},
    {**discover(), "params": {}},  # no envelope: not a 2026 request at all
    {k: v for k, v in discover().items() if k != "params"},
    {**discover(), "params": {**discover()["params"], "cursor": "x"}},
    {
        **discover(),
        "params": {
            "_meta": {
                k: v
                for k, v in discover()["params"]["_meta"].items()
                if k != mcp_types.CLIENT_CAPABILITIES_META_KEY
            }
        },
    },
]


@pytest.mark.parametrize("request_", UNUSUAL_DISCOVERS)
def test_anything_but_a_plain_discover_waits_for_the_sdk(request_: dict[str, Any]) -> None:
    assert early_reply(json.dumps(request_), "all") is None


# -- a real process whose SDK import is held -------------------------------------------

HOLD = """\
import os, sys

class Hold:
    '''Holds the import of the SDK's server package until the test opens the FIFO.'''

    def find_spec(self, name, path=None, target=None):
        if name == "mcp.server":
            sys.meta_path.remove(self)
            with open(FIFO) as release:
                how = release.read()
            if how == "import-error":
                raise ImportError("mcp.server is broken")
            if how == "crash":
                raise RuntimeError("pydantic exploded")
        return None

FIFO, DB, TOOLS = sys.argv[1:4]
sys.meta_path.insert(0, Hold())
from minna_tasks_cli.main import main
sys.argv = ["minna-tasks", "--db", DB, "mcp", "--tools", TOOLS]
main()
"""


def held_server(tmp_path: Path, tools: str = "all") -> tuple[list[str], Path]:
    fifo = tmp_path / "release"
    os.mkfifo(fifo)
    db = tmp_path / "t.db"
    TaskStore(db).close()
    return [sys.executable, "-c", HOLD, str(fifo), str(db), tools], fifo


def release(fifo: Path, how: str = "go") -> None:
    fifo.write_text(how)  # the held import is waiting on the other end


def test_a_client_pipelines_initialize_initialized_and_tools_list(tmp_path: Path) -> None:
    """The SDK's stdio client sends all three at spawn; initialize is answered while the
    SDK cannot have loaded, the rest once it has, and initialize is answered once."""
    command, fifo = held_server(tmp_path)
    server = StdioServerParameters(command=command[0], args=command[1:])

    async def body() -> tuple[Any, Any]:
        async with stdio_client(server) as (read, write):
            for message in (initialize("2025-06-18"), INITIALIZED, TOOLS_LIST):
                await write.send(SessionMessage(jsonrpc_message_adapter.validate_python(message)))
            first = await read.receive()
            await anyio.to_thread.run_sync(release, fifo)
            second = await read.receive()
            return first, second

    first, second = run(body)
    assert isinstance(first, SessionMessage)
    assert isinstance(second, SessionMessage)
    first_dict = first.message.model_dump(by_alias=True, exclude_unset=True)
    second_dict = second.message.model_dump(by_alias=True, exclude_unset=True)
    assert first_dict["id"] == 1
    init = InitializeResult.model_validate(first_dict["result"])
    assert init.protocol_version == "2025-06-18"
    assert init.server_info.name == "minna-tasks"
    assert second_dict["id"] == 2  # not a second reply to initialize
    tools = {t.name for t in ListToolsResult.model_validate(second_dict["result"]).tools}
    assert len(tools) == 25
    assert TASK_TOOLS <= tools


def raw(command: list[str], lines: list[dict[str, Any]]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    proc.stdin.write("".join(json.dumps(m) + "\n" for m in lines))
    proc.stdin.flush()
    return proc


def finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """The rest of stdout and stderr once the process ends (stderr is a line or two)."""
    assert proc.stdout is not None
    assert proc.stderr is not None
    with proc:  # closes the pipes
        out = proc.stdout.read()
        err = proc.stderr.read()
        proc.wait(timeout=60)
    return out, err


def test_requests_queued_before_the_sdk_is_ready_are_answered_at_the_end_of_input(
    tmp_path: Path,
) -> None:
    """All of stdin, its end included, arrives while the SDK loads: every request is
    still answered (the SDK alone would drop what is running when its input ends)."""
    command, fifo = held_server(tmp_path, "tasks")
    add = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "add_task", "arguments": {"title": "queued"}},
    }
    proc = raw(command, [initialize("2025-11-25"), INITIALIZED, TOOLS_LIST, add])
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.close()
    early = json.loads(proc.stdout.readline())  # answered while the import is held
    release(fifo)
    out, err = finish(proc)
    assert proc.returncode == 0, err
    replies = [early, *map(json.loads, out.splitlines())]
    assert [r["id"] for r in replies] == [1, 2, 3]
    assert {t["name"] for t in replies[1]["result"]["tools"]} == TASK_TOOLS
    assert json.loads(replies[2]["result"]["content"][0]["text"])["title"] == "queued"
    assert "warning" not in err  # the SDK's own reply agreed with the early one
    with TaskStore(tmp_path / "t.db") as store:
        assert [t.title for t in store.list()] == ["queued"]


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("import-error", f"the MCP server needs the mcp extra: {mcp_install_hint()}"),
        (
            "crash",
            "the MCP server could not load the mcp SDK (RuntimeError: pydantic exploded); "
            f"reinstall it with: {mcp_install_hint()}",
        ),
    ],
)
def test_an_sdk_that_fails_to_load_is_a_one_line_error(
    tmp_path: Path, how: str, message: str
) -> None:
    command, fifo = held_server(tmp_path)
    proc = raw(command, [initialize("2025-06-18")])
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline())["id"] == 1
    release(fifo, how)
    out, err = finish(proc)
    assert proc.returncode == 1
    assert out == ""
    assert err.splitlines()[-1] == f"Error: {message}"
    assert err.count("\n") == 2  # "serving ..." and the error: no traceback


def test_an_unusual_initialize_is_answered_once_by_the_sdk(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    odd = initialize("2025-06-18", clientInfo={"name": "x", "version": "1", "icons": []})
    proc = raw(server_command(db), [odd, INITIALIZED, TOOLS_LIST])
    assert proc.stdin is not None
    proc.stdin.close()
    out, err = finish(proc)
    assert [json.loads(line)["id"] for line in out.splitlines()] == [1, 2], err
    assert json.loads(out.splitlines()[0])["result"]["protocolVersion"] == "2025-06-18"


def test_the_sdks_default_client_opens_with_discover_while_the_sdk_loads(tmp_path: Path) -> None:
    """The SDK's `Client` probes `server/discover` at spawn (the 2026-07-28 protocol):
    it is connected while the SDK's import is still held, and its later calls are
    answered once the SDK is up, on the protocol the discover chose."""
    command, fifo = held_server(tmp_path, "tasks")
    server = StdioServerParameters(command=command[0], args=command[1:])

    async def body() -> tuple[Any, Any, set[str], str]:
        async with Client(server) as client:
            session = client.session
            # Connected: only the early reply can have answered (the import is held).
            discovered, capabilities = session.discover_result, session.server_capabilities
            await anyio.to_thread.run_sync(release, fifo)
            tools = {t.name for t in (await client.list_tools()).tools}
            added = await client.call_tool("add_task", {"title": "after discover"})
            return discovered, capabilities, tools, text(added)

    discovered, capabilities, tools, added = run(body)
    assert discovered is not None
    assert discovered.supported_versions == ["2026-07-28"]
    assert capabilities.resources.subscribe is True
    assert tools == TASK_TOOLS
    assert json.loads(added)["title"] == "after discover"


def test_discover_queued_with_requests_is_answered_once(tmp_path: Path) -> None:
    """discover, tools/list and a tool call all arrive while the SDK loads, then stdin
    ends: discover is answered early and once, the rest by the SDK, nothing dropped."""
    command, fifo = held_server(tmp_path, "tasks")
    envelope = discover()["params"]
    add = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "add_task", "arguments": {"title": "queued"}, **envelope},
    }
    tools_list = {**TOOLS_LIST, "params": envelope}
    proc = raw(command, [discover(request_id=1), tools_list, add])
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.close()
    early = json.loads(proc.stdout.readline())  # answered while the import is held
    assert early["result"]["supportedVersions"] == ["2026-07-28"]
    release(fifo)
    out, err = finish(proc)
    assert proc.returncode == 0, err
    replies = [early, *map(json.loads, out.splitlines())]
    assert [r["id"] for r in replies] == [1, 2, 3]
    assert {t["name"] for t in replies[1]["result"]["tools"]} == TASK_TOOLS
    assert json.loads(replies[2]["result"]["content"][0]["text"])["title"] == "queued"
    assert "warning" not in err  # the SDK's own reply agreed with the early one


def test_an_unusual_discover_is_answered_once_by_the_sdk(tmp_path: Path) -> None:
    """A discover at a handshake version is the SDK's error to give (-32022 naming the
    version it serves), once."""
    db = tmp_path / "t.db"
    proc = raw(server_command(db), [discover("2025-11-25", request_id=1)])
    assert proc.stdin is not None
    proc.stdin.close()
    out, err = finish(proc)
    (line,) = out.splitlines()
    reply = json.loads(line)
    assert reply["id"] == 1, err
    assert reply["error"]["code"] == mcp_types.UNSUPPORTED_PROTOCOL_VERSION
    assert reply["error"]["data"]["supported"] == ["2026-07-28"]


def test_a_given_db_is_explicit_even_when_it_matches_the_environment(tmp_path: Path) -> None:
    """--db given is told to the server, not guessed: the same relative path in MINNA_DB
    does not make a missing --db file "implicit"."""
    env = {**os.environ, "MINNA_DB": "typo.db"}
    done = subprocess.run(
        [MINNA_TASKS, "--db", "typo.db", "mcp"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: typo.db does not exist in {tmp_path}")
    assert not (tmp_path / "typo.db").exists()
