"""Hypothesis stateful test: TaskStore against a small in-memory model of the rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from minna_tasks import InvalidTransition, TaskStore, TransitionConflict

STATES = ["pending", "in_progress", "review", "completed", "failed"]
MOVES = {
    "pending": {"in_progress"},
    "in_progress": {"review", "pending", "failed"},
    "review": {"completed", "failed", "pending"},
    "failed": {"pending"},
    "completed": set(),
}
HELD = {"in_progress", "review"}
WORKERS = st.sampled_from(["w1", "w2"])
ACTORS = st.sampled_from([None, "w1", "w2"])


@dataclass
class Model:
    seq: int
    priority: int
    max_attempts: int
    status: str = "pending"
    attempts: int = 0
    owner: str | None = None
    moves: int = 1  # the creating status row


class TaskStoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = TaskStore(":memory:")
        self.model: dict[str, Model] = {}

    def teardown(self) -> None:
        self.store.close()

    # -- model helpers --------------------------------------------------------

    def _set(self, m: Model, status: str, owner: str | None) -> None:
        if status == "pending" and m.status == "failed":
            m.attempts = 0
        m.status, m.owner = status, owner
        m.moves += 1

    def _fail_attempt(self, m: Model) -> None:
        m.attempts += 1
        self._set(m, "failed" if m.attempts >= m.max_attempts else "pending", None)

    def _expect(self, error: type[Exception] | None, call: object) -> None:
        raised: Exception | None = None
        try:
            returned = call()  # type: ignore[operator]
        except (InvalidTransition, TransitionConflict) as e:
            raised = e
        else:
            # What a write returns is exactly what a fresh read sees.
            assert returned == self.store.get(returned.id)
        assert isinstance(raised, error) if error else raised is None, f"got {raised!r}"

    def _ids(self) -> list[str]:
        return sorted(self.model)

    # -- rules ---------------------------------------------------------------

    @rule(priority=st.integers(0, 3), max_attempts=st.integers(1, 3))
    def add(self, priority: int, max_attempts: int) -> None:
        task = self.store.add("task", priority=priority, max_attempts=max_attempts)
        self.model[task.id] = Model(len(self.model), priority, max_attempts)

    @rule(worker=WORKERS)
    def claim(self, worker: str) -> None:
        pending = [(-m.priority, m.seq, i) for i, m in self.model.items() if m.status == "pending"]
        task = self.store.claim(worker)
        if not pending:
            assert task is None
            return
        expected_id = min(pending)[2]
        assert task is not None
        assert task.id == expected_id
        self._set(self.model[expected_id], "in_progress", worker)

    @precondition(lambda self: self.model)
    @rule(
        data=st.data(),
        to=st.sampled_from(STATES),
        actor=ACTORS,
        use_expected=st.booleans(),
        wrong_expected=st.sampled_from(STATES),
    )
    def transition(
        self,
        data: st.DataObject,
        to: str,
        actor: str | None,
        use_expected: bool,
        wrong_expected: str,
    ) -> None:
        task_id = data.draw(st.sampled_from(self._ids()))
        m = self.model[task_id]
        expected = (
            (m.status if wrong_expected == m.status else wrong_expected) if use_expected else None
        )
        if expected is not None and expected != m.status:
            error: type[Exception] | None = TransitionConflict
        elif actor and m.owner and m.owner != actor and m.status in HELD:
            error = TransitionConflict
        elif to not in MOVES[m.status]:
            error = InvalidTransition
        else:
            error = None
        self._expect(
            error, lambda: self.store.transition(task_id, to, expected=expected, actor=actor)
        )
        if error is None:
            if m.status == "review" and to == "pending":
                self._fail_attempt(m)  # the reject event counts a failed attempt
            elif m.status in HELD and to == "failed":
                m.attempts += 1  # the fail event counts the attempt it ends
                self._set(m, to, None)
            else:
                owner = actor if to == "in_progress" else (m.owner if to in HELD else None)
                self._set(m, to, owner)

    def _holder_error(self, m: Model, worker: str) -> type[Exception] | None:
        return None if m.status in HELD and m.owner == worker else TransitionConflict

    @precondition(lambda self: self.model)
    @rule(data=st.data(), worker=WORKERS)
    def release(self, data: st.DataObject, worker: str) -> None:
        task_id = data.draw(st.sampled_from(self._ids()))
        m = self.model[task_id]
        error = self._holder_error(m, worker)
        self._expect(error, lambda: self.store.release(task_id, worker))
        if error is None:
            self._set(m, "pending", None)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), worker=WORKERS)
    def heartbeat(self, data: st.DataObject, worker: str) -> None:
        task_id = data.draw(st.sampled_from(self._ids()))
        m = self.model[task_id]
        self._expect(self._holder_error(m, worker), lambda: self.store.heartbeat(task_id, worker))

    @precondition(lambda self: self.model)
    @rule(data=st.data(), worker=WORKERS)
    def fail(self, data: st.DataObject, worker: str) -> None:
        task_id = data.draw(st.sampled_from(self._ids()))
        m = self.model[task_id]
        if m.owner and m.owner != worker and m.status in HELD:
            error: type[Exception] | None = TransitionConflict
        elif m.status not in HELD:
            error = InvalidTransition
        else:
            error = None
        self._expect(error, lambda: self.store.fail(task_id, worker, error="boom"))
        if error is None:
            self._fail_attempt(m)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(self._ids()))
        m = self.model[task_id]
        error = None if m.status == "failed" else InvalidTransition  # nothing moved under you
        self._expect(error, lambda: self.store.retry(task_id))
        if error is None:
            self._set(m, "pending", None)

    @rule()
    def recover_after_every_lease(self) -> None:
        recovered = self.store.recover(now=datetime.now(UTC) + timedelta(days=1))
        held = sorted((m.seq, i) for i, m in self.model.items() if m.status in HELD)
        assert [t.id for t in recovered] == [i for _, i in held]
        for _, task_id in held:
            self._fail_attempt(self.model[task_id])

    # -- invariants --------------------------------------------------------------

    @invariant()
    def tasks_match_model(self) -> None:
        for task_id, m in self.model.items():
            task = self.store.get(task_id)
            assert (task.status, task.attempts, task.owner) == (m.status, m.attempts, m.owner)
            assert (task.lease_expires_at is not None) == (m.status in HELD)

    @invariant()
    def history_is_a_valid_walk(self) -> None:
        for task_id, m in self.model.items():
            history = self.store.history(task_id)
            assert len(history) == m.moves
            assert history[0].from_state is None
            assert history[0].to_state == "pending"
            for step in history[1:]:
                assert step.to_state in MOVES[step.from_state or ""]

    @invariant()
    def stats_match_model(self) -> None:
        counts = dict.fromkeys(STATES, 0)
        for m in self.model.values():
            counts[m.status] += 1
        assert self.store.stats() == counts


TaskStoreMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestTaskStoreModel = TaskStoreMachine.TestCase
