"""Keep a password given in a postgresql:// URL on the command line out of the process
title: `ps` and /proc/PID/cmdline show every process's arguments to every user of the host.

`hide_passwords()` runs first thing when `minna-tasks` starts; the worker processes `run`
forks inherit the new title. The common start (no PostgreSQL URL in argv) costs one
regular-expression search over the arguments and imports nothing.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence

SETPROCTITLE_REQUIREMENT = "setproctitle>=1.3"
# Where a PostgreSQL URL starts inside an argument (`--db URL`, `--db=URL`, a CMD string).
_URL_START = re.compile(r"postgres(?:ql)?://", re.IGNORECASE)
# A URL that may hold a password (user:password@ before the path, or a password=
# parameter): its argument is blanked at once, before the exact masking (mask_url) has
# been imported, so the password shows for as short a time as Python allows.
_MAY_HOLD_PASSWORD = re.compile(r"postgres(?:ql)?://(?:[^/@]*:[^/]*@|.*password=)", re.I | re.S)


def masked_argv(argv: Sequence[str]) -> list[str] | None:
    """`argv` with the password of every PostgreSQL URL in it masked, or None when no
    argument holds a password (then the title needs no change)."""
    if not any(_URL_START.search(arg) for arg in argv):
        return None
    from urllib.parse import quote

    from minna_tasks.engines import MASK, mask_url

    def mask(url: str) -> str:
        masked = mask_url(url)
        if MASK in masked or quote(MASK) in masked:
            return masked
        # Fail closed: a URL that may hold a password mask_url did not find goes whole.
        return _blanked(url) if _MAY_HOLD_PASSWORD.match(url) else url

    masked = [_mask_argument(arg, mask) for arg in argv]
    return None if masked == list(argv) else masked


def _mask_argument(arg: str, mask: Callable[[str], str]) -> str:
    # Each URL runs from its scheme to the next URL's scheme or the end of the argument:
    # a password may hold spaces, so a URL cannot be cut at the first blank.
    starts = [m.start() for m in _URL_START.finditer(arg)]
    if not starts:
        return arg
    ends = [*starts[1:], len(arg)]
    return arg[: starts[0]] + "".join(mask(arg[s:e]) for s, e in zip(starts, ends, strict=True))


def _blanked(arg: str) -> str:
    """The argument with everything from its first URL on replaced by a mask, when the
    URL may hold a password (the interim title, and the fallback)."""
    found = _URL_START.search(arg)
    if found is None or not _MAY_HOLD_PASSWORD.search(arg):
        return arg
    return arg[: found.end()] + "****"


def hide_passwords(argv: Sequence[str] | None = None) -> bool:
    """Set the process title to the command line with passwords masked; True when it did.

    A URL that may hold a password is first blanked whole, before `minna_tasks` is
    imported, then shown with only its password masked (mask_url).

    Without setproctitle, say once on stderr that the password shows in the process list
    and how to avoid it, and carry on (a visible password is no reason to fail the command).
    """
    argv = list(sys.orig_argv if argv is None else argv)
    if not any(_MAY_HOLD_PASSWORD.search(arg) for arg in argv):
        return False  # no password in sight: the title stays exactly as the kernel has it
    try:
        from setproctitle import setproctitle, setthreadtitle
    except ImportError:
        _say_visible()
        return False
    # setproctitle also renames the thread (the `comm` that pgrep/pkill/top match):
    # keep the name the process started with.
    name = _process_name()
    setproctitle(" ".join(_blanked(arg) for arg in argv))
    masked = masked_argv(argv)
    setproctitle(" ".join(argv if masked is None else masked))
    if name:
        setthreadtitle(name)
    return masked is not None


def _process_name() -> str:
    try:
        with open("/proc/self/comm") as comm:
            return comm.read().strip()
    except OSError:
        return ""  # not Linux: setproctitle leaves the name alone there


def _say_visible() -> None:
    from minna_tasks.install_hint import install_hint

    sys.stderr.write(
        "minna-tasks: warning: the password in the PostgreSQL URL is visible to every user "
        "of this host in the process list (`ps`); install setproctitle to mask it "
        f"({install_hint('postgres', SETPROCTITLE_REQUIREMENT)}), or give the password with "
        "PGPASSWORD, ~/.pgpass or a service file, or the whole URL with MINNA_DB\n"
    )
    sys.stderr.flush()
