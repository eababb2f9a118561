"""Why records given to TaskStore.restore cannot be stored exactly, named by task and
triple: looked for only once SQLite has refused a value, so the bulk path checks nothing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ImportFormatError
from ..memory.values import unstorable


def refusal(records: Iterable[Mapping[str, Any]]) -> ImportFormatError | None:
    """The error for the first triple SQLite cannot keep (None when there is none)."""
    for record in records:
        for n, fact in enumerate(record["facts"]):
            for key in ("value", "source", "context", "attribute"):
                problem = unstorable(fact.get(key))
                if problem:
                    return ImportFormatError(
                        f"task {record['id']}: history[{n}].{key} ({fact.get('attribute')!r}) "
                        f"{problem}; nothing was written"
                    )
    return None
