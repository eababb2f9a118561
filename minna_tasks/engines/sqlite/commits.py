"""In-process wake-ups after a commit, one signal per database file.

`PRAGMA data_version` tells a connection about other connections' commits, but a
waiter polls it only every few milliseconds; a commit made in this process bumps
the file's signal so that waiters in this process wake at once.
"""

from __future__ import annotations

import os
import threading


class CommitSignal:
    """A generation counter with a condition: bumped after each commit that wrote."""

    def __init__(self) -> None:
        self.condition = threading.Condition(threading.Lock())
        self.generation = 0

    def bump(self) -> None:
        with self.condition:
            self.generation += 1
            self.condition.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        """Wait up to `timeout` seconds for a generation other than `seen`; the current one."""
        with self.condition:
            if self.generation == seen:
                self.condition.wait(timeout)
            return self.generation


_lock = threading.Lock()
_signals: dict[str, CommitSignal] = {}


def signal_for(key: str) -> CommitSignal:
    """The signal of one file (key: its real path; a private key for `:memory:`)."""
    with _lock:
        signal = _signals.get(key)
        if signal is None:
            signal = _signals[key] = CommitSignal()
        return signal


def file_key(path: str) -> str:
    """The key of a file path: the same file under any name gives the same key."""
    return os.path.realpath(path)


def _reset_after_fork() -> None:
    # A lock held by another thread at fork time would never be released in the child.
    global _lock, _signals
    _lock = threading.Lock()
    _signals = {}


os.register_at_fork(after_in_child=_reset_after_fork)
