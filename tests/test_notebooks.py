"""Every notebook runs top to bottom with nbclient against a freshly built demo file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from minna_tasks import TaskStore
from tests.test_views import build_demo

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
WHO_RUNS = "import sys; print(sys.executable)"


@pytest.fixture
def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `python3` kernelspec that runs this very interpreter (the venv's), found first.

    JUPYTER_PATH comes before the user's and the system's kernel folders, so a
    stray `python3` kernel elsewhere on the machine cannot take over.
    """
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (minna-tasks tests)",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    return tmp_path


def run(nb: nbformat.NotebookNode, cwd: Path) -> nbformat.NotebookNode:
    nb.cells.append(nbformat.v4.new_code_cell(WHO_RUNS))
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert printed.strip() == sys.executable  # the kernel is the venv's python
    return nb


def test_there_are_notebooks() -> None:
    assert [p.name for p in NOTEBOOKS] == ["explore.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == []
            assert cell.execution_count is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
@pytest.mark.parametrize("tasks", [6, 0], ids=["demo", "new-file"])
def test_notebook_runs_and_draws(
    path: Path, tasks: int, kernel_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = kernel_env / "elsewhere" / "demo.db"
    if tasks:
        build_demo(db).close()
    else:
        TaskStore(db).close()  # what `minna-tasks init` leaves: views, no tasks
    monkeypatch.setenv("MINNA_DB", str(db))
    before = db.read_bytes()
    nb = run(nbformat.read(path, as_version=4), cwd=kernel_env)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    assert "Warning" not in stderr  # pandas / matplotlib deprecations show up here
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # status, timeline, time per state, attempts
    text = "".join(o.get("text", "") for o in outputs)
    assert f"reading {db}" in text
    assert f"{tasks} tasks" in text
    assert db.read_bytes() == before  # read-only


def test_explore_finds_the_default_path(kernel_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without MINNA_DB the notebook reads .spine/minna.db in its folder or a parent
    (Jupyter runs it in notebooks/); a missing file is a clear error, not a new database."""
    monkeypatch.delenv("MINNA_DB", raising=False)
    setup = next(
        c for c in nbformat.read(NOTEBOOKS[0], as_version=4).cells if c.cell_type == "code"
    )
    nb = nbformat.v4.new_notebook(cells=[setup])
    project = kernel_env / "project"
    (project / "notebooks").mkdir(parents=True)
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(project / "notebooks")}},
    )
    with client.setup_kernel():
        with pytest.raises(CellExecutionError, match="no database at .*minna-tasks demo"):
            client.execute_cell(setup, 0)
        assert list(project.rglob("*.db")) == []
        build_demo(project / ".spine" / "minna.db").close()
        client.execute_cell(setup, 0)
        assert setup.outputs[0]["text"] == f"reading {project / '.spine' / 'minna.db'}\n"
        # A relative MINNA_DB (as `minna-tasks demo` prints it) is found the same way.
        (project / ".spine" / "minna.db").rename(project / "other.db")
        client.kc.execute("import os; os.environ['MINNA_DB'] = 'other.db'")
        client.execute_cell(setup, 0)
        assert setup.outputs[0]["text"] == f"reading {project / 'other.db'}\n"
