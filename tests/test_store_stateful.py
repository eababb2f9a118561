"""Hypothesis stateful test: TaskStore against a small in-memory model of the rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from minna_tasks import (
    ClaimSuperseded,
    DependencyCycle,
    DependencyError,
    InvalidTransition,
    TaskStore,
    TransitionConflict,
)

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
# Which fencing token a call passes: none, the current claim's, or a superseded one.
TOKENS = st.sampled_from(["none", "current", "stale"])


@dataclass
class Model:
    seq: int
    priority: int
    max_attempts: int
    status: str = "pending"
    attempts: int = 0
    owner: str | None = None
    moves: int = 1  # the creating status row
    token: int | None = None  # the claim's fencing token while held
    stale: int = 0  # a token no claim holds now (0 is never one: memory ids start at 1)
    deps: list[str] = field(default_factory=list)
    dep_changes: int = 0  # dependency changes: history steps that keep the status


class TaskStoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = TaskStore(":memory:")
        self.model: dict[str, Model] = {}
        self.top_token = 0

    def teardown(self) -> None:
        self.store.close()

    # -- model helpers --------------------------------------------------------

    def _set(self, m: Model, status: str, owner: str | None) -> None:
        if status == "pending" and m.status == "failed":
            m.attempts = 0
        if status not in HELD and m.token is not None:
            m.stale, m.token = m.token, None
        m.status, m.owner = status, owner
        m.moves += 1

    def _took(self, task_id: str) -> None:
        """A claim of the task just happened: its new token is greater than every other."""
        m = self.model[task_id]
        token = self.store.get(task_id).claim_token
        assert token is not None
        assert token > self.top_token
        if m.token is not None:
            m.stale = m.token
        m.token = self.top_token = token

    def _token(self, m: Model, choice: str) -> int | None:
        return {"none": None, "current": m.token, "stale": m.stale}[choice]

    def _fenced(self, m: Model, token: int | None) -> bool:
        """True when `token` is refused (ClaimSuperseded) before any other check."""
        return token is not None and not (m.status in HELD and token == m.token)

    def _fail_attempt(self, m: Model) -> None:
        m.attempts += 1
        self._set(m, "failed" if m.attempts >= m.max_attempts else "pending", None)

    def _expect(self, error: type[Exception] | None, call: object) -> None:
        raised: Exception | None = None
        try:
            returned = call()  # type: ignore[operator]
        except (InvalidTransition, TransitionConflict, DependencyError) as e:
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
        pending = [
            (-m.priority, m.seq, i)
            for i, m in self.model.items()
            if m.status == "pending" and not self._blocked_by(m)
        ]
        task = self.store.claim(worker)
        if not pending:
            assert task is None
            return
        expected_id = min(pending)[2]
        assert task is not None
        assert task.id == expected_id
        assert all(self.model[dep].status == "completed" for dep in task.depends_on)
        self._set(self.model[expected_id], "in_progress", worker)
        self._took(expected_id)

    def _blocked_by(self, m: Model) -> list[str]:
        return [dep for dep in m.deps if self.model[dep].status != "completed"]

    def _reaches(self, start: str, goal: str) -> bool:
        seen, frontier = {start}, [start]
        while frontier:
            node = frontier.pop()
            if node == goal:
                return True
            for dep in self.model[node].deps:
                if dep not in seen:
                    seen.add(dep)
                    frontier.append(dep)
        return False

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def depend(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(self._ids()))
        on = data.draw(st.sampled_from(self._ids()))
        m = self.model[task_id]
        if on in m.deps:
            error: type[Exception] | None = None
        elif m.status in HELD or m.status == "completed":
            error = DependencyError
        elif self._reaches(on, task_id):
            error = DependencyCycle
        else:
            error = None
        self._expect(error, lambda: self.store.depend(task_id, on))
        if error is None and on not in m.deps:
            m.deps.append(on)
            m.dep_changes += 1

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def undepend(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(self._ids()))
        m = self.model[task_id]
        on = data.draw(st.sampled_from([*m.deps, *self._ids()]))
        error = None if on in m.deps else DependencyError
        self._expect(error, lambda: self.store.undepend(task_id, on))
        if error is None:
            m.deps.remove(on)
            m.dep_changes += 1

    @precondition(lambda self: self.model)
    @rule(
        data=st.data(),
        to=st.sampled_from(STATES),
        actor=ACTORS,
        use_expected=st.booleans(),
        wrong_expected=st.sampled_from(STATES),
        choice=TOKENS,
    )
    def transition(
        self,
        data: st.DataObject,
        to: str,
        actor: str | None,
        use_expected: bool,
        wrong_expected: str,
        choice: str,
    ) -> None:
        task_id = data.draw(st.sampled_from(self._ids()))
        m = self.model[task_id]
        token = self._token(m, choice)
        expected = (
            (m.status if wrong_expected == m.status else wrong_expected) if use_expected else None
        )
        if self._fenced(m, token):
            error: type[Exception] | None = ClaimSuperseded
        elif expected is not None and expected != m.status:
            error = TransitionConflict
        elif actor and m.owner and m.owner != actor and m.status in HELD:
            error = TransitionConflict
        elif to not in MOVES[m.status]:
            error = InvalidTransition
        else:
            error = None
        self._expect(
            error,
            lambda: self.store.transition(task_id, to, expected=expected, actor=actor, token=token),
        )
        if error is None:
            if m.status == "review" and to == "pending":
                self._fail_attempt(m)  # the reject event counts a failed attempt
            elif m.status in HELD and to == "failed":
                m.attempts += 1  # the fail event counts the attempt it ends
                self._set(m, to, None)
            else:
                owner = actor if to == "in_progress" else (m.owner if to in HELD else None)
                took = m.status == "pending" and to == "in_progress"  # the claim event
                self._set(m, to, owner)
                if took:
                    self._took(task_id)

    def _holder_error(self, m: Model, worker: str, token: int | None) -> type[Exception] | None:
        if self._fenced(m, token):
            return ClaimSuperseded
        return None if m.status in HELD and m.owner == worker else TransitionConflict

    @precondition(lambda self: self.model)
    @rule(data=st.data(), worker=WORKERS, choice=TOKENS)
    def release(self, data: st.DataObject, worker: str, choice: str) -> None:
        task_id = data.draw(st.sampled_from(self._ids()))
        m = self.model[task_id]
        token = self._token(m, choice)
        error = self._holder_error(m, worker, token)
        self._expect(error, lambda: self.store.release(task_id, worker, token=token))
        if error is None:
            self._set(m, "pending", None)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), worker=WORKERS, choice=TOKENS)
    def heartbeat(self, data: st.DataObject, worker: str, choice: str) -> None:
        task_id = data.draw(st.sampled_from(self._ids()))
        m = self.model[task_id]
        token = self._token(m, choice)
        self._expect(
            self._holder_error(m, worker, token),
            lambda: self.store.heartbeat(task_id, worker, token=token),
        )

    @precondition(lambda self: self.model)
    @rule(data=st.data(), worker=WORKERS, choice=TOKENS)
    def fail(self, data: st.DataObject, worker: str, choice: str) -> None:
        task_id = data.draw(st.sampled_from(self._ids()))
        m = self.model[task_id]
        token = self._token(m, choice)
        if self._fenced(m, token):
            error: type[Exception] | None = ClaimSuperseded
        elif m.owner and m.owner != worker and m.status in HELD:
            error = TransitionConflict
        elif m.status not in HELD:
            error = InvalidTransition
        else:
            error = None
        self._expect(error, lambda: self.store.fail(task_id, worker, error="boom", token=token))
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
            assert task.claim_token == m.token
            assert (task.claim_token is not None) == (m.status in HELD)
            assert task.depends_on == tuple(m.deps)
            assert task.blocked_by == tuple(self._blocked_by(m))

    @invariant()
    def readiness_matches_model(self) -> None:
        waiting = [m for m in self.model.values() if m.status == "pending"]
        blocked = sum(1 for m in waiting if self._blocked_by(m))
        assert self.store.readiness() == {"ready": len(waiting) - blocked, "blocked": blocked}

    @invariant()
    def history_is_a_valid_walk(self) -> None:
        for task_id, m in self.model.items():
            history = self.store.history(task_id)
            assert len(history) == m.moves + m.dep_changes
            assert history[0].from_state is None
            assert history[0].to_state == "pending"
            for step in history[1:]:
                if step.from_state == step.to_state:  # a dependency change
                    continue
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
