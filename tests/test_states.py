"""The pure state machine: every move of the default machine, custom machines, validation."""

from __future__ import annotations

import itertools

import pytest

from minna_tasks import InvalidTransition, StateMachine, TaskState
from minna_tasks.errors import InvalidStateMachine, UnknownState
from minna_tasks.events import Event

ALLOWED = {
    ("pending", "in_progress"),
    ("in_progress", "review"),
    ("in_progress", "pending"),
    ("in_progress", "failed"),
    ("review", "completed"),
    ("review", "failed"),
    ("review", "pending"),
    ("failed", "pending"),
}
STATES = [s.value for s in TaskState]
# The smallest machine the store can drive: queue a, claimed b, done c.
DRIVABLE: dict[str, object] = {"moves": {"a": ["b"], "b": ["c", "a"], "c": []}, "initial": "a"}


def test_task_state_values_are_the_seeds() -> None:
    assert STATES == ["pending", "in_progress", "review", "completed", "failed"]
    assert TaskState.PENDING == "pending"
    assert TaskState("review") is TaskState.REVIEW


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(STATES, STATES)))
def test_every_move_of_the_default_machine(src: str, dst: str) -> None:
    machine = StateMachine()
    if (src, dst) in ALLOWED:
        machine.validate(src, dst, "t-1")
        assert machine.can_move(src, dst)
    else:
        assert not machine.can_move(src, dst)
        with pytest.raises(InvalidTransition) as info:
            machine.validate(src, dst, "t-1")
        assert info.value.state == src
        assert info.value.to_state == dst
        assert set(info.value.allowed) == {d for s, d in ALLOWED if s == src}


def test_invalid_move_message_names_task_state_and_allowed() -> None:
    with pytest.raises(InvalidTransition) as info:
        StateMachine().validate("pending", "completed", "t-42")
    assert str(info.value) == (
        "cannot move t-42 from pending to completed: task t-42 is pending; "
        "it can move to: in_progress"
    )
    with pytest.raises(InvalidTransition, match="it is terminal and cannot move"):
        StateMachine().validate("completed", "pending", "t-7")


def test_unknown_state_lists_known_states() -> None:
    with pytest.raises(UnknownState) as info:
        StateMachine().allowed("done")
    assert str(info.value) == (
        "unknown state 'done'; known states: pending, in_progress, review, failed, completed"
    )


def test_default_roles_and_terminal() -> None:
    machine = StateMachine()
    assert machine.initial == "pending"
    assert machine.claimed == "in_progress"
    assert machine.held == ("in_progress", "review")
    assert machine.failed == "failed"
    assert machine.terminal == ("completed",)
    assert machine.is_terminal("completed")
    assert not machine.is_terminal("failed")


def test_custom_machine_is_enforced() -> None:
    machine = StateMachine(
        {"todo": ["doing"], "doing": ["done", "todo"], "done": []}, initial="todo"
    )
    assert machine.states == ("todo", "doing", "done")
    # Roles the moves imply: the one state a claim reaches, no review, one end.
    assert (machine.claimed, machine.held, machine.review, machine.done, machine.failed) == (
        "doing",
        ("doing",),
        None,
        "done",
        None,
    )
    assert machine.allowed("doing") == ("done", "todo")
    with pytest.raises(InvalidTransition, match="it can move to: doing"):
        machine.validate("todo", "done")


def test_custom_machine_with_roles() -> None:
    machine = StateMachine(
        {
            "queued": ["running"],
            "running": ["ok", "queued", "broken"],
            "broken": ["queued"],
            "ok": [],
        },
        initial="queued",
        claimed="running",
        held=["running"],
        failed="broken",
    )
    assert (machine.claimed, machine.held, machine.failed) == ("running", ("running",), "broken")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"moves": {}}, "a state machine needs at least one state"),
        (
            {"moves": {"a": ["b"], "b": []}, "initial": "x"},
            "initial state 'x' is not one of the states: a, b",
        ),
        (
            {"moves": {"a": ["b"], "b": ["a"]}, "initial": "a", "terminal": ["b"]},
            "terminal state 'b' has moves out of it: a",
        ),
        (
            {"moves": {"a": ["b"], "b": [], "c": ["b"]}, "initial": "a"},
            "states not reachable from 'a': c",
        ),
        (
            {"moves": {"a": ["b"], "b": []}, "initial": "a", "claimed": "z"},
            "claimed state 'z' is not one of the states",
        ),
        (
            {"moves": {"a": ["b"], "b": []}, "initial": "a", "failed": "z"},
            "failed state 'z' is not one of the states",
        ),
        ({**DRIVABLE, "held": ["z"]}, "held state 'z' is not one of the states"),
        (
            {"moves": {"a": ["b"], "b": []}, "initial": "a", "terminal": ["z"]},
            "terminal state 'z' is not one of the states",
        ),
        ({**DRIVABLE, "done": "z"}, "done state 'z' is not one of the states"),
        ({**DRIVABLE, "review": "z"}, "review state 'z' is not one of the states"),
        # Machines the store could not drive: each gap named.
        (
            {"moves": {"a": ["b"], "b": []}, "initial": "a"},
            "no claimed state: name the state a claim moves a task to from 'a' with claimed=...",
        ),
        (
            {"moves": {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}, "initial": "a"},
            "no claimed state: name the state a claim moves a task to from 'a' with claimed=...",
        ),
        (
            {"moves": {"a": ["b"], "b": ["c"], "c": ["a"]}, "initial": "a", "claimed": "c"},
            "claimed state 'c' is not one move from the initial state 'a'",
        ),
        (
            {"moves": {"a": ["b"], "b": ["c"], "c": []}, "initial": "a"},
            "held state 'b' has no way back to the queue 'a': "
            "a task whose worker dies there would be stuck",
        ),
        (
            {
                "moves": {"a": ["b"], "b": ["r", "c"], "r": ["b"], "c": [], "f": ["a"]},
                "initial": "a",
                "failed": "f",
                "events": [("expire", "b", "f")],
            },
            "held state 'r' has no way back to the queue 'a' or to failure 'f': "
            "a task whose worker dies there would be stuck",
        ),
        (
            {**DRIVABLE, "events": [("claim", "a", "b"), ("accept", "b", "c"), ("give", "b", "a")]},
            "held state 'b' has no 'expire' event back to 'a'",
        ),
        (
            {"moves": {"a": ["b"], "b": ["c", "a", "d"], "c": [], "d": []}, "initial": "a"},
            "no done state: terminal states besides failed: 2 terminal states (c, d); "
            "name the one a finished task ends in with done=...",
        ),
        ({**DRIVABLE, "done": "b"}, "done state 'b' is not terminal: it moves to c, a"),
        (
            {**DRIVABLE, "review": "b"},
            "review state 'b' must be a held state other than the claimed one",
        ),
        ({**DRIVABLE, "held": ["a"]}, "held state 'a' cannot be the initial or a terminal state"),
        (
            {
                "moves": {
                    "a": ["b"],
                    "b": ["x", "y", "a"],
                    "x": ["c", "a"],
                    "y": ["c", "a"],
                    "c": [],
                },
                "initial": "a",
            },
            "claimed state 'b' has no move to the done state 'c', "
            "and no review state leads there: name it with review=...",
        ),
        (
            {
                "moves": {"a": ["b"], "b": ["x", "a"], "x": ["r", "a"], "r": ["c", "a"], "c": []},
                "initial": "a",
                "review": "r",
            },
            "claimed state 'b' has no move to the review state 'r'",
        ),
        (
            {
                "moves": {"a": ["b"], "b": ["r", "c", "a"], "r": ["a"], "c": []},
                "initial": "a",
                "review": "r",
            },
            "review state 'r' has no move to the done state 'c'",
        ),
        (
            {
                "initial": "a",
                "events": [("take", "a", "b"), ("accept", "b", "c"), ("expire", "b", "a")],
            },
            "the move a -> b has no 'claim' event",
        ),
        # Events: their effects and their shape.
        (
            {**DRIVABLE, "events": [("go", "b", "c", "twice")]},
            "event 'go' (b -> c): attempts must be one of keep, add, reset, not 'twice'",
        ),
        (
            {**DRIVABLE, "events": [("go", "b", "c", "keep", "steal")]},
            "event 'go' (b -> c): holder must be one of take, keep, drop, not 'steal'",
        ),
        (
            {**DRIVABLE, "events": [("go", "b", "c"), ("go", "b", "c")]},
            "the move b -> c declares an event twice: go, go",
        ),
        (
            {**DRIVABLE, "events": [5]},
            "an event is an Event, a (name, source, target) tuple or a mapping, not 5",
        ),
        (
            {**DRIVABLE, "events": [{"source": "b", "target": "c"}]},
            "an event needs a 'name': {'source': 'b', 'target': 'c'}",
        ),
    ],
)
def test_custom_machine_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidStateMachine) as info:
        StateMachine(**kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_mermaid_rendering() -> None:
    text = StateMachine().to_mermaid()
    assert text.startswith("stateDiagram-v2\n    [*] --> pending\n")
    for src, dst in ALLOWED:
        assert f"    {src} --> {dst} : " in text
    assert "    completed --> [*]\n" in text
    # The attempt-counting move is part of the declaration, so the diagram shows it.
    assert "    review --> pending : reject (+1 attempt) / fail (+1 attempt) / release" in text
    assert "    failed --> pending : retry (attempts reset)\n" in text
    custom = StateMachine(**DRIVABLE).to_mermaid()  # type: ignore[arg-type]
    assert custom == (
        "stateDiagram-v2\n    [*] --> a\n    a --> b : claim\n    b --> c : accept\n"
        "    b --> a : release / fail (+1 attempt) / expire (+1 attempt)\n    c --> [*]\n"
    )


def test_machines_compare_by_value() -> None:
    assert StateMachine() == StateMachine()
    assert StateMachine() != StateMachine(**DRIVABLE)  # type: ignore[arg-type]


def test_default_events_declare_their_effects() -> None:
    machine = StateMachine()
    effects = {
        (s, t): [(e.name, e.attempts, e.holder) for e in events]
        for (s, t), events in machine.events.items()
    }
    assert effects == {
        ("pending", "in_progress"): [("claim", "keep", "take")],
        ("in_progress", "review"): [("submit", "keep", "keep")],
        ("in_progress", "pending"): [
            ("release", "keep", "drop"),
            ("fail", "add", "drop"),
            ("expire", "add", "drop"),
        ],
        ("in_progress", "failed"): [("fail", "add", "drop"), ("expire", "add", "drop")],
        ("review", "completed"): [("accept", "keep", "drop")],
        ("review", "failed"): [
            ("fail", "add", "drop"),
            ("expire", "add", "drop"),
            ("reject", "add", "drop"),
        ],
        ("review", "pending"): [
            ("reject", "add", "drop"),
            ("fail", "add", "drop"),
            ("release", "keep", "drop"),
            ("expire", "add", "drop"),
        ],
        ("failed", "pending"): [("retry", "reset", "drop")],
    }
    assert (machine.review, machine.done) == ("review", "completed")
    assert machine.event("in_progress", "pending").name == "release"  # a bare move
    assert machine.event("review", "pending").counts_attempt
    assert machine.event("in_progress", "pending", "fail").counts_attempt
    assert machine.used_up(machine.event("review", "pending")) == machine.event(
        "review", "failed", "reject"
    )
    assert machine.find("review", "expire") == machine.event("review", "pending", "expire")


def test_an_event_the_move_lacks_is_refused_naming_the_moves_events() -> None:
    with pytest.raises(InvalidTransition) as info:
        StateMachine().event("in_progress", "pending", "accept", "t-3")
    assert str(info.value) == (
        "cannot move t-3 from in_progress to pending: "
        "the move in_progress -> pending is release or fail or expire, not accept"
    )
    with pytest.raises(InvalidTransition, match="it can move to: in_progress"):
        StateMachine().event("pending", "completed", None, "t-3")


def test_explicit_events_and_custom_names() -> None:
    machine = StateMachine(
        initial="todo",
        events=[
            ("claim", "todo", "doing"),
            ("finish", "doing", "done"),
            ("expire", "doing", "todo"),
            Event("bounce", "doing", "todo", attempts="add"),
            ("drop", "doing", "todo"),
        ],
    )
    assert machine.states == ("todo", "doing", "done")
    assert machine.event("doing", "done").holder == "drop"  # a name of its own: drops the lease
    assert machine.event("doing", "todo").name == "expire"  # the first declared
    assert machine.event("doing", "todo", "bounce").counts_attempt
    assert machine.event("doing", "todo", "drop").attempts == "keep"


def test_canonical_form_ignores_listing_order() -> None:
    one = StateMachine({"a": ["b"], "b": ["c", "a"], "c": []}, initial="a")
    two = StateMachine({"c": [], "b": ["a", "c"], "a": ["b"]}, initial="a")
    assert one.states != two.states
    assert one == two
    assert one.canonical() == two.canonical()
    assert StateMachine.from_dict(one.to_dict()) == one
    assert StateMachine.from_dict(one.to_dict()).states == one.states
    assert StateMachine.from_dict(StateMachine().to_dict()).allowed("in_progress") == (
        "review",
        "pending",
        "failed",
    )
    assert (
        StateMachine.from_dict({"moves": {"a": ["b"], "b": ["c", "a"], "c": []}, "initial": "a"})
        == one
    )


def test_differences_name_what_differs() -> None:
    one = StateMachine(**DRIVABLE)  # type: ignore[arg-type]
    two = StateMachine({"a": ["b"], "b": ["c", "a", "x"], "c": [], "x": []}, initial="a", done="c")
    assert one.differences(two) == [
        "states only in the second: x",
        "moves only in the second: b -> x (move)",
        "terminal is ['c'] in the first, ['c', 'x'] in the second",
    ]
    assert one.differences(one) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1], "a state machine definition is a JSON object"),
        ({"moves": {}, "colour": 1}, "unknown key(s) in the state machine definition: colour"),
    ],
)
def test_from_dict_refuses_what_is_not_a_machine(data: object, message: str) -> None:
    with pytest.raises(InvalidStateMachine) as info:
        StateMachine.from_dict(data)  # type: ignore[arg-type]
    assert str(info.value) == message
