"""A password in a postgresql:// URL on the command line never shows in the process title
(`ps`, /proc/PID/cmdline) of `minna-tasks` or of the worker processes `run` starts."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from minna_tasks_cli.proctitle import SETPROCTITLE_REQUIREMENT, masked_argv

from minna_tasks import TaskStore

from .pg import Cluster

SCRIPT = str(Path(sys.executable).with_name("minna-tasks"))
SECRET = "SECRET-pw-4711"
LINUX_PROC = Path("/proc/self/cmdline").exists()
needs_proc = pytest.mark.skipif(not LINUX_PROC, reason="reads /proc/PID/cmdline (Linux)")
_roles = itertools.count(1)
SINCE = "2000-01-01T00:00:00Z"  # a watch prints every change from the first

# A sitecustomize that makes `import setproctitle` fail, as where it is not installed.
BLOCK_SETPROCTITLE = """
import sys

class _NoSetproctitle:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "setproctitle":
            raise ImportError("setproctitle is blocked by the test's sitecustomize")
        return None

sys.meta_path.insert(0, _NoSetproctitle())
"""


# -- which arguments are masked ------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["minna-tasks", "--db", f"postgresql://ann:{SECRET}@db.example/tasks", "watch"],
            ["minna-tasks", "--db", "postgresql://ann:****@db.example/tasks", "watch"],
        ),
        (
            ["minna-tasks", f"--db=postgres://ann:{SECRET}@db.example:5433/tasks", "list"],
            ["minna-tasks", "--db=postgres://ann:****@db.example:5433/tasks", "list"],
        ),
        (
            ["x", f"POSTGRESQL://ann@h/db?sslmode=require&password={SECRET}"],
            ["x", "POSTGRESQL://ann@h/db?sslmode=require&password=****"],
        ),
        (  # a URL inside a CMD string for `run`, two in one argument
            ["run", f"psql postgresql://a:{SECRET}@h/one && psql postgresql://b:{SECRET}@h/two"],
            ["run", "psql postgresql://a:****@h/one && psql postgresql://b:****@h/two"],
        ),
        (  # a password with a blank (quoted on the shell) is masked whole
            ["--db", "postgresql://ann:two words@h/db"],
            ["--db", "postgresql://ann:****@h/db"],
        ),
        (  # libpq takes a raw # or ? in a password
            ["--db", f"postgresql://ann:ab#{SECRET}@h/db", f"--db=postgresql://ann:a?{SECRET}@h"],
            ["--db", "postgresql://ann:****@h/db", "--db=postgresql://ann:****@h"],
        ),
    ],
)
def test_passwords_are_masked_wherever_a_url_is(argv: list[str], expected: list[str]) -> None:
    assert masked_argv(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["minna-tasks", "--db", ".spine/minna.db", "list"],
        ["minna-tasks", "--db", "postgresql://ann@/tasks?host=/run/postgresql", "watch"],
        ["minna-tasks", "--db=postgresql:///tasks?service=queue&sslmode=verify-full", "list"],
        ["minna-tasks", "add", "read https://user:pw@example.com/x"],  # not a store URL
    ],
)
def test_an_argv_without_a_password_needs_no_new_title(argv: list[str]) -> None:
    assert masked_argv(argv) is None


@given(
    password=st.text(min_size=1, max_size=30).map(lambda t: SECRET + t),
    user=st.text(alphabet="abcdefghij_", min_size=1, max_size=8),
    in_query=st.booleans(),
    form=st.sampled_from(["--db", "--db="]),
)
def test_no_password_survives_the_masking(
    password: str, user: str, in_query: bool, form: str
) -> None:
    encoded = quote(password, safe="")
    url = (
        f"postgresql://{user}@h:5432/db?password={encoded}"
        if in_query
        else f"postgresql://{user}:{encoded}@h:5432/db?sslmode=require"
    )
    argv = ["minna-tasks", *([form, url] if form == "--db" else [form + url]), "watch"]
    masked = masked_argv(argv)
    assert masked is not None
    assert "SECRET" not in " ".join(masked)
    assert "****" in " ".join(masked) or "%2A%2A%2A%2A" in " ".join(masked)


# -- real processes on the throwaway cluster ----------------------------------------


@pytest.fixture
def secret_url(pg_cluster: Cluster) -> Iterator[str]:
    """A migrated store reached over TCP as a role whose password is SECRET."""
    dbname = pg_cluster.create_database()
    role = f"proctitle{os.getpid()}_{next(_roles)}"
    pg_cluster.admin(f"CREATE ROLE {role} LOGIN PASSWORD '{SECRET}'")
    pg_cluster.admin(f'ALTER DATABASE "{dbname}" OWNER TO {role}')
    pg_cluster.admin(f"GRANT CREATE ON SCHEMA public TO {role}", dbname=dbname)
    try:
        url = pg_cluster.tcp_url(dbname, role, SECRET)
        TaskStore(url).close()  # created and migrated
        yield url
    finally:
        pg_cluster.drop_database(dbname)
        pg_cluster.admin(f"DROP ROLE {role}")


def cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (from /proc, as `ps` finds them)."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended meanwhile
            # pid (comm) state ppid ...: comm may hold blanks, so split after its ')'.
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def workers_of(pid: int, count: int) -> list[int] | None:
    """The `count` worker processes `run` started, once they all run."""
    workers = [k for k in children(pid) if b"minna-tasks" in cmdline(k)]
    return workers if len(workers) == count else None


def poll(what: str, check: Callable[[], object], deadline: float = 60) -> object:
    """`check()`'s first truthy value, polled until a generous deadline."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            value = check()
        except OSError:
            value = None  # a process not there yet or gone meanwhile: try again
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


@needs_proc
@pytest.mark.postgres
def test_run_and_its_workers_show_the_url_masked(secret_url: str, tmp_path: Path) -> None:
    with TaskStore(secret_url) as store:
        store.add("in hand while we look")
    seen = tmp_path / "cmd.env"
    # CMD writes what it sees of the store, then waits to be stopped with the task in hand.
    cmd = f'printf %s "$MINNA_DB" > {seen}.tmp && mv {seen}.tmp {seen} && sleep 60'
    proc = subprocess.Popen(
        [SCRIPT, "--db", secret_url, "run", "--workers", "2", "--follow", cmd],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        masked = masked_argv([secret_url])
        assert masked is not None
        poll("the masked title", lambda: masked[0].encode() in cmdline(proc.pid))
        workers = poll("the two worker processes", lambda: workers_of(proc.pid, 2))
        assert isinstance(workers, list)
        poll("CMD running the task", seen.exists)
        for pid in [proc.pid, *workers]:
            title = cmdline(pid)
            assert SECRET.encode() not in title, (pid, title)
            assert b"--db postgresql://" in title
            assert b":****@127.0.0.1:" in title
            assert b" run --workers 2 --follow " in title
            # pgrep/pkill/top still know the process by its name
            assert Path(f"/proc/{pid}/comm").read_text().strip() == "minna-tasks"
        # CMD gets the store's URL (password and all) in its environment, not its title.
        assert seen.read_text() == secret_url
    finally:
        out, err = stop(proc)
    assert proc.returncode == 0, err
    assert SECRET not in out + err


@needs_proc
@pytest.mark.postgres
def test_watch_with_db_equals_url_is_masked(secret_url: str) -> None:
    with TaskStore(secret_url) as store:
        task = store.add("seen by the watch")
    proc = subprocess.Popen(
        [SCRIPT, f"--db={secret_url}", "watch", "--since", SINCE],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        poll(
            "the masked title",
            lambda: b"--db=postgresql://" in cmdline(proc.pid) and (b":****@" in cmdline(proc.pid)),
        )
        assert SECRET.encode() not in cmdline(proc.pid)
        assert proc.stdout is not None
        assert (
            f"{task.id}  pending  (created)" in proc.stdout.readline()
        )  # it works on the real URL
        assert SECRET.encode() not in cmdline(proc.pid)
    finally:
        out, err = stop(proc)
    assert SECRET not in out + err


@needs_proc
def test_the_title_is_left_alone_without_a_password(tmp_path: Path) -> None:
    db = tmp_path / "minna.db"
    with TaskStore(db) as store:
        task = store.add("seen by the watch")
    argv = [SCRIPT, "--db", str(db), "watch", "--since", SINCE]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert (
            f"{task.id}  pending  (created)" in proc.stdout.readline()
        )  # past its start: look now
        assert cmdline(proc.pid).endswith(b"\0".join(s.encode() for s in argv[1:]) + b"\0")
    finally:
        stop(proc)


# -- where setproctitle is missing --------------------------------------------------


def _without_setproctitle(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_SETPROCTITLE)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(site) + (os.pathsep + path if path else "")}


@pytest.mark.postgres
def test_without_setproctitle_it_says_so_once_and_works(secret_url: str, tmp_path: Path) -> None:
    env = _without_setproctitle(tmp_path)
    blocked = subprocess.run(
        [sys.executable, "-c", "import setproctitle"], env=env, capture_output=True, text=True
    )
    assert "blocked by the test" in blocked.stderr  # the sitecustomize is in force
    done = subprocess.run(
        [SCRIPT, "--db", secret_url, "stats", "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"pending"' in done.stdout  # the command itself ran
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1, done.stderr
    warning = warnings[0]
    assert warning.startswith("minna-tasks: warning: the password in the PostgreSQL URL is ")
    assert "visible to every user of this host in the process list" in warning
    assert "setproctitle" in warning
    assert "PGPASSWORD" in warning
    assert "~/.pgpass" in warning
    assert "MINNA_DB" in warning
    assert SECRET not in done.stdout + done.stderr


def test_setproctitle_is_in_the_postgres_extra() -> None:
    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert SETPROCTITLE_REQUIREMENT in pyproject["project"]["optional-dependencies"]["postgres"]


def test_without_setproctitle_and_no_password_nothing_is_said(tmp_path: Path) -> None:
    env = _without_setproctitle(tmp_path)
    db = tmp_path / "minna.db"
    TaskStore(db).close()
    for location in (str(db), "postgresql://ann@/tasks?host=/nonexistent-socket-dir"):
        done = subprocess.run(
            [SCRIPT, "--db", location, "stats"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert "warning" not in done.stderr, done.stderr
