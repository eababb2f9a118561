"""Hypothesis stateful test: a store on a custom machine (other names, a review state, extra
terminal states) against a model that knows the machine's events only from the table
below, written out by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from minna_tasks import InvalidTransition, StateMachine, TaskStore, TransitionConflict

MOVES = {
    "queued": ["running", "cancelled"],
    "running": ["checking", "queued", "broken"],
    "checking": ["shipped", "queued", "broken"],
    "broken": ["queued", "archived"],
    "shipped": [],
    "cancelled": [],
    "archived": [],
}
STATES = list(MOVES)
HELD = {"running", "checking"}
# (source, target) -> events in declared order: (name, attempts, holder)
EVENTS: dict[tuple[str, str], list[tuple[str, str, str]]] = {
    ("queued", "running"): [("claim", "keep", "take")],
    ("queued", "cancelled"): [("move", "keep", "drop")],
    ("running", "checking"): [("submit", "keep", "keep")],
    ("running", "queued"): [("release", "keep", "drop"), ("fail", "add", "drop"),
                            ("expire", "add", "drop")],
    ("running", "broken"): [("fail", "add", "drop"), ("expire", "add", "drop")],
    ("checking", "shipped"): [("accept", "keep", "drop")],
    ("checking", "queued"): [("reject", "add", "drop"), ("fail", "add", "drop"),
                             ("release", "keep", "drop"), ("expire", "add", "drop")],
    ("checking", "broken"): [("fail", "add", "drop"), ("expire", "add", "drop"),
                             ("reject", "add", "drop")],
    ("broken", "queued"): [("retry", "reset", "drop")],
    ("broken", "archived"): [("move", "keep", "drop")],
}  # fmt: skip
EVENT_NAMES = sorted({name for events in EVENTS.values() for name, _, _ in events})
WORKERS = st.sampled_from(["w1", "w2"])
ACTORS = st.sampled_from([None, "w1", "w2"])


def machine() -> StateMachine:
    return StateMachine(MOVES, initial="queued", failed="broken", done="shipped")


@dataclass
class Model:
    seq: int
    priority: int
    max_attempts: int
    status: str = "queued"
    attempts: int = 0
    owner: str | None = None
    moves: int = 1


class CustomMachineStore(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = TaskStore(":memory:", machine=machine())
        self.model: dict[str, Model] = {}

    def teardown(self) -> None:
        self.store.close()

    def _apply(self, m: Model, event: tuple[str, str, str], target: str, actor: str | None) -> None:
        name, attempts, holder = event
        if attempts == "add":
            m.attempts += 1
            if m.attempts >= m.max_attempts and target == "queued":
                target = "broken"  # the same event's edge to the failed state
        elif attempts == "reset":
            m.attempts = 0
        if holder == "take":
            m.owner = actor
        elif holder == "drop":
            m.owner = None
        m.status = target
        m.moves += 1

    def _expect(self, error: type[Exception] | None, call: object) -> None:
        raised: Exception | None = None
        try:
            returned = call()  # type: ignore[operator]
        except (InvalidTransition, TransitionConflict) as e:
            raised = e
        else:
            assert returned == self.store.get(returned.id)
        assert type(raised) is error if error else raised is None, f"got {raised!r}"

    def _ids(self) -> list[str]:
        return sorted(self.model)

    @rule(priority=st.integers(0, 2), max_attempts=st.integers(1, 3))
    def add(self, priority: int, max_attempts: int) -> None:
        task = self.store.add("task", priority=priority, max_attempts=max_attempts)
        self.model[task.id] = Model(len(self.model), priority, max_attempts)

    @rule(worker=WORKERS)
    def claim(self, worker: str) -> None:
        queued = [(-m.priority, m.seq, i) for i, m in self.model.items() if m.status == "queued"]
        task = self.store.claim(worker)
        if not queued:
            assert task is None
            return
        expected_id = min(queued)[2]
        assert task is not None
        assert task.id == expected_id
        self._apply(self.model[expected_id], EVENTS[("queued", "running")][0], "running", worker)

    @precondition(lambda self: self.model)
    @rule(
        data=st.data(),
        to=st.sampled_from(STATES),
        actor=ACTORS,
        event=st.sampled_from([None, *EVENT_NAMES]),
    )
    def transition(
        self, data: st.DataObject, to: str, actor: str | None, event: str | None
    ) -> None:
        task_id = data.draw(st.sampled_from(self._ids()))
        m = self.model[task_id]
        events = EVENTS.get((m.status, to), [])
        chosen = events[0] if events and event is None else None
        chosen = next((e for e in events if e[0] == event), chosen)
        if actor and m.owner and m.owner != actor and m.status in HELD:
            error: type[Exception] | None = TransitionConflict
        elif chosen is None:
            error = InvalidTransition
        else:
            error = None
        self._expect(error, lambda: self.store.transition(task_id, to, actor=actor, event=event))
        if chosen is not None and error is None:
            self._apply(m, chosen, to, actor)

    def _held_event(self, m: Model, name: str) -> tuple[tuple[str, str, str], str]:
        return next(
            (e, target)
            for target in ("queued", "broken")
            for e in EVENTS.get((m.status, target), [])
            if e[0] == name
        )

    @precondition(lambda self: self.model)
    @rule(data=st.data(), worker=WORKERS, name=st.sampled_from(["fail", "release"]))
    def fail_or_release(self, data: st.DataObject, worker: str, name: str) -> None:
        task_id = data.draw(st.sampled_from(self._ids()))
        m = self.model[task_id]
        held_by_other = m.owner and m.owner != worker and m.status in HELD
        if name == "fail":
            error = TransitionConflict if held_by_other else None
            if error is None and m.status not in HELD:
                error = InvalidTransition
            self._expect(error, lambda: self.store.fail(task_id, worker, error="boom"))
        else:
            error = None if m.status in HELD and m.owner == worker else TransitionConflict
            self._expect(error, lambda: self.store.release(task_id, worker))
        if error is None:
            self._apply(m, *self._held_event(m, name), worker)

    @rule()
    def recover_after_every_lease(self) -> None:
        recovered = self.store.recover(now=datetime.now(UTC) + timedelta(days=1))
        held = sorted((m.seq, i) for i, m in self.model.items() if m.status in HELD)
        assert [t.id for t in recovered] == [i for _, i in held]
        for _, task_id in held:
            m = self.model[task_id]
            self._apply(m, *self._held_event(m, "expire"), "recover")

    @invariant()
    def tasks_match_model(self) -> None:
        for task_id, m in self.model.items():
            task = self.store.get(task_id)
            assert (task.status, task.attempts, task.owner) == (m.status, m.attempts, m.owner)
            assert (task.lease_expires_at is not None) == (m.status in HELD)
            assert len(self.store.history(task_id)) == m.moves

    @invariant()
    def stats_match_model(self) -> None:
        counts = dict.fromkeys(STATES, 0)
        for m in self.model.values():
            counts[m.status] += 1
        assert self.store.stats() == counts


def test_the_model_table_is_the_machine() -> None:
    declared = {
        edge: [(e.name, e.attempts, e.holder) for e in events]
        for edge, events in machine().events.items()
    }
    assert declared == EVENTS


CustomMachineStore.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCustomMachineStore = CustomMachineStore.TestCase
