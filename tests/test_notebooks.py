"""Every notebook runs top to bottom with nbclient against a freshly built demo file."""

from __future__ import annotations

import ast
import json
import os
import subprocess
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


def test_tries_are_counted_as_minna_task_attempt_counts_them(
    kernel_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = kernel_env / "demo.db"
    build_demo(db).close()
    monkeypatch.setenv("MINNA_DB", str(db))
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    nb.cells.append(
        nbformat.v4.new_code_cell('print(dict(zip(tasks["title"], tasks["tries"].astype(int))))')
    )
    nb = run(nb, cwd=kernel_env)
    printed = "".join(o.get("text", "") for o in nb.cells[-2].outputs)
    tries = ast.literal_eval(printed)  # the dict the cell above printed
    assert tries == {
        "Fetch the report": 1,  # completed on the first try: MINNA_TASK_ATTEMPT was 1
        "Summarise it": 1,
        "Flaky check": 2,  # failed verification once
        "Doomed": 2,  # two failed tries, max_attempts 2
        "Held by a dead worker": 1,  # on its first try (its worker died)
        "Waiting in the queue": 0,
    }


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


def test_the_readme_command_leaves_an_executed_notebook_with_its_plots(
    kernel_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`jupyter execute ... --output` as the README and the demo print it: the plots are
    saved where the user can open them (a bare `jupyter execute` saves nothing)."""
    readme = (Path(__file__).parent.parent / "README.md").read_text("utf-8")
    command = "jupyter execute notebooks/explore.ipynb --output ../.spine/explore"
    assert command in readme
    project = kernel_env / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / "notebooks" / "explore.ipynb").write_bytes(NOTEBOOKS[0].read_bytes())
    build_demo(project / ".spine" / "minna.db").close()
    monkeypatch.delenv("MINNA_DB", raising=False)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("jupyter")), *command.split()[1:]],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    executed = nbformat.read(project / ".spine" / "explore.ipynb", as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert len([o for o in outputs if "image/png" in o.get("data", {})]) >= 4
    assert nbformat.read(project / "notebooks" / "explore.ipynb", as_version=4) == nbformat.read(
        NOTEBOOKS[0], as_version=4
    )  # the notebook itself stays without outputs


def test_the_demos_notebook_hint_runs_as_printed(
    kernel_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`minna-tasks demo` prints a notebook command that runs from the demo's folder, with
    no virtualenv on PATH, and leaves the executed notebook beside the database."""
    folder = kernel_env / "somewhere"
    folder.mkdir()
    monkeypatch.delenv("MINNA_DB", raising=False)
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    demo = subprocess.run(
        [str(Path(sys.executable).with_name("minna-tasks")), "demo"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert demo.returncode == 0, demo.stderr
    hint = next(line.strip() for line in demo.stdout.splitlines() if " execute " in line)
    done = subprocess.run(
        hint, shell=True, cwd=folder, capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr
    executed = nbformat.read(folder / ".spine" / "explore.ipynb", as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert len([o for o in outputs if "image/png" in o.get("data", {})]) >= 4
