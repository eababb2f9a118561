"""The root of the command line: the shared store, error handling and output helpers.

Structure from click's "complex application" pattern: the root group takes
`--db`, keeps an `App` on `ctx.obj` that opens the TaskStore once (lazily, on
first use) and closes it with `ctx.call_on_close`; commands receive it with
`pass_app`. User errors become one line `Error: ...` in one place.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from minna_tasks import MinnaTasksError, Task, TaskStore, Transition, defaults
from minna_tasks.dbpath import resolve_db
from minna_tasks.engines import is_postgres_url
from minna_tasks.errors import StoreError
from minna_tasks.memory import DEFAULT_TIMEOUT

DEFAULT_DB = defaults.DB_PATH
# click >= 8.2 raises this for a group called without a command; older clicks print help.
NO_ARGS_IS_HELP: tuple[type[click.ClickException], ...] = tuple(
    getattr(click.exceptions, name)
    for name in ("NoArgsIsHelpError",)
    if hasattr(click.exceptions, name)
)
# OverflowError: an integer option beyond SQLite's 64 bits (e.g. --priority 1e20 as digits).
USER_ERRORS = (MinnaTasksError, ValueError, TypeError, OSError, OverflowError)


def describe(error: BaseException) -> str:
    """One line a person can act on, for any user error."""
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror}"
    return " ".join(str(error).split()) or type(error).__name__


class App:
    """What every command shares: the database path and the store, opened once."""

    def __init__(self, db: str | None = None, busy_timeout: float | None = None) -> None:
        self.db = resolve_db(db)
        # Given with --db (not the default or an environment variable): `mcp` refuses
        # such a relative path that does not exist, rather than create it in a host's folder.
        self.db_given = bool(db)
        self.busy_timeout = DEFAULT_TIMEOUT if busy_timeout is None else busy_timeout
        self._store: TaskStore | None = None
        self._told_waiting = False

    def store(self, create: bool = True) -> TaskStore:
        """The store; reading commands pass create=False: a missing or empty file is
        refused, never created (a read writes nothing), and a file we may not write
        is opened read-only."""
        if self._store is None:
            if not create and not is_postgres_url(self.db):  # a file, not a server URL
                path = Path(self.db)
                if not path.exists():
                    raise StoreError(
                        f"{self.db} does not exist (create it with `minna-tasks init`)", self.db
                    )
                if path.is_file() and path.stat().st_size == 0:
                    raise StoreError(
                        f"{self.db} is empty: not a database yet (make it one with "
                        "`minna-tasks init`)",
                        self.db,
                    )
            self._store = TaskStore(self.db, timeout=self.busy_timeout)
            self._store.memory.on_wait = self._waiting
        return self._store

    def _waiting(self, timeout: float) -> None:
        if not self._told_waiting:
            self._told_waiting = True
            click.echo(
                f"Waiting for {self.db}: another process holds the write lock "
                f"(up to {timeout:g}s; --busy-timeout sets it)",
                err=True,
            )

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


pass_app = click.make_pass_decorator(App)


class MinnaGroup(click.Group):
    """A group that turns user errors into `Error: ...` and keeps usage errors to one line.

    Subcommands may be given lazily, as {name: "module:attribute"}, so that a command
    imports only what it needs (click's "lazy loading subcommands" pattern): an agent
    calling `minna-tasks list` in a loop pays for `list`, not for `run` or `mcp`.
    """

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, _, attribute = self.lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command), self.lazy[cmd_name]
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _reader_gone()  # here, before click's own handler turns it into exit 1
        except USER_ERRORS as e:
            raise click.ClickException(describe(e)) from None

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except NO_ARGS_IS_HELP as e:
            e.show()  # a bare group (`minna-tasks`, `minna-tasks memory`): its help
            sys.exit(e.exit_code)
        except click.ClickException as e:
            _fail(e.format_message(), e.exit_code)
        except click.Abort:
            _fail("interrupted", 130)
        except BrokenPipeError:
            _reader_gone()
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _reader_gone()
        sys.exit(rv if isinstance(rv, int) else 0)


def _reader_gone() -> NoReturn:
    """The reader of stdout went away (`| head`): not an error, end quietly with 0."""
    # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # not a real file descriptor (a test runner's buffer): nothing to flush
    sys.exit(0)


def _fail(message: str, code: int) -> NoReturn:
    # Lone surrogates (non-UTF-8 bytes in argv) must not crash the error message itself.
    text = " ".join(message.split()).encode("utf-8", "backslashreplace").decode("utf-8")
    click.echo(f"Error: {text}", err=True)
    sys.exit(code)


def default_worker() -> str:
    """The one name every command that takes a worker or actor uses by default:
    $MINNA_WORKER when set (so a CMD under `run` acts as its worker), else user@host."""
    if os.environ.get("MINNA_WORKER"):
        return os.environ["MINNA_WORKER"]
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "user"
    return f"{user}@{socket.gethostname()}"


def parse_json(option: str, text: str | None) -> Any:
    """Parse a JSON option value, or raise a one-line error naming the option."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as e:
        raise click.BadParameter(f"not valid JSON ({e})", param_hint=option) from None


# -- output -----------------------------------------------------------------


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """An aligned text table (the last column is not padded); cells are terminal-safe.

    Hand-written rather than tabulate: importing tabulate (it reads its own package
    metadata) costs more than a bare Python start, on every command that prints a table.
    """
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([_width(h), *(_width(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        padded = [v + " " * (w - _width(v)) for v, w in zip(values[:-1], widths[:-1], strict=True)]
        return "  ".join([*padded, values[-1]]).rstrip()

    click.echo(line(list(headers)))
    click.echo(line(["-" * w for w in widths]))
    for row in cells:
        click.echo(line(row))


def _width(text: str) -> int:
    """Terminal columns: wide (CJK) characters take two, combining marks none."""
    if text.isascii():
        return len(text)
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return safe_text(" ".join(value.split()))
    return safe_text(json.dumps(value, ensure_ascii=False))


# Control characters (escape sequences can retitle or reprogram a terminal) and the
# bidirectional overrides that make text display in another order than it reads.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def safe_text(text: str) -> str:
    """`text` with every control character shown as an escape (`\\x1b`), never sent raw."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


TASK_COLUMNS = ("id", "status", "priority", "attempts", "owner", "title")


def task_row(task: Task) -> list[Any]:
    return [
        task.id,
        task.status,
        task.priority,
        f"{task.attempts}/{task.max_attempts}",
        task.owner,
        task.title,
    ]


def show_task(task: Task, needed_by: Sequence[str] | None = None) -> None:
    """A task as `field: value` lines (and the tasks waiting for it, when given)."""
    data = task.to_dict() | ({} if needed_by is None else {"needed_by": list(needed_by)})
    width = max(len(k) for k in data)
    for key, value in data.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        click.echo(f"{key + ':':<{width + 1}} {safe_text(text)}")


def history_rows(steps: Sequence[Transition]) -> list[list[Any]]:
    return [[s.at, s.from_state, s.to_state, s.actor, s.note] for s in steps]


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(f)
