"""Storage engines: SQLite (a file, the default) and PostgreSQL (a server many hosts share).

A store's location names its engine: a `postgresql://` (or `postgres://`) URL is a
PostgreSQL database, anything else a SQLite file path.
"""

from __future__ import annotations

import re

URL_SCHEMES = ("postgresql://", "postgres://")
MASK = "****"
_PASSWORD_PARAMETER = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def is_postgres_url(location: object) -> bool:
    """True when `location` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(location, str) and location.lower().startswith(URL_SCHEMES)


def mask_url(url: str) -> str:
    """The URL with any password (in the authority or a `password=` parameter) masked,
    for errors, logs, `show`/`stats` output and process titles; anything else as given."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    # The credentials end at the first '@' before any '/', as libpq parses a URI: a
    # password may hold a raw '#' or '?', which urlsplit would take for the URL's end.
    userinfo = re.match(r"[^@/]*", rest)
    head = userinfo.group(0) if userinfo else ""
    if rest[len(head) : len(head) + 1] == "@" and ":" in head:
        rest = f"{head.split(':', 1)[0]}:{MASK}{rest[len(head) :]}"
    rest = _PASSWORD_PARAMETER.sub(rf"\g<1>{MASK}", rest)
    return scheme + sep + rest
