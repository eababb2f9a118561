"""The README's "Guarantees" section names real tests: every `file.py::test_name` exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_the_guarantees_name_exists() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Guarantees\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(test_\w+\.py)::(test_\w+)", section))
    assert len(named) >= 20
    missing = []
    for file, name in sorted(named):
        tree = ast.parse((ROOT / "tests" / file).read_text(encoding="utf-8"))
        functions = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        if name not in functions:
            missing.append(f"{file}::{name}")
    assert missing == []
