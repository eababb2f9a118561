"""How messages name a task's state, so that every state reads as English."""

from __future__ import annotations

# States that read as a condition after "is" ("is pending", "is in_progress"); any other
# state is a place a task is in ("is in review", "is in triage").
_CONDITION_SUFFIXES = ("ed", "ing")
_CONDITION_PREFIXES = ("in_", "on_")


def is_in(state: str) -> str:
    """`is pending`, `is completed`, but `is in review`."""
    name = state.lower()
    if name.endswith(_CONDITION_SUFFIXES) or name.startswith(_CONDITION_PREFIXES):
        return f"is {state}"
    return f"is in {state}"
