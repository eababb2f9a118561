"""Storage engines: SQLite (a file, the default) and PostgreSQL (a server many hosts share).

A store's location names its engine: a `postgresql://` (or `postgres://`) URL is a
PostgreSQL database, anything else a SQLite file path.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

URL_SCHEMES = ("postgresql://", "postgres://")
MASK = "****"


def is_postgres_url(location: object) -> bool:
    """True when `location` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(location, str) and location.lower().startswith(URL_SCHEMES)


def mask_url(url: str) -> str:
    """The URL with any password (in the authority or a `password=` parameter) masked,
    for errors, logs, `show`/`stats` output and process titles."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"(://[^:/@]*:)[^@]*@", rf"\g<1>{MASK}@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() == "password" for k, _ in pairs):
            query = urlencode(
                [(k, MASK if k.lower() == "password" else v) for k, v in pairs], safe="/"
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
