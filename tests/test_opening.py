"""Opening a shared file while other processes open or write it: the opener waits for
them (up to its timeout) instead of failing with "database is locked"."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from minna_tasks import MinnaMemory

# Holds the write lock (RESERVED, rollback journal) of a new file until told to commit.
HOLDER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("CREATE TABLE other_tool (x)")
    print("held", flush=True)
    sys.stdin.readline()
    conn.execute("COMMIT")
    """
)


def test_switching_to_wal_waits_for_a_writer_instead_of_failing(tmp_path: Path) -> None:
    """SQLite answers the journal-mode change with SQLITE_BUSY at once, without its busy
    handler, while another connection holds the write lock: the open must retry it."""
    path = tmp_path / "minna.db"
    sqlite3.connect(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline() == "held\n"
        # Release the lock from a second process a moment after our open has started.
        releaser = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import time, sys; time.sleep(0.5); print(flush=True)",
            ],
            stdout=holder.stdin,
        )
        memory = MinnaMemory(path, timeout=30)
        memory.close()
        releaser.wait(timeout=60)
    finally:
        holder.communicate(timeout=60)  # closes its stdin (it commits) and its stdout
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert {"other_tool", "memories"} <= tables
    finally:
        conn.close()
