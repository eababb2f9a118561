"""What the MCP server says about itself in `initialize` and `server/discover`, without
importing the SDK.

Importing the `mcp` SDK takes about half a second (pydantic builds every protocol
model), so `mcp_stdio` answers a client's opening request (`initialize` before the
2026-07-28 protocol, `server/discover` from it on) from this module while the SDK
loads, and the server built by `mcp_server.build_server` announces the same identity,
instructions and capabilities. The protocol versions come from the SDK's own
registry (`mcp_types/version.py`, read without importing the package); tests
compare these replies with the SDK's for every tool set and several client versions.
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

SERVER_NAME = "minna-tasks"
SERVER_TITLE = "minna-tasks"
SERVER_DESCRIPTION = "Durable, auditable task state and Minna memory on one SQLite file"
# The 2026-07-28 per-request envelope in `params._meta` (names the spec reserves).
PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"

INSTRUCTIONS = """\
Durable task state shared with people and other agents (one SQLite file).
Work a task like this: claim_task(worker) -> do the work -> transition_task(id, "review",
result=...) -> transition_task(id, "completed") (or "pending" to retry, "failed").
Call heartbeat_task while a long job runs so the lease does not expire; release_task hands
a task back untouched; fail_task records a failed attempt (counted: the task is retried
until its attempts are used up) and retry_task gives a failed task a fresh start. Pass the
claimed task's claim_token as `token` to every later call about it: once your lease lapsed
and the task was claimed again, your calls are refused. Every change is kept in the task's
history (get_task).
"""

MEMORY_INSTRUCTIONS = """\
The Minna memory (one SQLite file shared with other tools): memory_store facts about an
entity (a new value never erases the old one), memory_recall / memory_search them,
memory_who for everything about one entity; entities, relations, preferences and session
summaries (memory_summarize_session at the end of a session, memory_get_context at the
start of the next). Confidence halves every 90 days unless memory_verify re-confirms it.
"""


def instructions(tools: str) -> str:
    """The instructions for the tool set `tools` ("all", "tasks" or "memory")."""
    return {
        "all": INSTRUCTIONS + MEMORY_INSTRUCTIONS,
        "tasks": INSTRUCTIONS,
        "memory": MEMORY_INSTRUCTIONS,
    }[tools]


def capabilities(tools: str, *, modern: bool = False) -> dict[str, Any]:
    """The capabilities MCPServer announces for what build_server registers: tools,
    resources and prompts (no list changes), and `resources/subscribe` with the task
    resources (the memory set has none).

    `modern` (the 2026-07-28 protocol): every change is told on `subscriptions/listen`,
    which build_server serves for the sets with task resources, so the SDK announces
    list changes and subscriptions for those; the memory set has nothing to listen to.
    """
    listen = tools != "memory"
    if modern:
        return {
            "prompts": {"listChanged": listen},
            "resources": {"listChanged": listen, "subscribe": listen},
            "tools": {"listChanged": listen},
        }
    return {
        "prompts": {"listChanged": False},
        "resources": {"listChanged": False, "subscribe": listen},
        "tools": {"listChanged": False},
    }


def server_version() -> str:
    from . import __version__

    return __version__


@cache
def sdk_versions() -> ModuleType | None:
    """The SDK's protocol-version registry, loaded from its file without importing the
    `mcp_types` package (whose `__init__` builds every model); None when not found."""
    try:
        spec = importlib.util.find_spec("mcp_types")
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / "version.py"
        loaded = importlib.util.spec_from_file_location("minna_tasks._mcp_versions", path)
        if loaded is None or loaded.loader is None:
            return None
        module = importlib.util.module_from_spec(loaded)
        loaded.loader.exec_module(module)
    except (ImportError, OSError, SyntaxError, ValueError):
        return None
    if not hasattr(module, "HANDSHAKE_PROTOCOL_VERSIONS") or not hasattr(
        module, "LATEST_HANDSHAKE_VERSION"
    ):
        return None
    return module


def negotiate(requested: str, versions: ModuleType) -> str:
    """The SDK's rule: the client's version when it is one the handshake speaks, else the
    newest handshake version (the client then decides whether it can go on)."""
    supported: tuple[str, ...] = versions.HANDSHAKE_PROTOCOL_VERSIONS
    latest: str = versions.LATEST_HANDSHAKE_VERSION
    return requested if requested in supported else latest


def server_info() -> dict[str, str]:
    """Who the server is (`serverInfo`), as the SDK dumps it."""
    return {
        "description": SERVER_DESCRIPTION,
        "name": SERVER_NAME,
        "title": SERVER_TITLE,
        "version": server_version(),
    }


def initialize_result(protocol_version: str, tools: str) -> dict[str, Any]:
    """The `initialize` result for a negotiated `protocol_version`, as the SDK words it."""
    return {
        "capabilities": capabilities(tools),
        "instructions": instructions(tools),
        "protocolVersion": protocol_version,
        "serverInfo": server_info(),
    }


def discover_result(tools: str, versions: ModuleType) -> dict[str, Any]:
    """The `server/discover` result, as the SDK words it on a 2026-07-28 connection: the
    versions it serves there, uncached (`ttlMs` 0, private: the SDK's defaults, no cache
    hints given), and `serverInfo` stamped in `_meta`."""
    return {
        "cacheScope": "private",
        "capabilities": capabilities(tools, modern=True),
        "instructions": instructions(tools),
        "resultType": "complete",
        "supportedVersions": list(versions.MODERN_PROTOCOL_VERSIONS),
        "ttlMs": 0,
        "_meta": {SERVER_INFO_KEY: server_info()},
    }


def early_reply(line: str, tools: str) -> dict[str, Any] | None:
    """The reply to `line` when it is a plain `initialize` or `server/discover` request
    the SDK is sure to accept; None for anything else (the SDK answers it once loaded)."""
    versions = sdk_versions()
    if versions is None:
        return None
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if _plain_initialize(message):
        negotiated = negotiate(message["params"]["protocolVersion"], versions)
        result = initialize_result(negotiated, tools)
    elif _plain_discover(message, versions):
        result = discover_result(tools, versions)
    else:
        return None
    return {"jsonrpc": "2.0", "id": message["id"], "result": result}


# -- what counts as plain -----------------------------------------------------------
# Only shapes the SDK's models accept for certain; anything else (a `_meta` envelope of
# the 2026 protocol, icons, task capabilities, a wrong type) waits for the SDK itself.

_CLIENT_INFO = {"name", "version", "title", "description", "websiteUrl"}
_OBJECT_CAPABILITIES = {"sampling", "elicitation"}  # objects of objects
_MAP_CAPABILITIES = {"experimental", "extensions"}  # {name: object}


def _plain_request(message: Any, method: str) -> bool:
    if not isinstance(message, dict) or set(message) != {"jsonrpc", "id", "method", "params"}:
        return False
    request_id = message["id"]
    if message["jsonrpc"] != "2.0" or message["method"] != method:
        return False
    return isinstance(request_id, str) or type(request_id) is int


def _plain_initialize(message: Any) -> bool:
    if not _plain_request(message, "initialize"):
        return False
    params = message["params"]
    if not isinstance(params, dict) or set(params) != {
        "protocolVersion",
        "capabilities",
        "clientInfo",
    }:
        return False
    return (
        isinstance(params["protocolVersion"], str)
        and _plain_client_info(params["clientInfo"])
        and _plain_capabilities(params["capabilities"])
    )


def _plain_discover(message: Any, versions: ModuleType) -> bool:
    """A `server/discover` carrying nothing but the envelope, at a version the SDK
    serves (it opens a 2026-07-28 connection; any other version is its error to give)."""
    if not _plain_request(message, "server/discover"):
        return False
    params = message["params"]
    if not isinstance(params, dict) or set(params) != {"_meta"}:
        return False
    meta = params["_meta"]
    required = {PROTOCOL_VERSION_KEY, CLIENT_CAPABILITIES_KEY}
    if not isinstance(meta, dict) or not required <= set(meta) <= {*required, CLIENT_INFO_KEY}:
        return False
    version = meta[PROTOCOL_VERSION_KEY]
    served: tuple[str, ...] = getattr(versions, "MODERN_PROTOCOL_VERSIONS", ())
    return (
        isinstance(version, str)
        and version in served
        and (CLIENT_INFO_KEY not in meta or _plain_client_info(meta[CLIENT_INFO_KEY]))
        and _plain_capabilities(meta[CLIENT_CAPABILITIES_KEY])
    )


def _plain_client_info(info: Any) -> bool:
    return (
        isinstance(info, dict)
        and {"name", "version"} <= set(info) <= _CLIENT_INFO
        and all(isinstance(v, str) for v in info.values())
    )


def _plain_capabilities(caps: Any) -> bool:
    if not isinstance(caps, dict):
        return False
    for name, value in caps.items():
        if not isinstance(value, dict):
            return False
        if name == "roots":
            if not set(value) <= {"listChanged"} or not all(
                isinstance(v, bool) for v in value.values()
            ):
                return False
        elif name in _OBJECT_CAPABILITIES or name in _MAP_CAPABILITIES:
            if not all(isinstance(v, dict) for v in value.values()):
                return False
        else:
            return False
    return True
