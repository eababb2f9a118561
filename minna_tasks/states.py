"""The task state machine: the seed's states and moves, pure and without storage."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from .errors import InvalidStateMachine, InvalidTransition, UnknownState


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
    """Marker for a role left to its default: the TaskState of that name, if present."""

    def __repr__(self) -> str:
        return "AUTO"


AUTO = _Auto()


class StateMachine:
    """States and allowed moves, validated when built.

    Roles tell the store which state is the queue (`initial`), which one a claim
    moves to (`claimed`), which states hold a worker's lease (`held`) and where a
    task goes when its attempts are used up (`failed`). Left out, a role is the
    TaskState of that name when the machine has it.
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
    ) -> None:
        source = DEFAULT_MOVES if moves is None else moves
        self.moves: dict[str, tuple[str, ...]] = {
            str(state): tuple(str(t) for t in targets) for state, targets in source.items()
        }
        for targets in list(self.moves.values()):
            for target in targets:
                self.moves.setdefault(target, ())
        self.states: tuple[str, ...] = tuple(self.moves)
        self.initial = str(initial)
        present = self.moves.__contains__
        if isinstance(claimed, _Auto):
            claimed = TaskState.IN_PROGRESS if present(TaskState.IN_PROGRESS) else None
        if isinstance(failed, _Auto):
            failed = TaskState.FAILED if present(TaskState.FAILED) else None
        if isinstance(held, _Auto):
            held = [s for s in (TaskState.IN_PROGRESS, TaskState.REVIEW) if present(s)]
        self.claimed = str(claimed) if claimed is not None else None
        self.held = tuple(str(s) for s in held)
        self.failed = str(failed) if failed is not None else None
        declared = None if terminal is None else tuple(str(s) for s in terminal)
        self.terminal = (
            declared if declared is not None else tuple(s for s, t in self.moves.items() if not t)
        )
        self._validate()

    def _validate(self) -> None:
        if not self.moves:
            raise InvalidStateMachine("a state machine needs at least one state")
        if self.initial not in self.moves:
            raise InvalidStateMachine(
                f"initial state {self.initial!r} is not one of the states: {', '.join(self.states)}"
            )
        roles = [("claimed", self.claimed), ("failed", self.failed)]
        roles += [("held", s) for s in self.held] + [("terminal", s) for s in self.terminal]
        for role, state in roles:
            if state is not None and state not in self.moves:
                raise InvalidStateMachine(f"{role} state {state!r} is not one of the states")
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

    def _reachable(self) -> set[str]:
        reached = {self.initial}
        frontier = [self.initial]
        while frontier:
            for target in self.moves[frontier.pop()]:
                if target not in reached:
                    reached.add(target)
                    frontier.append(target)
        return reached

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

    def to_mermaid(self) -> str:
        """A Mermaid `stateDiagram-v2` of this machine."""
        lines = ["stateDiagram-v2", f"    [*] --> {self.initial}"]
        for state, targets in self.moves.items():
            lines.extend(f"    {state} --> {target}" for target in targets)
        lines.extend(f"    {state} --> [*]" for state in self.terminal)
        return "\n".join(lines) + "\n"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StateMachine):
            return NotImplemented
        return (self.moves, self.initial, self.claimed, self.held, self.failed) == (
            other.moves,
            other.initial,
            other.claimed,
            other.held,
            other.failed,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"StateMachine(states={list(self.states)!r}, initial={self.initial!r})"
