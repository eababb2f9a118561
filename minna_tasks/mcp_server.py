"""The MCP server: task state and Minna memory for agents, over stdio.

A thin front over `TaskStore` built on the official `mcp` SDK (2.x,
`MCPServer`). Resources show the queue, the tasks being worked on, the
totals and one task with its history; tools mirror them (many hosts never
read resources), and the 16 Minna memory tools come from `mcp_memory`
(`--tools all|tasks|memory` chooses). Every rule lives in the core: a tool parses
its arguments, calls one store method and returns JSON. Our own errors (and
ValueError/TypeError from argument checks) come back as tool errors carrying
our one-line message; the core guarantees that a refused call wrote nothing.

Run it with `minna-tasks --db FILE mcp` or `python -m minna_tasks.mcp_server --db FILE`;
both start in `mcp_stdio`, which answers `initialize` while this module loads.
"""

from __future__ import annotations

import argparse
import json
import queue
import re
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any, TypeVar, cast
from urllib.parse import quote

import anyio
import anyio.to_thread

from . import defaults
from .dbpath import resolve_db
from .errors import MinnaTasksError, TaskNotFound
from .mcp_handshake import (
    SERVER_DESCRIPTION,
    SERVER_NAME,
    SERVER_TITLE,
    instructions,
    server_version,
)
from .mcp_stdio import QUEUED_ANSWERS_WAIT, Stdio, sdk_missing, serve, served_path
from .records import Task
from .store import TaskStore

TOOL_SETS = defaults.MCP_TOOL_SETS

try:
    import anyio
    from mcp.server.context import ServerRequestContext
    from mcp.server.mcpserver import Context, MCPServer, ResourceSecurity
    from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
    from mcp.server.stdio import stdio_server
    from mcp.server.subscriptions import InMemorySubscriptionBus
    from mcp.shared._context_streams import create_context_streams
    from mcp.shared.message import SessionMessage
    from mcp.shared.subscriptions import ResourceUpdated
    from mcp.types import (
        CallToolResult,
        EmptyResult,
        ErrorData,
        InputRequiredResult,
        JSONRPCError,
        SubscribeRequestParams,
        TextContent,
        ToolAnnotations,
        UnsubscribeRequestParams,
    )
    from pydantic import ValidationError

    from .mcp_memory import MEMORY_TOOLS, MemoryTools, add_memory_tools
    from .mcp_notify import relaying
    from .mcp_schemas import (
        AnyJSON,
        MaybeTaskResult,
        TaskListResult,
        TaskResult,
        TaskWithHistoryResult,
    )
except ImportError as e:  # the optional `mcp` extra is not installed
    raise MinnaTasksError(sdk_missing()) from e

__all__ = [
    "CURRENT_URI",
    "QUEUE_URI",
    "STATS_URI",
    "TASK_URI",
    "TOOL_SETS",
    "build_server",
    "main",
    "run_stdio",
    "serve",
    "served_path",
    "task_uri",
]

# Who a tool call acts as when it names no actor.
MCP_ACTOR = "mcp"
QUEUE_URI = "task://queue"
CURRENT_URI = "task://current"
STATS_URI = "task://stats"
TASK_URI = "task://{task_id}"

# The longest a claim_task call waits for work: many hosts time a tool call out after a
# minute or two, so an agent that wants to wait longer calls again.
MAX_WAIT_SECONDS = 60

# Errors a caller can act on: reported as tool errors with our message. Anything
# else is a bug; the SDK logs it and answers with a generic tool error.
USER_ERRORS = (MinnaTasksError, ValueError, TypeError)


def task_uri(task_id: str) -> str:
    """The resource URI of one task (the id percent-encoded, so any id is one path segment)."""
    return "task://" + quote(task_id, safe="")


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _ok(value: Any) -> CallToolResult:
    """A tool result: JSON text for every host, and the same value as structured content."""
    structured = value if isinstance(value, dict) else {"result": value}
    return CallToolResult(
        content=[TextContent(type="text", text=_dumps(value))], structured_content=structured
    )


def _refused(error: Exception) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=str(error))], is_error=True)


T = TypeVar("T")


async def _off_loop(call: Callable[[], T]) -> T:
    """Run a store call in a worker thread: a busy file (a lock wait of up to the busy
    timeout) or a long read must not stall the event loop and every other request."""
    return await anyio.to_thread.run_sync(call)


class _Readers:
    """One store per worker thread for reads, beside the writing store.

    WAL lets readers run beside the writer, but one connection behind one lock
    would serve them one at a time, and behind a write that waits for the lock.
    """

    def __init__(self, store: TaskStore) -> None:
        self.store = store
        self._local = threading.local()
        self._opened: list[TaskStore] = []
        self._lock = threading.Lock()
        # A second connection to ":memory:" would open another, empty database.
        self._shared = store.path == ":memory:"

    def get(self) -> TaskStore:
        """This thread's reading store (opened on first use)."""
        if self._shared:
            return self.store
        reader: TaskStore | None = getattr(self._local, "store", None)
        if reader is None:
            reader = TaskStore(
                self.store.path, self.store.machine, timeout=self.store.memory.timeout
            )
            with self._lock:
                self._opened.append(reader)
            self._local.store = reader
        return reader

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for reader in opened:
            reader.close()


class _ThreadMemory:
    """The calling worker thread's reading memory (see _Readers), for the memory tools."""

    def __init__(self, readers: _Readers) -> None:
        self._readers = readers

    def __getattr__(self, name: str) -> Any:
        return getattr(self._readers.get().memory, name)


class _MemoryRouter:
    """The memory tools, the read-only ones (MEMORY_TOOLS) on the reading connections."""

    def __init__(self, writing: MemoryTools, reading: MemoryTools) -> None:
        self._writing = writing
        self._reading = reading

    def __getattr__(self, name: str) -> Any:
        _, read_only = MEMORY_TOOLS.get(name, ("", False))
        return getattr(self._reading if read_only else self._writing, name)


def _memory_tools(store: TaskStore, readers: _Readers, run: Any) -> MemoryTools:
    reading = MemoryTools(store, run)
    reading.memory = cast(Any, _ThreadMemory(readers))
    return cast(MemoryTools, _MemoryRouter(MemoryTools(store, run), reading))


def _task_with_history(store: TaskStore, task_id: str) -> dict[str, Any]:
    with store.snapshot():  # one snapshot: the fields and the history agree
        task = store.get(task_id)
        history = store.history(task_id)
    return {**task.to_dict(), "history": [t.to_dict() for t in history]}


def _tasks(tasks: Iterable[Task]) -> list[dict[str, Any]]:
    return [task.to_dict() for task in tasks]


class _Subscribers:
    """Connections that subscribed with the handshake-era `resources/subscribe` request.

    Clients on the 2026-07-28 protocol use `subscriptions/listen` instead, which
    the SDK serves itself; both are told when a tool changes a task.
    """

    def __init__(self) -> None:
        self.by_uri: dict[str, list[Any]] = {}

    @staticmethod
    def _connection(ctx: ServerRequestContext[Any, Any]) -> Any:
        # A ServerSession lives for one request; the connection behind it lives as
        # long as the client. The SDK does not expose it publicly (2.3), hence getattr.
        return getattr(ctx.session, "_connection", ctx.session)

    async def subscribe(
        self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams
    ) -> EmptyResult:
        connections = self.by_uri.setdefault(str(params.uri), [])
        connection = self._connection(ctx)
        if not any(c is connection for c in connections):
            connections.append(connection)
        return EmptyResult()

    async def unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        connection = self._connection(ctx)
        connections = self.by_uri.get(str(params.uri), [])
        connections[:] = [c for c in connections if c is not connection]
        return EmptyResult()

    async def notify(self, uri: str) -> None:
        connections = self.by_uri.get(uri, [])
        for connection in list(connections):
            try:
                await connection.send_resource_updated(uri)
            except Exception:  # the client went away: forget it, never fail the tool
                connections[:] = [c for c in connections if c is not connection]


class _Server(MCPServer):
    """MCPServer with one-line messages for arguments that fail the input schema, and
    a JSON-RPC error reply for stdin lines the SDK cannot read (it drops them)."""

    readers: _Readers | None = None

    async def run_stdio_async(self, stdio: Stdio | None = None) -> None:
        """Serve on stdio; with `stdio`, on the lines it has read and reads (see mcp_stdio)."""
        streams: tuple[Any, Any] = (None, None)
        if stdio is not None:
            stdio.handover()
            streams = (_Lines(stdio), _Output(stdio))
        async with stdio_server(*streams) as (read_stream, write_stream):
            send, receive = create_context_streams[SessionMessage | Exception](0)
            async with anyio.create_task_group() as tg:
                tg.start_soon(_answer_unreadable, read_stream, send, write_stream)
                await self._lowlevel_server.run(
                    receive, write_stream, self._lowlevel_server.create_initialization_options()
                )

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as e:
            cause = e.__cause__
            if not isinstance(cause, ValidationError):
                raise
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}"
                for err in cause.errors()
            )
            raise ToolError(f"invalid arguments for {name}: {problems}") from cause


class _Tools:
    """The tool handlers: each parses nothing itself, calls one store method, returns JSON."""

    def __init__(self, store: TaskStore, subscribers: _Subscribers, readers: _Readers) -> None:
        self.store = store
        self.memory = store.memory
        self.subscribers = subscribers
        self.readers = readers

    @property
    def reader(self) -> TaskStore:
        """The store a read uses: this worker thread's own connection (see _Readers)."""
        return self.readers.get()

    async def _run(
        self, action: Callable[[], Any], ctx: Context | None = None, changed: bool = False
    ) -> CallToolResult:
        """Run one store call off the event loop. Subscribers hear of its changes from the
        relay (mcp_notify), which tells them about every process's changes, this server's
        included."""
        try:
            value = await _off_loop(action)
        except USER_ERRORS as e:
            return _refused(e)
        return _ok(value)

    async def add_task(
        self,
        title: str,
        ctx: Context,
        description: str = "",
        priority: int = 0,
        max_attempts: int = defaults.MAX_ATTEMPTS,
        payload: AnyJSON = None,
        task_id: str | None = None,
        depends_on: list[str] | None = None,
    ) -> TaskResult:
        """Add a pending task and return it. Higher `priority` is claimed first; `payload`
        is any JSON value for the worker; `task_id` defaults to `t-N`; the task is not
        claimed before every task in `depends_on` (ids) is completed."""
        add = partial(self.store.add, title, description, priority, max_attempts, payload, task_id)
        add = partial(add, depends_on=depends_on)
        return await self._run(lambda: add().to_dict(), ctx, changed=True)

    async def claim_task(
        self,
        worker: str,
        ctx: Context,
        lease_seconds: float = defaults.LEASE_SECONDS,
        wait_seconds: float = 0,
    ) -> MaybeTaskResult:
        """Claim the next ready pending task (highest priority, then oldest) for `worker`: it moves
        to in_progress with a lease of `lease_seconds`. Returns the task, or null when no task
        is pending. With `wait_seconds` (up to 60), wait that long for a task anyone adds
        instead of polling. A task is never handed to two workers. Pass the task's
        `claim_token` as `token` to every later move of it, so a claim that lapsed cannot
        move it."""
        if isinstance(wait_seconds, int | float) and wait_seconds > MAX_WAIT_SECONDS:
            return _refused(
                ValueError(
                    f"wait_seconds must be at most {MAX_WAIT_SECONDS}, not {wait_seconds:g}: "
                    "call claim_task again to wait longer"
                )
            )
        stop = threading.Event()

        def claim() -> dict[str, Any] | None:
            task = self.store.claim(worker, lease_seconds, wait=wait_seconds or None, stop=stop)
            if task is not None and stop.is_set():  # the call was cancelled as it claimed
                self.store.release(task.id, worker, "claim cancelled", task.claim_token)
                return None
            return None if task is None else task.to_dict()

        try:
            # Off the event loop: the server keeps answering while this call waits.
            value = await anyio.to_thread.run_sync(claim, abandon_on_cancel=True)
        except USER_ERRORS as e:
            return _refused(e)
        finally:
            stop.set()
        return await self._run(lambda: value, ctx, changed=True)

    async def transition_task(
        self,
        task_id: str,
        to_state: str,
        ctx: Context,
        expected: str | None = None,
        note: str | None = None,
        actor: str | None = None,
        result: AnyJSON = None,
        event: str | None = None,
        force: bool = False,
        token: int | None = None,
    ) -> TaskResult:
        """Move a task to `to_state` (a state of the file's state machine) in one atomic
        step, and return it. `expected` refuses the move if the task is no longer in that
        state; `actor` is who moves it (default "mcp"): a task a worker holds moves only
        for that worker, or with `force: true` (recorded as forced); `note` is the reason
        kept in the history; `result` (any JSON) is stored with the move; `event` names
        the event when a move has several (in_progress -> pending is a release, fail or
        expire); `token` (the claim's `claim_token`) refuses the move once another claim
        holds the task. An invalid move is refused with the moves that are allowed."""
        return await self._run(
            lambda: self.store.transition(
                task_id,
                to_state,
                expected=expected,
                actor=actor or MCP_ACTOR,
                note=note,
                result=result,
                event=event,
                force=force,
                token=token,
            ).to_dict(),
            ctx,
            changed=True,
        )

    async def list_tasks(self, status: str | None = None) -> TaskListResult:
        """All tasks, oldest first, or only those in one `status`."""
        return await self._run(lambda: _tasks(self.reader.list(status=status)))

    async def get_task(self, task_id: str) -> TaskWithHistoryResult:
        """One task with its full history of status changes (time, actor, note)."""
        return await self._run(lambda: _task_with_history(self.reader, task_id))

    async def heartbeat_task(
        self,
        task_id: str,
        worker: str,
        ctx: Context,
        lease_seconds: float = defaults.LEASE_SECONDS,
        token: int | None = None,
    ) -> TaskResult:
        """Extend the lease of a task `worker` holds to `lease_seconds` from now; refused if
        the worker no longer holds it (its lease expired and the task was recovered), or
        if `token` is not the token of the claim holding it now."""
        return await self._run(
            lambda: self.store.heartbeat(
                task_id, worker, lease_seconds=lease_seconds, token=token
            ).to_dict(),
            ctx,
            changed=True,
        )

    async def release_task(
        self,
        task_id: str,
        worker: str,
        ctx: Context,
        note: str | None = None,
        token: int | None = None,
    ) -> TaskResult:
        """Give a task `worker` holds back to the queue (pending) without counting an attempt;
        with `token`, only while that claim holds it."""
        return await self._run(
            lambda: self.store.release(task_id, worker, note=note, token=token).to_dict(),
            ctx,
            changed=True,
        )

    async def fail_task(
        self, task_id: str, worker: str, error: str, ctx: Context, token: int | None = None
    ) -> TaskResult:
        """Record that `worker`'s attempt at a task it holds failed with `error`: the attempt
        is counted and the task goes back to pending, or to failed once its attempts are
        used up (so a task that always fails is not retried forever). With `token`, only
        while that claim holds it."""
        return await self._run(
            lambda: self.store.fail(task_id, worker=worker, error=error, token=token).to_dict(),
            ctx,
            changed=True,
        )

    async def retry_task(self, task_id: str, ctx: Context) -> TaskResult:
        """Give a failed task a fresh start: back to pending with its attempts at 0 (the old
        attempts stay in its history)."""
        return await self._run(
            lambda: self.store.retry(task_id, actor="mcp").to_dict(), ctx, changed=True
        )


TOOL_TITLES = {
    "add_task": "Add a task",
    "claim_task": "Claim the next task",
    "transition_task": "Move a task to another state",
    "list_tasks": "List tasks",
    "get_task": "Get a task with its history",
    "heartbeat_task": "Extend a task's lease",
    "release_task": "Hand a task back to the queue",
    "fail_task": "Record a failed attempt",
    "retry_task": "Retry a failed task",
}
READ_ONLY_TOOLS = {"list_tasks", "get_task"}


def build_server(store: TaskStore, tools: str = "all") -> MCPServer:
    """An MCP server whose resources and tools read and change `store`.

    `tools`: "all", "tasks" (the task tools and resources only) or "memory" (exactly
    the 16 Minna memory tools: a drop-in Minna memory server).
    """
    if tools not in TOOL_SETS:
        raise ValueError(f"tools must be one of {', '.join(TOOL_SETS)}, not {tools!r}")
    bus, subscribers = InMemorySubscriptionBus(), _Subscribers()
    # The identity and instructions mcp_stdio's early `initialize` reply gives as well.
    server = _Server(
        SERVER_NAME,
        title=SERVER_TITLE,
        description=SERVER_DESCRIPTION,
        instructions=instructions(tools),
        version=server_version(),
        log_level="WARNING",
        # The memory set has no resources to subscribe to: no `subscriptions/listen`.
        subscriptions=False if tools == "memory" else bus,
        lifespan=None if tools == "memory" else _notifying(store, bus, subscribers),
    )
    readers = server.readers = _Readers(store)
    handlers = _Tools(store, subscribers, readers)
    if tools != "memory":
        _add_legacy_subscriptions(server, subscribers)
        _add_resources(server, readers)
        for name, title in TOOL_TITLES.items():
            hint = ToolAnnotations(read_only_hint=name in READ_ONLY_TOOLS)
            server.add_tool(getattr(handlers, name), name=name, title=title, annotations=hint)
    if tools != "tasks":
        add_memory_tools(server, _memory_tools(store, readers, handlers._run))
    return server


def _notifying(
    store: TaskStore, bus: InMemorySubscriptionBus, subscribers: _Subscribers
) -> Callable[[MCPServer], AbstractAsyncContextManager[None]]:
    """The server's lifespan: relay every process's task changes to subscribers."""

    async def notify(task_ids: list[str]) -> None:
        for uri in (QUEUE_URI, CURRENT_URI, STATS_URI, *map(task_uri, task_ids)):
            await bus.publish(ResourceUpdated(uri=uri))  # subscriptions/listen streams
            await subscribers.notify(uri)  # resources/subscribe sessions

    return lambda server: relaying(store, notify)


def _add_resources(server: MCPServer, readers: _Readers) -> None:
    @server.resource(
        QUEUE_URI,
        name="queue",
        title="Task queue",
        mime_type="application/json",
        description="Ready pending tasks (every dependency completed) in claim order"
        " (highest priority, then oldest).",
    )
    async def queue() -> str:
        return await _off_loop(lambda: _dumps(_tasks(readers.get().queue())))

    @server.resource(
        CURRENT_URI,
        name="current",
        title="Tasks being worked on",
        mime_type="application/json",
        description="Tasks a worker holds (in progress or in review), with owner and lease.",
    )
    async def current() -> str:
        def held() -> str:
            reader = readers.get()
            return _dumps(_tasks(reader.list(status=reader.machine.held)))

        return await _off_loop(held)

    @server.resource(
        STATS_URI,
        name="stats",
        title="Tasks per state",
        mime_type="application/json",
        description="How many tasks are in each state ({state: count}, every state listed),"
        ' and under "readiness" how many queued tasks are ready and how many blocked.',
    )
    async def stats() -> str:
        def counts() -> str:
            reader = readers.get()
            with reader.snapshot():  # one snapshot: the counts agree
                return _dumps({**reader.stats(), "readiness": reader.readiness()})

        return await _off_loop(counts)

    # A task id is a database key, not a path: the SDK's path checks do not apply.
    @server.resource(
        TASK_URI,
        name="task",
        title="One task with its history",
        mime_type="application/json",
        description="One task's current fields and every status change (time, actor, note).",
        security=ResourceSecurity(exempt_params={"task_id"}),
    )
    async def task(task_id: str) -> str:
        try:
            return await _off_loop(lambda: _dumps(_task_with_history(readers.get(), task_id)))
        except TaskNotFound as e:
            raise ResourceNotFoundError(str(e)) from None
        except USER_ERRORS as e:
            raise ResourceError(str(e)) from None


def _add_legacy_subscriptions(server: MCPServer, subscribers: _Subscribers) -> None:
    """Serve `resources/subscribe` for clients on the handshake-era protocol.

    MCPServer has no public hook for it, so the handlers go on its low-level server.
    """
    lowlevel = server._lowlevel_server
    lowlevel.add_request_handler(
        "resources/subscribe", SubscribeRequestParams, subscribers.subscribe
    )
    lowlevel.add_request_handler(
        "resources/unsubscribe", UnsubscribeRequestParams, subscribers.unsubscribe
    )


def run_stdio(store: TaskStore, tools: str, stdio: Stdio) -> None:
    """Serve `store` on the wire `stdio` holds until the client disconnects."""
    server = build_server(store, tools)
    assert isinstance(server, _Server)
    try:
        anyio.run(partial(server.run_stdio_async, stdio))
    finally:
        if server.readers is not None:
            server.readers.close()


class _Lines:
    """The lines mcp_stdio read (and reads), as the SDK's stdio transport iterates them."""

    def __init__(self, stdio: Stdio) -> None:
        self._lines = stdio.lines
        self._queued_answered = stdio.queued_answered

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        try:
            line = self._lines.get_nowait()
        except queue.Empty:
            line = await anyio.to_thread.run_sync(self._lines.get, abandon_on_cancel=True)
        if line is None:
            self._lines.put(None)  # stays at its end for any later read
            # Requests queued while the SDK loaded are answered before their end.
            await anyio.to_thread.run_sync(
                self._queued_answered.wait, QUEUED_ANSWERS_WAIT, abandon_on_cancel=True
            )
            raise StopAsyncIteration
        return line


class _Output:
    """stdout for the SDK's stdio transport, through mcp_stdio (which drops the SDK's
    reply to an `initialize` it answered already)."""

    def __init__(self, stdio: Stdio) -> None:
        self._stdio = stdio

    async def write(self, text: str) -> None:
        await anyio.to_thread.run_sync(self._stdio.write, text)

    async def flush(self) -> None:
        """Each write is flushed already."""


# -- lines the SDK cannot read --------------------------------------------------

_ID = re.compile(r'"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")')


async def _answer_unreadable(source: Any, sink: Any, out: Any) -> None:
    """Forward the messages the SDK read; answer each line it could not read (not JSON,
    nested deeper than its JSON reader allows, lone surrogates) with a JSON-RPC error."""
    async with sink:
        async for item in source:
            if isinstance(item, Exception):
                await out.send(SessionMessage(_unreadable(item)))
            else:
                await sink.send(item)


def _unreadable(error: Exception) -> JSONRPCError:
    """The JSON-RPC error for a line that failed the SDK's reader, with the request's id
    when the line shows one (so the caller is not left waiting)."""
    code, message, request_id = -32700, f"Parse error: {error}", None
    if isinstance(error, ValidationError) and error.errors():
        first = error.errors()[0]
        given = first.get("input")
        if first["type"] == "json_invalid":
            reason = str((first.get("ctx") or {}).get("error", first["msg"]))
            message = f"Parse error: {reason}{_hint(reason)}"
            if isinstance(given, str):
                request_id = _request_id(given)
        else:
            code, message = -32600, "Invalid Request: not a JSON-RPC 2.0 message"
            if isinstance(given, dict):
                request_id = _valid_id(given.get("id"))
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=message))


def _hint(reason: str) -> str:
    if "recursion limit" in reason:
        return " (the message is nested deeper than this server's JSON reader allows)"
    if "hex escape" in reason or "surrogate" in reason:
        return " (a lone UTF-16 surrogate such as \\ud800 is not text)"
    return ""


def _request_id(line: str) -> int | str | None:
    """The top-level id of a line Python's own JSON reader may still parse, else found by
    pattern in the line's head (a deep or odd body does not hide it)."""
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        match = _ID.search(line)
        if match is None or line[: match.start()].count("{") != 1:
            return None
        try:
            return _valid_id(json.loads(match.group(1)))
        except ValueError:
            return None
    return _valid_id(message.get("id")) if isinstance(message, dict) else None


def _valid_id(value: Any) -> int | str | None:
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m minna_tasks.mcp_server --db PATH`: the same server as `minna-tasks mcp`."""
    parser = argparse.ArgumentParser(
        prog="python -m minna_tasks.mcp_server",
        description="Serve minna-tasks over MCP on stdio.",
    )
    parser.add_argument(
        "--db",
        help=(
            "the SQLite file, or a postgresql:// URL "
            f"(default: $MINNA_DB, else $MINNA_DB_PATH, else {defaults.DB_PATH})"
        ),
    )
    parser.add_argument(
        "--tools",
        choices=TOOL_SETS,
        default="all",
        help="which tools to serve: all (default), tasks, or memory (the 16 Minna tools)",
    )
    args = parser.parse_args(argv)
    try:
        serve(resolve_db(args.db), args.tools, explicit=bool(args.db))
    except MinnaTasksError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
