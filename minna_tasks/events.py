"""Named events between states, each declaring what it does to attempts, owner and lease.

An event is one edge of the state machine under a name (claim, submit, accept,
reject, fail, release, expire, retry, or a name of your own). Several events
may share an edge (`in_progress -> pending` is a release, a failure or an
expiry); the first one declared is what a bare `transition(task, to_state)`
means, the others are named with `event=`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidStateMachine

# What an event does to the attempt counter: keep it, count a failed attempt, start afresh.
ATTEMPT_EFFECTS = ("keep", "add", "reset")
# What it does to the owner and the lease: a new owner and lease, keep both, clear both.
HOLDER_EFFECTS = ("take", "keep", "drop")

# The standard events and their effects; an event of another name keeps attempts.
STANDARD: dict[str, tuple[str, str]] = {
    "claim": ("keep", "take"),
    "submit": ("keep", "keep"),
    "accept": ("keep", "drop"),
    "reject": ("add", "drop"),
    "fail": ("add", "drop"),
    "release": ("keep", "drop"),
    "expire": ("add", "drop"),
    "retry": ("reset", "drop"),
}


@dataclass(frozen=True)
class Event:
    """One named move `source -> target` and its effect on attempts, owner and lease.

    An event that counts a failed attempt (`attempts="add"`) and leads back to the
    queue goes to the failed state instead once attempts are used up, along the
    same event's edge to the failed state.
    """

    name: str
    source: str
    target: str
    attempts: str = "keep"
    holder: str = "drop"

    @property
    def counts_attempt(self) -> bool:
        return self.attempts == "add"

    @property
    def owner(self) -> str:
        """What happens to the owner: take (the actor), keep, or drop."""
        return self.holder

    @property
    def lease(self) -> str:
        """What happens to the lease: take (a new one), keep, or drop. It follows the owner."""
        return self.holder

    def label(self) -> str:
        """The event's name with its effect on attempts, for diagrams."""
        effect = {"add": " (+1 attempt)", "reset": " (attempts reset)"}.get(self.attempts, "")
        return self.name + effect

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "attempts": self.attempts, "holder": self.holder}

    @classmethod
    def declare(
        cls,
        name: str,
        source: str,
        target: str,
        attempts: str | None = None,
        holder: str | None = None,
        *,
        default_holder: str = "drop",
    ) -> Event:
        """An event with its effects checked; left out, they are the standard ones."""
        name, source, target = str(name), str(source), str(target)
        if not name.strip():
            raise InvalidStateMachine(f"the event {source} -> {target} needs a name")
        std_attempts, std_holder = STANDARD.get(name, ("keep", default_holder))
        attempts = std_attempts if attempts is None else str(attempts)
        holder = std_holder if holder is None else str(holder)
        where = f"event {name!r} ({source} -> {target})"
        if attempts not in ATTEMPT_EFFECTS:
            raise InvalidStateMachine(
                f"{where}: attempts must be one of {', '.join(ATTEMPT_EFFECTS)}, not {attempts!r}"
            )
        if holder not in HOLDER_EFFECTS:
            raise InvalidStateMachine(
                f"{where}: holder must be one of {', '.join(HOLDER_EFFECTS)}, not {holder!r}"
            )
        return cls(name, source, target, attempts, holder)


Spec = tuple[str, str, str, str | None, str | None]


def parse_spec(spec: Event | Any) -> Spec:
    """(name, source, target, attempts, holder) from an Event, a (name, source, target[,
    attempts[, holder]]) tuple or a mapping with those keys; effects left out are None."""
    if isinstance(spec, Event):
        return (spec.name, spec.source, spec.target, spec.attempts, spec.holder)
    if isinstance(spec, Mapping):
        try:
            name, source, target = spec["name"], spec["source"], spec["target"]
        except KeyError as e:
            raise InvalidStateMachine(f"an event needs a {e.args[0]!r}: {dict(spec)!r}") from None
        return (str(name), str(source), str(target), spec.get("attempts"), spec.get("holder"))
    if isinstance(spec, list | tuple) and 3 <= len(spec) <= 5:
        name, source, target, *rest = (*spec, None, None)[:5]
        return (str(name), str(source), str(target), rest[0], rest[1])
    raise InvalidStateMachine(
        f"an event is an Event, a (name, source, target) tuple or a mapping, not {spec!r}"
    )
