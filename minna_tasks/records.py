"""The records TaskStore returns (Task, Transition) and the checks on their fields.

Pure Python, no storage: what a task looks like, and which values it accepts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# JSON text read back as its value (json_text.py), re-exported for the store.
from .json_text import load_json as load_json

# The one check of each kind, re-exported for the store.
from .memory.values import check_int as check_int
from .memory.values import check_text as check_text
from .states import TaskState


def dump_json(name: str, value: Any) -> str | None:
    if value is None:
        return None
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} is not JSON-serialisable: {e}") from None
    except RecursionError:
        raise ValueError(f"{name} is nested too deeply to store as JSON") from None


_ENCODER = json.JSONEncoder(allow_nan=False, ensure_ascii=False)  # one, not one per call


@dataclass(frozen=True)
class Task:
    """A task as it stands: its current field values."""

    id: str
    title: str
    description: str
    status: str
    priority: int
    attempts: int
    max_attempts: int
    payload: Any
    result: Any
    error: str | None
    owner: str | None
    lease_expires_at: str | None
    created_at: str
    updated_at: str
    # The fencing token of the claim that holds the task (None when nobody holds it):
    # moves that pass `token=` are refused once another claim has superseded it.
    claim_token: int | None = None
    # What it waits for (ids, in the order added) and which of those are not done yet.
    depends_on: tuple[str, ...] = ()
    blocked_by: tuple[str, ...] = ()

    @property
    def state(self) -> TaskState | str:
        """The status as a TaskState where it is one (the seed's `task.state`)."""
        try:
            return TaskState(self.status)
        except ValueError:
            return self.status

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (shallow: payload and result are the task's own objects;
        the id tuples become lists, as JSON has them)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["depends_on"], data["blocked_by"] = list(self.depends_on), list(self.blocked_by)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        values: dict[str, Any] = {f.name: data.get(f.name) for f in fields(cls)}
        for name in ("depends_on", "blocked_by"):  # JSON lists, or absent in older files
            values[name] = tuple(values[name] or ())
        return cls(**values)


@dataclass(frozen=True)
class Transition:
    """One status change of a task, from the audit trail. `cursor` is its memory id: a
    reader resumes after it (TaskStore.changes); equality ignores it."""

    task_id: str
    from_state: str | None
    to_state: str
    at: str
    actor: str | None
    note: str | None
    cursor: int | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Transition:
        values: dict[str, Any] = {f.name: data.get(f.name) for f in fields(cls)}
        return cls(**values)


Fact = tuple[str, str, Any, str | None, str | None]


MAX_LEASE_SECONDS = 100 * 366 * 86400  # a lease's end must stay a representable time


def check_lease(lease_seconds: object) -> float:
    if isinstance(lease_seconds, bool) or not isinstance(lease_seconds, int | float):
        raise TypeError(f"lease_seconds must be a number, not {type(lease_seconds).__name__}")
    if not math.isfinite(lease_seconds) or lease_seconds <= 0:
        raise ValueError(f"lease_seconds must be a positive number of seconds, not {lease_seconds}")
    if lease_seconds > MAX_LEASE_SECONDS:
        raise ValueError(
            f"lease_seconds must be at most {MAX_LEASE_SECONDS} (100 years), not {lease_seconds}"
        )
    return float(lease_seconds)
