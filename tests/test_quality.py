"""The code stays linted, formatted and strictly typed (ruff and mypy, configured in pyproject)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy"],  # the minna_tasks package, strict (pyproject)
        ["mypy", "--strict", "cli"],
    ],
    ids=["ruff-check", "ruff-format", "mypy-package", "mypy-cli"],
)
def test_quality_gate(command: list[str]) -> None:
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
