"""The task state machine: the seed's states, named events between them, and the roles
the store and the loop drive tasks by. Pure, without storage."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from .errors import InvalidStateMachine, InvalidTransition, UnknownState
from .events import Event, Spec, parse_spec


class TaskState(StrEnum):
    """The seed's five states; members compare equal to their lowercase strings."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    REVIEW = "review"
    COMPLETED = "completed"
    FAILED = "failed"


DEFAULT_MOVES: dict[str, tuple[str, ...]] = {
    TaskState.PENDING: (TaskState.IN_PROGRESS,),
    TaskState.IN_PROGRESS: (TaskState.REVIEW, TaskState.PENDING, TaskState.FAILED),
    TaskState.REVIEW: (TaskState.COMPLETED, TaskState.FAILED, TaskState.PENDING),
    TaskState.FAILED: (TaskState.PENDING,),
    TaskState.COMPLETED: (),
}


class _Auto:
    """Marker for a role left to its default (see StateMachine)."""

    def __repr__(self) -> str:
        return "AUTO"


AUTO = _Auto()

ROLES = ("initial", "claimed", "held", "review", "done", "failed", "terminal")


class StateMachine:
    """States, the named events between them, and the roles the core needs; validated
    when built.

    Roles: `initial` (the queue), `claimed` (where a claim moves a task), `held`
    (states in which a worker holds the task under a lease), `review` (where a
    result waits for verification; None goes from claimed straight to done),
    `done` and `failed`. Left out, a role is the TaskState of that name when the
    machine has it, else what the moves imply (the one state a claim can reach,
    the states a worker reaches from it, the one terminal state besides failed).

    Moves given as `{state: [targets]}` get standard events (claim, submit,
    accept, reject, fail, release, expire, retry) from the roles; `events`
    declares them explicitly (Event, or (name, source, target[, attempts[,
    holder]]) tuples). A machine the store could not drive is refused here.
    """

    def __init__(
        self,
        moves: Mapping[str, Iterable[str]] | None = None,
        *,
        initial: str = TaskState.PENDING,
        terminal: Iterable[str] | None = None,
        claimed: str | None | _Auto = AUTO,
        held: Iterable[str] | _Auto = AUTO,
        failed: str | None | _Auto = AUTO,
        done: str | None | _Auto = AUTO,
        review: str | None | _Auto = AUTO,
        events: Iterable[Event | Any] | None = None,
    ) -> None:
        declared = [parse_spec(e) for e in events] if events is not None else []
        source = DEFAULT_MOVES if moves is None and events is None else (moves or {})
        self.moves: dict[str, tuple[str, ...]] = {}
        for state, targets in source.items():
            self.moves[str(state)] = tuple(dict.fromkeys(str(t) for t in targets))
        for _, src, dst, _, _ in declared:
            targets = self.moves.setdefault(src, ())
            if dst not in targets:
                self.moves[src] = (*targets, dst)
        for targets in list(self.moves.values()):
            for target in targets:
                self.moves.setdefault(target, ())
        self.states: tuple[str, ...] = tuple(self.moves)
        self.initial = str(initial)
        self._check_basics(terminal)
        self.failed = self._role_failed(failed)
        self.claimed = self._role_claimed(claimed)
        self.held = self._role_held(held)
        self.done = self._role_done(done)
        self.review = self._role_review(review)
        self._build_events(declared)
        self._check_drivable()

    # -- building -----------------------------------------------------------

    def _check_basics(self, terminal: Iterable[str] | None) -> None:
        if not self.moves:
            raise InvalidStateMachine("a state machine needs at least one state")
        if self.initial not in self.moves:
            raise InvalidStateMachine(
                f"initial state {self.initial!r} is not one of the states: {', '.join(self.states)}"
            )
        declared = None if terminal is None else tuple(str(s) for s in terminal)
        self._known("terminal", declared or ())
        self.terminal = (
            declared if declared is not None else tuple(s for s, t in self.moves.items() if not t)
        )
        for state in self.terminal:
            if self.moves[state]:
                raise InvalidStateMachine(
                    f"terminal state {state!r} has moves out of it: {', '.join(self.moves[state])}"
                )
        unreachable = [s for s in self.states if s not in self._reachable()]
        if unreachable:
            raise InvalidStateMachine(
                f"states not reachable from {self.initial!r}: {', '.join(unreachable)}"
            )

    def _known(self, role: str, states: Iterable[str | None]) -> None:
        for state in states:
            if state is not None and state not in self.moves:
                raise InvalidStateMachine(f"{role} state {state!r} is not one of the states")

    def _role_failed(self, failed: str | None | _Auto) -> str | None:
        if isinstance(failed, _Auto):
            return TaskState.FAILED.value if TaskState.FAILED in self.moves else None
        name = None if failed is None else str(failed)
        self._known("failed", [name])
        return name

    def _role_claimed(self, claimed: str | None | _Auto) -> str:
        if isinstance(claimed, _Auto):
            if TaskState.IN_PROGRESS in self.moves:
                claimed = TaskState.IN_PROGRESS.value
            else:
                targets = [t for t in self.moves[self.initial] if t not in self.terminal]
                claimed = targets[0] if len(targets) == 1 else None
        if claimed is None:
            raise InvalidStateMachine(
                f"no claimed state: name the state a claim moves a task to from "
                f"{self.initial!r} with claimed=..."
            )
        name = str(claimed)
        self._known("claimed", [name])
        if name not in self.moves[self.initial]:
            raise InvalidStateMachine(
                f"claimed state {name!r} is not one move from the initial state {self.initial!r}"
            )
        if name in self.terminal or name == self.initial:
            raise InvalidStateMachine(
                f"claimed state {name!r} cannot also be the initial or a terminal state"
            )
        return name

    def _role_held(self, held: Iterable[str] | _Auto) -> tuple[str, ...]:
        if isinstance(held, _Auto):
            # The states a worker reaches from the claimed one before the task leaves its hands.
            stop = {self.initial, self.failed, *self.terminal}
            found = [self.claimed]
            for state in found:
                found.extend(t for t in self.moves[state] if t not in stop and t not in found)
            return tuple(s for s in self.states if s in found)
        names = tuple(str(s) for s in held)
        self._known("held", names)
        if self.claimed not in names:
            names = (self.claimed, *names)
        for state in names:
            if state == self.initial or state in self.terminal:
                raise InvalidStateMachine(
                    f"held state {state!r} cannot be the initial or a terminal state"
                )
        return names

    def _role_done(self, done: str | None | _Auto) -> str:
        if isinstance(done, _Auto):
            if TaskState.COMPLETED in self.terminal:
                return TaskState.COMPLETED.value
            ends = [s for s in self.terminal if s != self.failed]
            if len(ends) != 1:
                what = f"{len(ends)} terminal states ({', '.join(ends)})" if ends else "none"
                raise InvalidStateMachine(
                    f"no done state: terminal states besides failed: {what}; "
                    "name the one a finished task ends in with done=..."
                )
            return ends[0]
        if done is None:
            raise InvalidStateMachine("no done state: name the state a finished task ends in")
        name = str(done)
        self._known("done", [name])
        if name not in self.terminal:
            raise InvalidStateMachine(
                f"done state {name!r} is not terminal: it moves to {', '.join(self.moves[name])}"
            )
        return name

    def _role_review(self, review: str | None | _Auto) -> str | None:
        if isinstance(review, _Auto):
            if TaskState.REVIEW in self.held and TaskState.REVIEW != self.claimed:
                return TaskState.REVIEW.value
            if self.done in self.moves[self.claimed]:
                return None
            waiting = [s for s in self.held if s != self.claimed and self.done in self.moves[s]]
            return waiting[0] if len(waiting) == 1 else None
        if review is None:
            return None
        name = str(review)
        self._known("review", [name])
        if name not in self.held or name == self.claimed:
            raise InvalidStateMachine(
                f"review state {name!r} must be a held state other than the claimed one"
            )
        return name

    def _default_events(self, source: str, target: str) -> list[Event]:
        """The standard events of a plain move, first the one a bare transition means."""
        held = self.held
        if source == self.initial and target == self.claimed:
            names = ["claim"]
        elif source == self.failed and target == self.initial:
            names = ["retry"]
        elif source in held and target == self.initial:
            if source == self.claimed:
                names = ["release", "fail", "expire"]
            elif source == self.review:
                names = ["reject", "fail", "release", "expire"]
            else:
                names = ["fail", "release", "expire"]
        elif source in held and target == self.failed:
            names = ["fail", "expire"] + (["reject"] if source == self.review else [])
        elif source in held and target == self.done:
            names = ["accept"]
        elif source in held and target in held:
            names = ["submit"]
        else:
            names = ["move"]
        holder = self._plain_holder(source, target)
        return [Event.declare(n, source, target, default_holder=holder) for n in names]

    def _plain_holder(self, source: str, target: str) -> str:
        if target == self.claimed and source not in self.held:
            return "take"
        return "keep" if source in self.held and target in self.held else "drop"

    def _build_events(self, declared: list[Spec]) -> None:
        explicit: dict[tuple[str, str], list[Event]] = {}
        for name, src, dst, attempts, holder in declared:
            default = self._plain_holder(src, dst)
            event = Event.declare(name, src, dst, attempts, holder, default_holder=default)
            explicit.setdefault((src, dst), []).append(event)
        self.events: dict[tuple[str, str], tuple[Event, ...]] = {}
        for source, targets in self.moves.items():
            for target in targets:
                found = explicit.get((source, target)) or self._default_events(source, target)
                names = [e.name for e in found]
                if len(set(names)) != len(names):
                    raise InvalidStateMachine(
                        f"the move {source} -> {target} declares an event twice: {', '.join(names)}"
                    )
                self.events[(source, target)] = tuple(found)

    def _check_drivable(self) -> None:
        """Refuse a machine that could strand a task or that the loop could not finish."""
        back = [s for s in (self.initial, self.failed) if s is not None]
        for state in self.held:
            if not self.find(state, "expire"):
                where = " or to failure " + repr(self.failed) if self.failed else ""
                raise InvalidStateMachine(
                    f"held state {state!r} has no way back to the queue {self.initial!r}{where}: "
                    "a task whose worker dies there would be stuck"
                    if not any(t in back for t in self.moves[state])
                    else f"held state {state!r} has no 'expire' event back to "
                    f"{' or '.join(repr(s) for s in back)}"
                )
        if self.review is None:
            if self.done not in self.moves[self.claimed]:
                raise InvalidStateMachine(
                    f"claimed state {self.claimed!r} has no move to the done state "
                    f"{self.done!r}, and no review state leads there: name it with review=..."
                )
        else:
            if self.review not in self.moves[self.claimed]:
                raise InvalidStateMachine(
                    f"claimed state {self.claimed!r} has no move to the review state "
                    f"{self.review!r}"
                )
            if self.done not in self.moves[self.review]:
                raise InvalidStateMachine(
                    f"review state {self.review!r} has no move to the done state {self.done!r}"
                )
        if not self.find(self.initial, "claim", self.claimed):
            raise InvalidStateMachine(
                f"the move {self.initial} -> {self.claimed} has no 'claim' event"
            )

    def _reachable(self) -> set[str]:
        reached = {self.initial}
        frontier = [self.initial]
        while frontier:
            for target in self.moves[frontier.pop()]:
                if target not in reached:
                    reached.add(target)
                    frontier.append(target)
        return reached

    # -- questions ----------------------------------------------------------

    def check_state(self, state: str) -> str:
        """Return `state` as a plain string, or raise UnknownState."""
        name = str(state)
        if name not in self.moves:
            raise UnknownState(name, self.states)
        return name

    def allowed(self, from_state: str) -> tuple[str, ...]:
        """The states a task in `from_state` may move to."""
        return self.moves[self.check_state(from_state)]

    def can_move(self, from_state: str, to_state: str) -> bool:
        return self.check_state(to_state) in self.allowed(from_state)

    def validate(self, from_state: str, to_state: str, task_id: str | None = None) -> None:
        """Raise InvalidTransition unless `from_state -> to_state` is allowed."""
        if not self.can_move(from_state, to_state):
            raise InvalidTransition(
                task_id, str(from_state), str(to_state), self.allowed(from_state)
            )

    def is_terminal(self, state: str) -> bool:
        return self.check_state(state) in self.terminal

    def event(
        self, from_state: str, to_state: str, name: str | None = None, task_id: str | None = None
    ) -> Event:
        """The event a move means: the named one, or the first declared on that edge.

        Raises InvalidTransition if the move is not allowed or has no such event.
        """
        self.validate(from_state, to_state, task_id)
        found = self.events[(str(from_state), str(to_state))]
        if name is None:
            return found[0]
        for event in found:
            if event.name == name:
                return event
        raise InvalidTransition(
            task_id,
            str(from_state),
            str(to_state),
            self.allowed(from_state),
            detail=f"the move {from_state} -> {to_state} is {' or '.join(e.name for e in found)}"
            f", not {name}",
        )

    def find(self, from_state: str, name: str, to_state: str | None = None) -> Event | None:
        """The event `name` out of `from_state` (to `to_state`; else preferring the queue)."""
        found = [
            e
            for target in self.moves[self.check_state(from_state)]
            for e in self.events[(from_state, target)]
            if e.name == name and (to_state is None or target == to_state)
        ]
        found.sort(key=lambda e: e.target != self.initial)
        return found[0] if found else None

    def used_up(self, event: Event) -> Event:
        """Where an attempt-counting event leads once attempts are used up: the same
        event's edge to the failed state, if there is one."""
        if self.failed is None or event.target == self.failed:
            return event
        return self.find(event.source, event.name, self.failed) or event

    # -- rendering and identity -----------------------------------------------

    def to_mermaid(self) -> str:
        """A Mermaid `stateDiagram-v2` of this machine, edges labelled with their events."""
        lines = ["stateDiagram-v2", f"    [*] --> {self.initial}"]
        for (state, target), events in self.events.items():
            label = " / ".join(e.label() for e in events)
            lines.append(f"    {state} --> {target} : {label}")
        lines.extend(f"    {state} --> [*]" for state in self.terminal)
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """The whole definition as plain data (states in their declared order)."""
        return {
            "states": list(self.states),
            "initial": self.initial,
            "claimed": self.claimed,
            "held": list(self.held),
            "review": self.review,
            "done": self.done,
            "failed": self.failed,
            "terminal": list(self.terminal),
            "events": [
                {"source": s, "target": t, **e.to_dict()}
                for (s, t), events in self.events.items()
                for e in events
            ],
        }

    def canonical(self) -> str:
        """The definition as JSON with sorted states and moves: equal for equal machines,
        whatever order their states and moves were listed in."""
        data = self.to_dict()
        data["states"] = sorted(data["states"])
        data["held"] = sorted(data["held"])
        data["terminal"] = sorted(data["terminal"])
        # Events of one move keep their order (the first is what a bare move means).
        data["events"] = sorted(data["events"], key=lambda e: (e["source"], e["target"]))
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StateMachine:
        """A machine from `to_dict()`'s form, or from {"moves": {...}, "initial": ..., roles}."""
        if not isinstance(data, Mapping):
            raise InvalidStateMachine("a state machine definition is a JSON object")
        unknown = set(data) - {"states", "moves", "events", *ROLES}
        if unknown:
            raise InvalidStateMachine(
                f"unknown key(s) in the state machine definition: {', '.join(sorted(unknown))}"
            )
        roles: dict[str, Any] = {k: data[k] for k in ROLES if k in data}
        moves: dict[str, list[str]] | None = None
        if "states" in data:
            moves = {str(s): [] for s in data["states"]}
        if "moves" in data:
            moves = {**(moves or {}), **{str(k): list(v) for k, v in data["moves"].items()}}
        try:
            return cls(moves, events=data.get("events"), **roles)
        except TypeError as e:
            raise InvalidStateMachine(f"not a state machine definition: {e}") from None

    def differences(self, other: StateMachine) -> list[str]:
        """What differs between this machine and `other`, one phrase each."""
        out: list[str] = []
        mine, theirs = set(self.states), set(other.states)
        if mine - theirs:
            out.append(f"states only in the first: {', '.join(sorted(mine - theirs))}")
        if theirs - mine:
            out.append(f"states only in the second: {', '.join(sorted(theirs - mine))}")
        mine_e = {(s, t, e) for (s, t), es in self.events.items() for e in es}
        theirs_e = {(s, t, e) for (s, t), es in other.events.items() for e in es}
        for label, extra in (("first", mine_e - theirs_e), ("second", theirs_e - mine_e)):
            if extra:
                names = sorted(f"{s} -> {t} ({e.label()})" for s, t, e in extra)
                out.append(f"moves only in the {label}: {', '.join(names)}")
        a, b = self.to_dict(), other.to_dict()
        for role in ROLES:
            x, y = a[role], b[role]
            if isinstance(x, list):
                x, y = sorted(x), sorted(y)
            if x != y:
                out.append(f"{role} is {x!r} in the first, {y!r} in the second")
        if not out and self.canonical() != other.canonical():
            out.append("the events of a move are listed in another order")
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StateMachine):
            return NotImplemented
        return self.canonical() == other.canonical()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"StateMachine(states={list(self.states)!r}, initial={self.initial!r})"
