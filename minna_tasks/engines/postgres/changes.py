"""PostgreSQL's change feed: LISTEN/NOTIFY for waiting (listen.py), and the status log
read in the order transactions became final.

Memory ids are not a safe cursor here: a BIGSERIAL id is drawn at insert, not at
commit, so transaction X may take id 10 and Y id 11, Y commit first, and a reader that
saw 11 would move past 10 before X commits it. The feed therefore orders rows by
(writing transaction, id), each row carrying `txid` (pg_current_xact_id(), schema
migration 3), and reads only rows whose transaction is below the xmin of the read's own
snapshot: every transaction below it has ended, so nothing can appear there later, and
any row not yet visible belongs to a transaction at or above it, hence after every row
read. This is PgQ's design (the transactional-outbox reader of Skype's queue), and what
graphile-worker and Debezium-less outbox relays do with xid8 snapshots.

The price: a transaction that stays open holds back the rows of those that started
after it (they are delivered when it ends, in order). The public cursor stays a memory
id: `position()` looks up its row's transaction.
"""

from __future__ import annotations

from typing import Any

from ..feed import Batch, ChangeRow, Position
from .listen import PostgresChangeDetector

# The oldest transaction still open, in the read's own snapshot (a repeatable-read
# snapshot from `reading()`, so the rows read next are of the same instant or later).
HORIZON = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
AFTER = "(m.txid, m.id) > (%(x)s::text::xid8, %(id)s) AND m.txid < %(horizon)s::text::xid8"
STATUS_CHANGES = f"""
SELECT m.id, m.entity,
    (SELECT p.value FROM memories p
     WHERE p.entity = m.entity AND p.attribute = 'status' AND p.id < m.id
     ORDER BY p.id DESC LIMIT 1),
    m.value, m.created_at, m.source, m.context, m.txid::text::bigint
FROM memories m
WHERE m.attribute = 'status' AND {AFTER}
    AND (%(task)s::text IS NULL OR m.entity = %(task)s::text)
    AND (%(time)s::text IS NULL OR m.created_at > %(time)s::text)
    AND EXISTS (SELECT 1 FROM task_current t WHERE t.id = m.entity)
ORDER BY m.txid, m.id
LIMIT %(limit)s
"""
TOUCHED = f"""
SELECT m.entity FROM memories m
WHERE {AFTER} AND EXISTS (SELECT 1 FROM task_current t WHERE t.id = m.entity)
GROUP BY m.entity ORDER BY min(m.txid), min(m.id)
"""
# The newest committed row held back behind the horizon (an open transaction holds it).
HELD = "SELECT coalesce(max(txid)::text::bigint, 0) FROM memories WHERE txid >= %s::text::xid8"
CURSOR_TXID = "SELECT txid::text::bigint FROM memories WHERE id <= %s ORDER BY id DESC LIMIT 1"


def _one(conn: Any, sql: str, params: Any = None) -> Any:
    row = conn.raw.execute(sql, params).fetchone()
    return None if row is None else row[0]


class PostgresFeed:
    """`ChangeFeed` (engines/feed.py) on a PostgreSQL database (see the module docstring)."""

    def __init__(self, database: Any) -> None:
        self.database = database

    def detector(self) -> PostgresChangeDetector:
        return PostgresChangeDetector(self.database)

    def position(self, conn: Any, cursor: int | None) -> Position:
        if cursor is None:
            return (int(_one(conn, HORIZON)), 0)
        if cursor <= 0:
            return (0, 0)
        # The cursor's own row (or, deleted with its task, the nearest before it).
        txid = _one(conn, CURSOR_TXID, (cursor,))
        return (0 if txid is None else int(txid), cursor)

    def _horizon(self, conn: Any, after: Position) -> tuple[Position, dict[str, Any]]:
        horizon = int(_one(conn, HORIZON))
        return (horizon, 0), {"x": after[0], "id": after[1], "horizon": horizon}

    def _held(self, conn: Any, done: Position) -> int:
        return int(_one(conn, HELD, (done[0],)))

    def status_changes(
        self, conn: Any, after: Position, time: str | None, task_id: str | None, limit: int
    ) -> Batch[ChangeRow]:
        done, args = self._horizon(conn, after)
        if after >= done:
            return Batch([], after, self._held(conn, done), done[0])
        args.update(task=task_id, time=time, limit=None if limit < 0 else limit)
        found = conn.raw.execute(STATUS_CHANGES, args).fetchall()
        rows: list[ChangeRow] = [tuple(r[:7]) for r in found]
        if found and len(found) == limit:  # more may follow: go on from the last row
            return Batch(rows, (int(found[-1][7]), int(found[-1][0])), 0, done[0])
        return Batch(rows, max(after, done), self._held(conn, done), done[0])

    def touched(self, conn: Any, after: Position) -> Batch[str]:
        done, args = self._horizon(conn, after)
        if after >= done:
            return Batch([], after, self._held(conn, done), done[0])
        rows = conn.raw.execute(TOUCHED, args).fetchall()
        return Batch([row[0] for row in rows], max(after, done), self._held(conn, done), done[0])
