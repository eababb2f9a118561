"""JSON files: every task with its current fields and full triple history, in one document.

The seed's "file-based (JSON)" storage option, made lossless: an exported task
carries every triple ever written about it, so an import into another file
reproduces its history exactly. Export streams one task per line and renames
a finished temp file into place; import validates the whole document before
it writes anything, then writes all of it in one transaction.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from . import defaults
from .atomic import write_atomically
from .errors import ImportFormatError, MinnaTasksError, TaskExists
from .memory import utcnow
from .memory.values import is_utf8, unstorable
from .states import StateMachine
from .store import TaskStore, dependencies
from .store import fields as task_fields

FORMAT = "minna-tasks"
VERSION = 1
BATCH = 5000

Progress = Callable[[int], None]

# An exported task's history: the keys of each of its facts.
FACT_KEYS = ("attribute", "value", "source", "context", "created_at")
FACT_KEY_SET = frozenset(FACT_KEYS)


@dataclass(frozen=True)
class ImportResult:
    """What an import did: ids written and ids skipped (on_conflict='skip')."""

    imported: int
    skipped: int


# -- export -------------------------------------------------------------------


def write_document(store: TaskStore, out: IO[str], on_progress: Progress | None = None) -> int:
    """Stream every task (oldest first) with its history to `out`; returns the count.

    One read snapshot covers the whole export, so the document is consistent
    even while workers write to the file.
    """
    with store.snapshot():
        total = sum(store.stats().values())
        header = {
            "format": FORMAT,
            "version": VERSION,
            "exported_at": utcnow(),
            "task_count": total,
            "machine": store.machine.to_dict(),
        }
        out.write(json.dumps(header, ensure_ascii=False)[:-1] + ', "tasks": [')
        count = 0
        for task in store.iter():
            item = task.to_dict()
            item["history"] = store.facts(task.id)
            out.write(("\n" if count == 0 else ",\n") + json.dumps(item, ensure_ascii=False))
            count += 1
            if on_progress is not None and count % 1000 == 0:
                on_progress(1000)
        out.write("\n]}\n")
        if on_progress is not None and count % 1000:
            on_progress(count % 1000)
    return count


def export_tasks(
    store: TaskStore, path: str | os.PathLike[str], on_progress: Progress | None = None
) -> int:
    """Write every task to `path` atomically (a temp file beside it, then a rename).

    Only a regular file (or nothing) at `path` is replaced: a symlink, a device, a
    directory or a pipe there is refused and left exactly as it was.
    """
    _check_target(Path(path))
    return write_atomically(path, lambda out: write_document(store, out, on_progress))


def _check_target(target: Path) -> None:
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise MinnaTasksError(f"cannot write {target}: {e.strerror}") from None
    if stat.S_ISREG(mode):
        return
    kind = (
        "a symlink"
        if stat.S_ISLNK(mode)
        else "a directory"
        if stat.S_ISDIR(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "not a regular file"
    )
    raise MinnaTasksError(
        f"{target} is {kind}; an export only replaces a regular file (nothing was written; "
        "use `-` for stdout)"
    )


# -- import -------------------------------------------------------------------


def read_export(
    path: str | os.PathLike[str], fallback: StateMachine | None = None
) -> tuple[StateMachine | None, list[dict[str, Any]]]:
    """Read and validate a whole document against the state machine it carries (else
    `fallback`, else the default one); returns that machine (None when the document
    has none) and the restore() records."""
    document = _load(path)
    machine = _document_machine(document, str(path))
    states = (machine or fallback or StateMachine()).states
    return machine, validate_document(document, states, name=str(path))


def _document_machine(document: Any, name: str) -> StateMachine | None:
    if not isinstance(document, dict) or document.get("machine") is None:
        return None
    try:
        return StateMachine.from_dict(document["machine"])
    except MinnaTasksError as e:
        raise ImportFormatError(f"{name}: its state machine is not valid: {e}") from None


def _load(path: str | os.PathLike[str]) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except FileNotFoundError:
        raise MinnaTasksError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise MinnaTasksError(f"{path} is a directory, not a JSON file") from None
    except UnicodeDecodeError as e:
        raise ImportFormatError(f"{path} is not UTF-8 text ({e.reason})") from None
    except json.JSONDecodeError as e:
        raise ImportFormatError(f"{path} is not valid JSON: {e}") from None
    except OSError as e:
        raise MinnaTasksError(f"cannot read {path}: {e.strerror}") from None
    return document


def validate_document(
    document: Any, states: tuple[str, ...], name: str = "document"
) -> list[dict[str, Any]]:
    """Check a parsed document; returns one restore() record per task."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        found = document.get("format") if isinstance(document, dict) else None
        raise ImportFormatError(
            f"{name} is not a {FORMAT} file (its format is {found!r}, not {FORMAT!r})"
        )
    version = document.get("version")
    if version != VERSION:
        raise ImportFormatError(
            f"{name} has format version {version!r}; this minna-tasks reads version {VERSION}"
        )
    tasks = document.get("tasks")
    if not isinstance(tasks, list):
        raise ImportFormatError(f"{name}: 'tasks' must be a list")
    count = document.get("task_count")
    if count is not None and count != len(tasks):
        raise ImportFormatError(f"{name} says it has {count} tasks but holds {len(tasks)}")
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(tasks):
        record = _check_task(_where(index, item), item, states)
        first = seen.setdefault(record["id"], index)
        if first != index:
            raise ImportFormatError(
                f"{_where(index, item)}: its id appears twice in the file "
                f"(tasks number {first + 1} and {index + 1})"
            )
        records.append(record)
    return records


def _where(index: int, item: Any) -> str:
    """How an error names a task: by its id when it has a usable one, else by its number
    in the file (1 for the first)."""
    task_id = item.get("id") if isinstance(item, dict) else None
    if isinstance(task_id, str) and task_id.strip() and is_utf8(task_id) and "\x00" not in task_id:
        return f"task {_shown_id(task_id)}"
    return f"task number {index + 1} in the file"


def _shown_id(task_id: str) -> str:
    """An id as a message shows it: plain when it is plain text, else quoted."""
    return task_id if task_id.isprintable() and task_id == task_id.strip() else repr(task_id)


def _fail(where: str, field: str, message: str) -> ImportFormatError:
    return ImportFormatError(f"{where}: {field} {message}")


def _check_time(where: str, field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _fail(where, field, f"must be an ISO-8601 time, not {_kind(value)}")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise _fail(where, field, f"is not an ISO-8601 time: {value!r}") from None
    return value


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check_task(where: str, item: Any, states: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ImportFormatError(f"{where}: must be an object, not {_kind(item)}")
    task_id = item.get("id")
    if not isinstance(task_id, str) or not task_id.strip() or "\x00" in task_id:
        raise _fail(where, "id", f"must be a non-empty string, not {task_id!r}")
    if not is_utf8(task_id):
        raise _fail(where, "id", "is not valid UTF-8 text")
    created = _check_time(where, "created_at", item.get("created_at"))
    history = item.get("history")
    if not isinstance(history, list) or not history:
        raise _fail(where, "history", "must be a non-empty list of triples")
    for n, fact in enumerate(history):
        _check_fact(where, n, fact)
    current = _replay(history)
    status = current.get("status")
    if status not in states:
        raise _fail(where, "status", f"{status!r} is not a known state ({', '.join(states)})")
    for field, expected in current.items():
        if field in item and item[field] != expected:
            raise _fail(where, field, f"is {item[field]!r} but its history ends with {expected!r}")
    try:
        dependencies.replay(history)
    except ValueError as e:
        raise _fail(where, "history", str(e)) from None
    return {"id": task_id, "created_at": created, "facts": history}


def _check_fact(where: str, n: int, fact: Any) -> None:
    # Runs once per triple (a million for 100k tasks): the happy path formats nothing.
    if not isinstance(fact, dict):
        raise _fail(where, f"history[{n}]", f"must be an object, not {_kind(fact)}")
    attribute = fact.get("attribute")
    if not isinstance(attribute, str) or not attribute.strip() or "\x00" in attribute:
        raise _fail(
            where, f"history[{n}].attribute", f"must be a non-empty string, not {attribute!r}"
        )
    if "value" not in fact:
        raise _fail(where, f"history[{n}].value", "is missing")
    value = fact["value"]
    if isinstance(value, bool) or not (value is None or isinstance(value, str | int | float)):
        raise _fail(
            where, f"history[{n}].value", f"must be a string, number or null, not {_kind(value)}"
        )
    problem = unstorable(value)
    if problem:
        raise _fail(where, f"history[{n}].value", problem)
    for key in ("attribute", "source", "context"):
        text = fact.get(key)
        if text is not None and not isinstance(text, str):
            raise _fail(
                where, f"history[{n}].{key}", f"must be a string or null, not {_kind(text)}"
            )
        if not is_utf8(text):
            raise _fail(where, f"history[{n}].{key}", "is not valid UTF-8 text")
    stamp = fact.get("created_at")
    if stamp not in _GOOD_TIMES:
        checked = _check_time(where, f"history[{n}].created_at", stamp)
        if len(_GOOD_TIMES) < 100_000:
            _GOOD_TIMES.add(checked)  # the triples of one change share their time
    if not FACT_KEY_SET.issuperset(fact):
        unknown = set(fact) - FACT_KEY_SET
        raise _fail(where, f"history[{n}]", f"has unknown key(s): {', '.join(sorted(unknown))}")


_GOOD_TIMES: set[str] = set()


def _replay(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The current field values the store will derive from these triples (fields.py)."""
    stored, _ = task_fields.replay_records(history)
    return task_fields.values(stored)


def import_tasks(
    store: TaskStore,
    path: str | os.PathLike[str],
    on_conflict: str = "error",
    on_progress: Progress | None = None,
) -> ImportResult:
    """Validate the whole file, then write every task with its history: all or nothing."""
    if on_conflict not in defaults.ON_CONFLICT:
        raise ValueError(f"on_conflict must be 'error', 'skip' or 'replace', not {on_conflict!r}")
    machine, records = read_export(path, store.machine)
    return restore_records(store, records, on_conflict, on_progress, machine=machine)


def restore_records(
    store: TaskStore,
    records: list[dict[str, Any]],
    on_conflict: str = "error",
    on_progress: Progress | None = None,
    machine: StateMachine | None = None,
) -> ImportResult:
    """Write validated records in batches inside one transaction (all or nothing).

    `machine` is the state machine the document carries: a store with no tasks yet
    takes it (a recorded step); a store with tasks and another machine is refused.
    """
    written = 0
    try:
        with store.transaction():
            _check_machine(store, records, machine)
            for batch in _batches(records):
                written += len(store.restore(batch, on_conflict))
                if on_progress is not None:
                    on_progress(len(batch))
    except TaskExists as e:
        raise MinnaTasksError(
            f"{e}; nothing was imported (to import anyway, skip or replace existing tasks:"
            " --on-conflict skip|replace)"
        ) from None
    return ImportResult(imported=written, skipped=len(records) - written)


def _check_machine(
    store: TaskStore, records: list[dict[str, Any]], machine: StateMachine | None
) -> None:
    if machine is not None and machine != store.machine:
        if sum(store.stats().values()):
            raise ImportFormatError(
                "the file was exported with another state machine than this store's ("
                + "; ".join(machine.differences(store.machine))
                + "; first: the file's, second: the store's); nothing was imported"
            )
        store.replace_machine(machine, note="imported")
        return
    known = set(store.machine.states)
    for record in records:
        status = next(
            (f["value"] for f in reversed(record["facts"]) if f["attribute"] == "status"), None
        )
        if status not in known:
            raise ImportFormatError(
                f"task {record['id']!r} is {status!r}, not a state of this store's machine "
                f"({', '.join(store.machine.states)}); nothing was imported"
            )


def _batches(records: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(records), BATCH):
        yield records[start : start + BATCH]
