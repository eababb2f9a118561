"""Timestamps and the checks on names and values every memory write goes through."""

from __future__ import annotations

import time
from datetime import UTC, datetime

Value = str | int | float | None


def utcnow() -> str:
    """The current time as UTC ISO-8601 text with microseconds (sorts as text)."""
    return format_micros(now_micros())


def now_micros() -> int:
    """The current time in whole microseconds since the epoch."""
    return time.time_ns() // 1000


_seconds: dict[int, str] = {}  # second -> its text, for the few seconds in use


def format_micros(micros: int) -> str:
    """A time in microseconds since the epoch as utcnow() writes it. Formats each second
    once: a move stamps its triples and a lease, and datetime.isoformat costs ~1 us each."""
    seconds, fraction = divmod(micros, 1_000_000)
    text = _seconds.get(seconds)
    if text is None:
        if len(_seconds) > 64:
            _seconds.clear()
        text = _seconds[seconds] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{fraction:06d}+00:00"


def to_timestamp(when: datetime | str) -> str:
    """Normalise a datetime (naive means UTC) or ISO text to our timestamp text."""
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when)
        except ValueError:
            raise ValueError(f"not an ISO-8601 time: {when!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def check_name(kind: str, name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{kind} must be a string, not {type(name).__name__}")
    if not name.strip():
        raise ValueError(f"{kind} must not be empty")
    if "\x00" in name:
        raise ValueError(f"{kind} must not contain NUL characters")
    if not is_utf8(name):
        raise ValueError(f"{kind} is not valid UTF-8 text")
    return name


def is_utf8(text: str) -> bool:
    """False for text holding lone surrogates (a non-UTF-8 argv), which SQLite cannot store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_value(value: object) -> Value:
    if value is None or isinstance(value, str | int | float):
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise ValueError(
                f"a memory value must fit in a 64-bit integer, not {value} (store it as text)"
            )
        if isinstance(value, str) and not is_utf8(value):
            raise ValueError("a memory value is not valid UTF-8 text")
        return value
    raise TypeError(
        f"a memory value must be str, int, float or None, not {type(value).__name__}"
        " (encode structured values as JSON)"
    )


def decayed(confidence: float, since: str, half_life_days: float, now: datetime) -> float:
    age_days = (now - datetime.fromisoformat(since)).total_seconds() / 86400.0
    return float(confidence * 0.5 ** (max(age_days, 0.0) / half_life_days))
