"""Two stores on one file in one process, while another process opens and closes it.

Closing any descriptor of a file drops every POSIX lock the process holds on it,
SQLite's included; a second open must not read the file through a descriptor of
its own, or another process's closing connection may checkpoint and delete the
WAL under the first store ("disk I/O error").
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from minna_tasks import TaskStore

OTHER = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); list(c.iterdump()); c.close()"


def test_a_second_store_in_the_process_keeps_the_first_ones_locks(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    first = TaskStore(path)
    try:
        first.add_many([f"task {i}" for i in range(200)])
        for round_ in range(5):
            second = TaskStore(path)  # a second open, as the MCP server's readers do
            try:
                subprocess.run([sys.executable, "-c", OTHER, str(path)], check=True, timeout=30)
                assert path.with_name(path.name + "-wal").exists()
                first.add(f"more {round_}")
                assert len(second.list()) == 201 + round_
                assert len(first.list()) == 201 + round_
            finally:
                second.close()
    finally:
        first.close()
