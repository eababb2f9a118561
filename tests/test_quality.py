"""The code stays linted, formatted and strictly typed (ruff and mypy, configured in pyproject),
and a regular (non-editable) install carries every package and subpackage."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy"],  # minna_tasks and minna_tasks_cli, strict (pyproject)
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_quality_gate(command: list[str]) -> None:
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _sources() -> set[str]:
    """Every module and data file the two packages hold, as paths inside a wheel."""
    found = {p.relative_to(ROOT).as_posix() for p in (ROOT / "minna_tasks").rglob("*")}
    found |= {p.relative_to(ROOT / "cli").as_posix() for p in (ROOT / "cli").rglob("*")}
    return {p for p in found if p.endswith((".py", ".json", "py.typed"))}


def test_a_regular_install_carries_every_subpackage(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("minna_tasks-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert _sources() - names == set()
    assert not any(n.startswith(("cli/", "tests/", "benchmarks/")) for n in names)
