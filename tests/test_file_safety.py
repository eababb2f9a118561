"""File safety: modes follow the umask, exports never replace or write through a symlink, the
MCP server talks over stdio only (it opens no network socket).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from minna_tasks import MinnaTasksError, TaskStore, jsonio

from .conftest import unchanged
from .reliability_workers import ROOT

CLI = str(Path(sys.executable).with_name("minna-tasks"))

CREATE = textwrap.dedent(
    """
    import os, subprocess, sys
    os.umask(int(sys.argv[1], 8))
    from minna_tasks import MinnaTasksError, TaskStore, jsonio
    folder = sys.argv[2]
    with TaskStore(os.path.join(folder, ".spine", "minna.db")) as store:
        store.add("one")
        # Listed while the connection is open: the WAL and shared-memory files exist.
        for name in sorted(os.listdir(os.path.join(folder, ".spine"))):
            path = os.path.join(folder, ".spine", name)
            print(name, oct(os.stat(path).st_mode & 0o777))
        jsonio.export_tasks(store, os.path.join(folder, "lib.json"))
    done = subprocess.run(
        [sys.argv[3], "--db", store.path, "export", os.path.join(folder, "cli.json")],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    """
)


def modes(folder: Path, umask: int) -> dict[str, int]:
    """Create a store, its WAL and two exports under `umask` in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", CREATE, oct(umask), str(folder), CLI],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = {
        name: int(mode, 8)
        for name, mode in (line.split() for line in done.stdout.split("\n") if line)
    }
    found[".spine"] = stat.S_IMODE((folder / ".spine").stat().st_mode)
    for export in ("lib.json", "cli.json"):
        found[export] = stat.S_IMODE((folder / export).stat().st_mode)
    return found


@pytest.mark.parametrize("umask", [0o027, 0o022, 0o077])
def test_database_and_exports_are_created_with_the_users_umask(tmp_path: Path, umask: int) -> None:
    found = modes(tmp_path, umask)
    assert {"minna.db", "minna.db-wal", "minna.db-shm"} <= set(found)
    files = 0o666 & ~umask
    expected = {name: files for name in found}
    expected[".spine"] = 0o777 & ~umask
    assert found == expected
    assert not any(mode & stat.S_IWOTH for mode in found.values())


def test_export_refuses_a_symlink_and_leaves_it_as_it_was(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "export.json"
    link.symlink_to(victim)
    dangling = tmp_path / "dangling.json"
    elsewhere = tmp_path / "elsewhere.json"
    dangling.symlink_to(elsewhere)
    db = tmp_path / "t.db"
    with TaskStore(db) as store:
        store.add("one")
        for path in (link, dangling, tmp_path):
            with pytest.raises(MinnaTasksError, match="an export only replaces a regular file"):
                jsonio.export_tasks(store, path)
    assert victim.read_text() == "precious"
    assert not elsewhere.exists()
    assert os.readlink(link) == str(victim)
    assert os.readlink(dangling) == str(elsewhere)
    # The same through the real command line, and /dev/stdout (a symlink) stays one.
    for target in (link, Path("/dev/null"), Path("/dev/stdout")):
        before = os.lstat(target)
        with unchanged(db):
            done = subprocess.run(
                [CLI, "--db", str(db), "export", str(target)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        assert done.returncode == 1
        assert done.stderr.startswith(f"Error: {target} is a ")
        assert done.stderr.count("\n") == 1
        after = os.lstat(target)
        assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert victim.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_export_dash_writes_to_stdout(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with TaskStore(db) as store:
        store.add("one")
    done = subprocess.run(
        [CLI, "--db", str(db), "export", "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tasks"][0]["title"] == "one"
    assert done.stderr == "Exported 1 task(s) to stdout\n"
    assert not (tmp_path / "-").exists()


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in (Path(f"/proc/{pid}/fd")).iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _inet_inodes(pid: int) -> set[str]:
    """Inodes of every TCP/UDP/raw socket in the process's network namespace."""
    inodes = set()
    for table in ("tcp", "tcp6", "udp", "udp6", "raw", "raw6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if path.exists():
            for line in path.read_text().splitlines()[1:]:
                inodes.add(line.split()[9])
    return inodes


def _unix_sockets(pid: int) -> dict[str, tuple[int, str]]:
    """inode -> (flags, path) of every unix socket; flag 0x10000 means listening."""
    out = {}
    for line in Path(f"/proc/{pid}/net/unix").read_text().splitlines()[1:]:
        parts = line.split()
        out[parts[6]] = (int(parts[3], 16), parts[7] if len(parts) > 7 else "")
    return out


def _rpc(proc: subprocess.Popen[str], message: dict[str, object]) -> dict[str, object] | None:
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(json.dumps(message) + "\n")
    proc.stdin.flush()
    if "id" not in message:
        return None
    answer: dict[str, object] = json.loads(proc.stdout.readline())
    return answer


def test_mcp_server_uses_stdio_only_and_opens_no_network_socket(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    TaskStore(db).close()
    proc = subprocess.Popen(
        [CLI, "--db", str(db), "mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        hello = _rpc(
            proc,
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "test", "version": "0"},
                },
            },
        )
        assert hello is not None
        assert "serverInfo" in hello["result"]  # type: ignore[operator]
        _rpc(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        # A lone surrogate escape (how JSON carries text that is not UTF-8): the SDK
        # drops the message or answers with an error; either way the server lives on.
        raw = (
            '{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": '
            '{"name": "add_task", "arguments": {"title": "bad \\ud800"}}}'
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(raw + "\n")
        proc.stdin.flush()
        answers = [
            _rpc(
                proc,
                {
                    "jsonrpc": "2.0",
                    "id": 3,
                    "method": "tools/call",
                    "params": {"name": "add_task", "arguments": {"title": "over stdio"}},
                },
            )
        ]
        while answers[-1] is not None and answers[-1]["id"] != 3:
            answers.append(json.loads(proc.stdout.readline()))
        for answer in answers:
            assert answer is not None
            if answer["id"] == 2:
                assert answer.get("error") or answer["result"]["isError"]  # type: ignore[index]
        added = answers[-1]
        assert added is not None
        assert not added["result"]["isError"]  # type: ignore[index]
        # While it serves: no TCP/UDP socket, and no unix socket anyone could connect to.
        sockets = _socket_inodes(proc.pid)
        assert sockets & _inet_inodes(proc.pid) == set()
        unix = _unix_sockets(proc.pid)
        for inode in sockets:
            flags, path = unix.get(inode, (0, ""))
            assert not flags & 0x10000, f"unix socket {inode} is listening"
            assert path == "", f"unix socket {inode} is bound to {path}"
        assert proc.poll() is None
    finally:
        _, err = proc.communicate(timeout=30)  # closes stdin: the server's cue to exit
    assert proc.returncode == 0, err
    with TaskStore(db) as store:
        assert [t.title for t in store.list()] == ["over stdio"]
