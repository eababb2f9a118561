"""Timestamps and the checks on names and values every memory write goes through."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from ..engines.memories import Value as Value  # what a memory holds (both engines keep it)


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


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def is_utf8(text: object) -> bool:
    """False for a str holding lone surrogates (a non-UTF-8 argv, JSON's "\\ud800"), which
    SQLite cannot store; True for anything that is not a str."""
    if not isinstance(text, str):
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def fits_int64(value: int) -> bool:
    """True when SQLite can store this integer exactly (it has 64 bits)."""
    return INT64_MIN <= value <= INT64_MAX


def unstorable(value: object) -> str | None:
    """Why SQLite could not keep this (JSON) value exactly, or None when it can."""
    if isinstance(value, int) and not isinstance(value, bool) and not fits_int64(value):
        return f"is an integer beyond 64 bits ({value}); SQLite cannot store it (use a string)"
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, not {value}"  # SQLite keeps NaN as NULL
    if not is_utf8(value):
        return "is not valid UTF-8 text"
    return None


def check_text(name: str, value: object, *, empty: bool = False) -> str:
    """The one check on text every name and field goes through: a str, not blank (unless
    `empty`), without NUL characters, valid UTF-8."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}")
    if not empty and not value.strip():
        raise ValueError(f"{name} must not be empty")
    if "\x00" in value:
        raise ValueError(f"{name} must not contain NUL characters")
    if not is_utf8(value):
        raise ValueError(f"{name} is not valid UTF-8 text")
    return value


check_name = check_text  # the memory API's name for it


def check_int(name: str, value: object, minimum: int | None = None) -> int:
    """The one check on integers: an int (not a bool), at least `minimum`, within 64 bits."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    if not fits_int64(value):
        raise ValueError(f"{name} must fit in a 64-bit integer, not {value}")
    return value


def check_value(value: object) -> Value:
    if value is None or isinstance(value, str | int | float):
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int) and not fits_int64(value):
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
