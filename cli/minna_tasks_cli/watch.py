"""`minna-tasks watch`: every status change as it happens, made by any process."""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import click

from minna_tasks import Transition

from .app import App, pass_app


def _line(change: Transition) -> str:
    moved = f"{change.from_state} -> {change.to_state}" if change.from_state else change.to_state
    line = f"{change.at}  {change.task_id}  {moved}"
    if change.actor:
        line += f"  by {change.actor}"
    if change.note:
        line += f"  ({' '.join(change.note.split())})"
    return line


def _since(text: str | None) -> int | str | None:
    """A cursor (digits, from a previous --json line) or an ISO-8601 time."""
    return int(text) if text is not None and text.isdigit() else text


def _stop_when_closed(stop: threading.Event) -> None:
    """Set `stop` once nobody reads stdout any more (e.g. `| head` exited), so that a
    watch with nothing to print still ends."""
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLERR | select.POLLHUP)
    except (OSError, ValueError, AttributeError):  # not a real file (tests), or no poll()
        return
    while not stop.is_set():
        if poller.poll(200):
            stop.set()


@contextmanager
def _sigint_stops(stop: threading.Event) -> Iterator[None]:
    """While in the block, SIGINT sets `stop` as well as raising KeyboardInterrupt.

    Ctrl-C must end a watch always: a KeyboardInterrupt alone can be lost (raised
    inside a finalizer, Python prints and drops it) and never comes at all when the
    process started with SIGINT ignored (a `&` job of a script); the loop ends on
    `stop` within a poll interval either way.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return

    def interrupted(signum: int, frame: FrameType | None) -> None:
        stop.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--task", "task_id", metavar="ID", help="Only this task's changes.")
@click.option(
    "--since",
    metavar="TIME",
    help="First print the changes after this ISO-8601 time (or after a cursor from --json).",
)
@pass_app
def watch(app: App, as_json: bool, task_id: str | None, since: str | None) -> None:
    """Print each status change as it happens, made by any process, until Ctrl-C.

    One line per change: time, task, from -> to, who and why. The JSON form
    carries a `cursor`: `--since CURSOR` resumes right after it.
    """
    stop = threading.Event()
    with _sigint_stops(stop):
        try:
            _print_changes(app, stop, as_json, task_id, since)
        except KeyboardInterrupt:
            pass  # Ctrl-C is how a watch ends


def _print_changes(
    app: App, stop: threading.Event, as_json: bool, task_id: str | None, since: str | None
) -> None:
    """Print each change until `stop` is set (Ctrl-C, or nobody reads stdout any more)."""
    store = app.store(create=False)
    threading.Thread(target=_stop_when_closed, args=(stop,), daemon=True).start()
    changes = store.watch(since=_since(since), stop=stop, task_id=task_id)
    try:
        for change in changes:
            text = json.dumps(change.to_dict(), ensure_ascii=False) if as_json else _line(change)
            click.echo(text)
    except BrokenPipeError:  # the reader went away (e.g. `| head`): the end, not an error
        # Point stdout at /dev/null so that the flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        changes.close()


COMMANDS = (watch,)
