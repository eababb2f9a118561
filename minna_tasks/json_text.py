"""JSON text read back as its value: the one reading of a task's payload and result.

It imports nothing of the package, so every layer may use it: the records and
TaskStore, and the fields rule's tables below them (engines/task_schema.py).
"""

from __future__ import annotations

import json
import math
from typing import Any


def load_json(text: Any) -> Any:
    """JSON text as its value; anything else (plain text another tool wrote, NaN,
    numbers beyond a float, nesting deeper than Python parses) stays as it is."""
    if not isinstance(text, str):
        return text
    try:
        value, end = _DECODER.raw_decode(text)  # the common case, without decode()'s regexes
    except (ValueError, RecursionError):
        try:  # leading whitespace, or not JSON
            return _DECODER.decode(text)
        except (ValueError, RecursionError):
            return text
    if end != len(text) and text[end:].strip(" \t\n\r"):
        return text  # JSON followed by more text
    return value


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _no_constant(text: str) -> Any:
    raise ValueError(text)


_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_no_constant)
