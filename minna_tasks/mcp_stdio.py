"""`minna-tasks mcp` on stdio: the opening request is answered at once while the SDK loads.

Importing the `mcp` SDK takes longer than an MCP host likes to wait for its
first answer. So this module, which imports nothing heavy, claims stdin and
stdout, reads stdin in a thread, and answers a plain opening request
(`initialize`, or `server/discover` on the 2026-07-28 protocol) from
`mcp_handshake` (the reply the SDK would send) while the main thread imports
the SDK and builds the server. Every line read, that request included, is
then handed to the SDK in order, so its session goes through the handshake (or
picks the protocol era from the discover) as usual; its own reply to that
request is dropped (and compared with ours).
Requests that arrive before the SDK is ready wait in a queue, and are answered
even when stdin ends right after them (the SDK would drop requests still running
at the end of its input).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import queue
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from . import defaults
from .engines import is_postgres_url
from .errors import MinnaTasksError, StoreError
from .install_hint import mcp_install_hint

__all__ = ["Stdio", "require_sdk", "sdk_missing", "serve", "served_path"]

SERVER_MODULE = "minna_tasks.mcp_server"
# The longest the end of stdin waits for the answers to requests queued while the SDK
# loaded (a claim_task may wait up to 60 s for work).
QUEUED_ANSWERS_WAIT = 90.0


def sdk_missing() -> str:
    """The message for an install without the `mcp` extra, with a command that adds it."""
    return f"the MCP server needs the mcp extra: {mcp_install_hint()}"


def require_sdk() -> None:
    """Refuse early, before a file is opened or a byte is answered, when the SDK or the
    server module is not installed (finding them imports neither)."""
    if importlib.util.find_spec("mcp") is None:
        raise MinnaTasksError(sdk_missing())
    if importlib.util.find_spec(SERVER_MODULE) is None:
        raise ModuleNotFoundError(f"No module named {SERVER_MODULE!r}", name=SERVER_MODULE)


def served_path(db_path: str, explicit: bool) -> str:
    """The absolute path of the file to serve.

    An `explicit` (given with --db) relative path that does not exist is refused:
    the host's working folder is rarely the user's, and serving a fresh empty file
    there hides the mistake. The default path and the environment variables keep
    "created on first use".
    """
    if db_path == ":memory:" or is_postgres_url(db_path):
        return db_path  # a server's database, not a file
    path = Path(db_path)
    if explicit and not path.is_absolute() and not path.exists():
        raise StoreError(
            f"{db_path} does not exist in {Path.cwd()} (the folder the MCP server was started"
            " in); give --db an absolute path, or create the file first with"
            f" `minna-tasks --db {db_path} init`",
            db_path,
        )
    return str(path.absolute())


def serve(db_path: str, tools: str = "all", *, explicit: bool = True) -> None:
    """Serve the store at `db_path` over stdio until the client disconnects.

    `explicit`: the path was given on the command line (see served_path). Says on
    stderr which absolute file it serves (a host starts servers in a folder of its
    own, so a relative path is easy to get wrong).
    """
    if tools not in defaults.MCP_TOOL_SETS:
        raise ValueError(f"tools must be one of {', '.join(defaults.MCP_TOOL_SETS)}, not {tools!r}")
    require_sdk()
    path = served_path(db_path, explicit)
    from .store import TaskStore

    store = TaskStore(path)
    try:
        print(f"minna-tasks MCP server: serving {path}", file=sys.stderr, flush=True)
        stdio = Stdio(tools)
        try:
            server = _load_server()
            server.run_stdio(store, tools, stdio)
        finally:
            stdio.restore()
    finally:
        store.close()


def _load_server() -> Any:
    """Import the SDK and the server module (the slow part), or say why it failed."""
    try:
        return importlib.import_module(SERVER_MODULE)
    except MinnaTasksError:
        raise
    except Exception as e:  # a broken install: one line, not a traceback
        raise MinnaTasksError(
            f"the MCP server could not load the mcp SDK ({type(e).__name__}: {e}); "
            f"reinstall it with: {mcp_install_hint()}"
        ) from e


class Stdio:
    """The MCP wire on this process's stdin and stdout, read from the moment it is made.

    While it is held, fd 0 reads the null device and fd 1 writes to stderr (as the
    SDK's own stdio transport does), so stray output cannot corrupt the wire.
    """

    def __init__(self, tools: str) -> None:
        self._tools = tools
        self._lock = threading.Lock()
        self._sdk_reading = False
        # The reply sent early, until the SDK's own reply to it is dropped.
        self._early: dict[str, Any] | None = None
        self.lines: queue.Queue[str | None] = queue.Queue()
        # Ids of requests queued before the SDK was ready and not answered yet.
        self._awaited: set[Any] = set()
        self.queued_answered = threading.Event()
        self.queued_answered.set()
        self._restore: list[tuple[int, int]] = []
        sys.stdout.flush()
        self._in = self._claim(sys.stdin, 0, "rb", os.open(os.devnull, os.O_RDONLY))
        self._out = self._claim(sys.stdout, 1, "wb", os.dup(2))
        self._reader = threading.Thread(target=self._read, name="mcp-stdin", daemon=True)
        self._reader.start()

    def _claim(self, stream: TextIO, fd: int, mode: str, diversion: int) -> TextIO:
        """A private text stream on `fd`'s file, with `fd` itself pointed at `diversion`."""
        try:
            backed = stream.fileno() == fd
        except (AttributeError, OSError, ValueError):  # a test runner's in-memory stream
            backed = False
        if not backed:
            os.close(diversion)
            return stream
        private = os.dup(fd)
        os.set_inheritable(private, False)
        os.dup2(diversion, fd)
        os.close(diversion)
        self._restore.append((private, fd))
        # closefd=False: the reader thread may still be blocked on it at exit.
        binary = os.fdopen(private, mode, closefd=False)
        # As the SDK's transport reads: UTF-8, a bad byte replaced, not fatal.
        errors = "replace" if mode == "rb" else None
        return io.TextIOWrapper(binary, encoding="utf-8", errors=errors)

    def _read(self) -> None:
        first = True
        try:
            for line in self._in:
                if first:
                    first = False
                    self._answer_early(line)
                elif self._awaited:
                    self._note_cancel(line)
                self.lines.put(line)
        except (OSError, ValueError):
            pass  # stdin closed under us: the same as its end
        finally:
            self.lines.put(None)

    def _answer_early(self, line: str) -> None:
        from .mcp_handshake import early_reply

        reply = early_reply(line, self._tools)
        if reply is None:
            return
        with self._lock:
            if self._sdk_reading:  # the SDK is up already: it answers
                return
            self._early = reply
            self._write(json.dumps(reply, ensure_ascii=False, separators=(",", ":")) + "\n")

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    def handover(self) -> None:
        """From now on the SDK answers everything, starting with the queued lines."""
        with self._lock:
            self._sdk_reading = True
            with self.lines.mutex:
                queued = list(self.lines.queue)
            early = None if self._early is None else self._early["id"]
            for line in queued:
                message = {} if line is None else _message(line)
                if "method" in message and "id" in message and message["id"] != early:
                    self._awaited.add(_key(message["id"]))
            if self._awaited:
                self.queued_answered.clear()

    def _note_cancel(self, line: str) -> None:
        """A client may cancel a queued request: then no answer is coming."""
        message = _message(line)
        if message.get("method") == "notifications/cancelled":
            params = message.get("params")
            if isinstance(params, dict):
                self._answered(params.get("requestId"))

    def _answered(self, request_id: Any) -> None:
        with self._lock:
            self._awaited.discard(_key(request_id))
            if not self._awaited:
                self.queued_answered.set()

    def write(self, text: str) -> None:
        """Write one of the SDK's messages, unless it is its reply to the request
        answered early: that one is dropped (a warning if it says something else)."""
        with self._lock:
            if self._early is not None and self._is_early_reply(text):
                return
            self._write(text)
        if self._awaited:
            message = _message(text)
            if "id" in message and "method" not in message:
                self._answered(message["id"])

    def _is_early_reply(self, text: str) -> bool:
        early = self._early
        try:
            message = json.loads(text)
        except ValueError:
            return False
        if not isinstance(message, dict) or "method" in message:
            return False
        if early is None or message.get("id") != early["id"]:
            return False
        self._early = None
        if message != early:
            print(
                "minna-tasks MCP server: warning: the opening request was answered early with "
                f"{json.dumps(early)}, but the mcp SDK answers {text.strip()}",
                file=sys.stderr,
                flush=True,
            )
        return True

    def restore(self) -> None:
        """Point fds 0 and 1 back at the wire (the private copies stay open: the reader
        thread may still be blocked on one)."""
        for private, fd in self._restore:
            try:
                os.dup2(private, fd)
            except OSError:
                pass
        self._restore = []


def _message(line: str) -> dict[str, Any]:
    """A JSON-RPC message as a dict ({} for anything else)."""
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        return {}
    return message if isinstance(message, dict) else {}


def _key(request_id: Any) -> Any:
    """A request id as a set member (an unhashable id, never valid, becomes its text)."""
    return request_id if isinstance(request_id, str | int) else repr(request_id)
