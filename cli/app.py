"""The root of the command line: the shared store, error handling and output helpers.

Structure from click's "complex application" pattern: the root group takes
`--db`, keeps an `App` on `ctx.obj` that opens the TaskStore once (lazily, on
first use) and closes it with `ctx.call_on_close`; commands receive it with
`pass_app`. User errors become one line `Error: ...` in one place.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from minna_tasks import MinnaTasksError, Task, TaskStore, Transition, defaults
from minna_tasks.errors import StoreError

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

    def __init__(self, db: str) -> None:
        self.db = db
        self._store: TaskStore | None = None

    def store(self, create: bool = True) -> TaskStore:
        """The store; read-only commands pass create=False so a typo'd --db is not created."""
        if self._store is None:
            if not create and not Path(self.db).exists():
                raise StoreError(
                    f"{self.db} does not exist (create it with `minna-tasks init`)", self.db
                )
            self._store = TaskStore(self.db)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


pass_app = click.make_pass_decorator(App)


class MinnaGroup(click.Group):
    """A group that turns user errors into `Error: ...` and keeps usage errors to one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
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
            sys.stderr.close()  # the reader went away (e.g. `| head`): not an error
            sys.exit(0)
        sys.exit(rv if isinstance(rv, int) else 0)


def _fail(message: str, code: int) -> NoReturn:
    # Lone surrogates (non-UTF-8 bytes in argv) must not crash the error message itself.
    text = " ".join(message.split()).encode("utf-8", "backslashreplace").decode("utf-8")
    click.echo(f"Error: {text}", err=True)
    sys.exit(code)


def default_worker() -> str:
    """A stable worker name for commands typed by a person (user@host)."""
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
    """A plain aligned text table (the last column is not padded)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        padded = [v.ljust(w) for v, w in zip(values[:-1], widths[:-1], strict=True)]
        return "  ".join([*padded, values[-1]]).rstrip()

    click.echo(line(list(headers)))
    click.echo(line(["-" * w for w in widths]))
    for row in cells:
        click.echo(line(row))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return " ".join(value.split())
    return json.dumps(value, ensure_ascii=False)


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


def show_task(task: Task) -> None:
    """A task as `field: value` lines."""
    data = task.to_dict()
    width = max(len(k) for k in data)
    for key, value in data.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        click.echo(f"{key + ':':<{width + 1}} {text}")


def history_rows(steps: Sequence[Transition]) -> list[list[Any]]:
    return [[s.at, s.from_state, s.to_state, s.actor, s.note] for s in steps]


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(f)


def env_db() -> str:
    return os.environ.get("MINNA_DB") or DEFAULT_DB
