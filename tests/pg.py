"""A throwaway PostgreSQL cluster for the tests: initdb in a temp folder, one server per
test session on a Unix socket in that folder and on 127.0.0.1 (a free port), one
database per test, all stopped and removed at the end.

initdb and the server refuse to run as root: as root they run as the `postgres` user
(the Debian package creates it) with the folder chown'd to it; otherwise as the current
user. When no server can be had the PostgreSQL tests are skipped with the reason, except
in CI (`CI=true`), where that is a failure.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

SUPERUSER = "minna"
SUPERUSER_PASSWORD = "s3cret-super"  # only over TCP; the Unix socket trusts local users
# Pinned settings (the benchmarks report them): durability off, since every cluster is
# thrown away; enough connections for 16 worker processes and the 8-process race.
SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "128MB",
    "default_transaction_isolation": "read committed",
}


def pg_bin() -> Path | None:
    """The folder of initdb/pg_ctl: Debian's /usr/lib/postgresql/N/bin (newest), or PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A running throwaway server: where it listens and how to make databases on it."""

    folder: Path
    socket_dir: Path
    port: int
    bindir: Path
    run_as: list[str]
    _names: itertools.count[int]

    def url(self, dbname: str = "postgres", user: str = SUPERUSER) -> str:
        """A URL over the Unix socket (trusted: no password)."""
        return f"postgresql://{user}@/{dbname}?host={quote(str(self.socket_dir))}&port={self.port}"

    def tcp_url(self, dbname: str, user: str, password: str) -> str:
        return f"postgresql://{user}:{quote(password)}@127.0.0.1:{self.port}/{dbname}"

    def admin(self, *statements: str, dbname: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)  # type: ignore[arg-type]

    def create_database(self) -> str:
        name = f"t{os.getpid()}_{next(self._names)}"
        self.admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def settings(self) -> dict[str, str]:
        import psycopg

        with psycopg.connect(self.url()) as conn:
            rows = conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                (list(SETTINGS),),
            ).fetchall()
            version = conn.execute("SHOW server_version").fetchone()
        out = {str(n): str(v) for n, v in rows}
        out["server_version"] = str(version[0]) if version else "?"
        return out

    def stop(self) -> None:
        _run(
            self.run_as,
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.folder / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            check=False,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def _run(run_as: list[str], cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*run_as, *cmd],
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def start_cluster() -> Cluster:
    """initdb + pg_ctl start in a fresh temp folder; raises RuntimeError saying why not."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise RuntimeError("psycopg is not installed (pip install -e '.[postgres]')") from None
    bindir = pg_bin()
    if bindir is None:
        raise RuntimeError("initdb not found (install the Debian package `postgresql`)")
    folder = Path(tempfile.mkdtemp(prefix="minna-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("running as root and there is no `postgres` user") from None
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    pwfile = folder / "pw"
    pwfile.write_text(SUPERUSER_PASSWORD + "\n")
    if run_as:
        entry = pwd.getpwnam("postgres")
        os.chown(pwfile, entry.pw_uid, entry.pw_gid)
    port = free_port()
    options = " ".join(f"-c {k}='{v}'" for k, v in SETTINGS.items())
    try:
        _run(
            run_as,
            [
                str(bindir / "initdb"),
                "-D",
                str(folder / "data"),
                "-U",
                SUPERUSER,
                "--pwfile",
                str(pwfile),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
        )
        _run(
            run_as,
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(folder / "data"),
                "-w",
                "-t",
                "60",
                "-l",
                str(folder / "server.log"),
                "-o",
                f"-k {folder} -p {port} -c listen_addresses=127.0.0.1 {options}",
                "start",
            ],
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        detail = getattr(e, "stderr", "") or ""
        log = folder / "server.log"
        if log.exists():
            detail += log.read_text()[-2000:]
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"could not start a PostgreSQL cluster: {e}: {detail.strip()}") from e
    return Cluster(folder, folder, port, bindir, run_as, itertools.count(1))


def unavailable(reason: str) -> None:
    """Skip with the reason, or fail in CI, where the PostgreSQL tests must run."""
    message = f"PostgreSQL tests need a server: {reason}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


_state: dict[str, Cluster | str] = {}


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The session's throwaway server (started at first use, stopped at the end)."""
    if "error" in _state:
        unavailable(str(_state["error"]))
    try:
        cluster = start_cluster()
    except RuntimeError as e:
        _state["error"] = str(e)
        unavailable(str(e))
        raise
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = pg_cluster.create_database()
    yield pg_cluster.url(name)
    pg_cluster.drop_database(name)


DUMPED_TABLES = (
    "memories",
    "entities",
    "entity_aliases",
    "relations",
    "sessions",
    "preferences",
    "task_current",
    "task_machines",
    "schema_components",
)


def pg_dump(url: str) -> list[str]:
    """The logical content of a PostgreSQL store (its tables' rows and the tables there
    are), for 'changed nothing' checks. Sequences are left out: PostgreSQL never gives
    back a number a rolled-back insert drew."""
    import psycopg

    out: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        ).fetchall()
        out.extend(f"table {t}" for (t,) in tables)
        present = {t for (t,) in tables}
        for table in DUMPED_TABLES:
            if table in present:
                rows = conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # type: ignore[arg-type]
                out.extend(f"{table} {row!r}" for row in rows)
    return out


def pg_integrity(url: str) -> str:
    """PostgreSQL's counterpart of PRAGMA integrity_check for a store: "ok" when every
    task's projection row is what a replay of its triples gives, else what differs."""
    import psycopg

    from minna_tasks.engines.task_schema import COLUMNS
    from minna_tasks.store.rows import replayed_row

    problems: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        current = {
            row[0]: tuple(row)
            for row in conn.execute(f"SELECT {', '.join(COLUMNS)} FROM task_current")  # type: ignore[arg-type]
        }
        entities = dict(
            conn.execute("SELECT name, created_at FROM entities WHERE entity_type = 'task'")
        )
        facts: dict[str, list[dict[str, object]]] = {}
        for entity, attribute, value, source, created_at in conn.execute(
            "SELECT entity, attribute, value, source, created_at FROM memories ORDER BY id"
        ):
            facts.setdefault(entity, []).append(
                {"attribute": attribute, "value": value, "source": source, "created_at": created_at}
            )
    if set(current) != set(entities):
        problems.append(f"projection rows {sorted(set(current) ^ set(entities))[:5]} unmatched")
    for task_id, created_at in entities.items():
        expected = replayed_row(task_id, created_at, facts.get(task_id, []))
        if current.get(task_id) != expected:
            problems.append(f"{task_id}: {current.get(task_id)} != {expected}")
    return "ok" if not problems else "; ".join(problems[:5])
