"""The pure state machine: every move of the default machine, custom machines, validation."""

from __future__ import annotations

import itertools

import pytest

from minna_tasks import InvalidTransition, StateMachine, TaskState
from minna_tasks.errors import InvalidStateMachine, UnknownState

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
    assert machine.claimed is None
    assert machine.held == ()
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
        (
            {"moves": {"a": ["b"], "b": []}, "initial": "a", "held": ["z"]},
            "held state 'z' is not one of the states",
        ),
        (
            {"moves": {"a": ["b"], "b": []}, "initial": "a", "terminal": ["z"]},
            "terminal state 'z' is not one of the states",
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
        assert f"    {src} --> {dst}\n" in text
    assert "    completed --> [*]\n" in text
    custom = StateMachine({"a": ["b"], "b": []}, initial="a").to_mermaid()
    assert custom == "stateDiagram-v2\n    [*] --> a\n    a --> b\n    b --> [*]\n"


def test_machines_compare_by_value() -> None:
    assert StateMachine() == StateMachine()
    assert StateMachine() != StateMachine({"a": []}, initial="a")
