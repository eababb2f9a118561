"""The install commands the error messages suggest: they work without a package index
serving minna-tasks (an editable reinstall of this checkout with the extra)."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path

import pytest

from minna_tasks.engines.postgres import database
from minna_tasks.errors import StoreError
from minna_tasks.install_hint import (
    MCP_REQUIREMENT,
    POSTGRES_REQUIREMENT,
    install_hint,
    mcp_install_hint,
    postgres_install_hint,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("extra", ["mcp", "postgres", "notebooks"])
def test_hint_reinstalls_the_checkout_with_the_extra(extra: str) -> None:
    hint = install_hint(extra, "some-package>=1")
    assert hint == f"{sys.executable} -m pip install -e '{ROOT}[{extra}]'"
    assert f"minna-tasks[{extra}]" not in hint  # no index has minna-tasks


def test_each_extra_has_its_own_hint() -> None:
    assert mcp_install_hint().endswith("[mcp]'")
    assert postgres_install_hint().endswith("[postgres]'")


def test_missing_psycopg_names_a_command_that_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what `import psycopg` sees uninstalled
    with pytest.raises(StoreError) as raised:
        database._psycopg()
    assert str(raised.value) == (f"the PostgreSQL backend needs psycopg: {postgres_install_hint()}")
    assert "minna-tasks[postgres]" not in str(raised.value)


def test_outside_a_checkout_the_hint_installs_what_the_extra_pins(tmp_path: Path) -> None:
    """A copy of the module away from any pyproject.toml: as installed from a wheel."""
    copy = tmp_path / "site" / "minna_tasks" / "install_hint.py"
    copy.parent.mkdir(parents=True)
    copy.write_text((ROOT / "minna_tasks" / "install_hint.py").read_text())
    spec = importlib.util.spec_from_file_location("installed_hint", copy)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (
        module.postgres_install_hint() == f"{sys.executable} -m pip install 'psycopg[binary]>=3.2'"
    )
    assert module.mcp_install_hint() == f"{sys.executable} -m pip install 'mcp>=2,<3'"


def test_pins_are_the_extras_of_pyproject() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert extras["mcp"] == [MCP_REQUIREMENT]
    assert POSTGRES_REQUIREMENT in extras["postgres"]  # with setproctitle (test_proctitle)
