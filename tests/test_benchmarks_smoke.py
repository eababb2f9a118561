"""The benchmark suite keeps working: `python -m benchmarks --quick` end to end, tiny sizes.

No timing is asserted (figures drift on shared machines); the test checks that
every section measured something, that each figure has its rounds and its
baseline ratio, and that the report names the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_run_writes_every_figure_with_its_baseline(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--out",
            str(out),
            "--scratch",
            str(scratch),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())

    machine = doc["machine"]
    assert machine["cores"] >= 1
    assert machine["sqlite"].startswith("3.")
    assert "NORMAL" in machine["synchronous"]

    figures = {f["key"]: f for f in doc["figures"]}
    for key in (
        "commit_normal",
        "commit_full",
        "bare_cycle",
        "store_cycle",
        "store_transition",
        "litequeue_cycle",
        "loop_1",
        "loop_2",
        "loop_4",
        "claim_p99_4",
        "locked_4",
        "growth_cycle_1k",
        "growth_read_20k",
        "view_tasks",
        "list_pending",
        "add_many",
        "export",
        "import",
        "rss_small",
        "rss_large",
        "start_bare",
        "start_list",
        "start_mcp_initialize",
        "start_mcp_discover",
        "start_mcp_discover_ratio",
        "start_run_4",
    ):
        assert key in figures, key
        assert figures[key]["rounds"] >= 1
        assert figures[key]["min"] <= figures[key]["median"] <= figures[key]["max"]
    for key, figure in figures.items():
        if figure["baseline"]:
            assert figure["baseline"] in figures, key
            assert doc["ratios"][key] > 0, key
    assert figures["store_cycle"]["baseline"] == "bare_cycle"
    assert figures["locked_4"]["max"] == 0  # no 'database is locked' reaches the caller

    names = {t["name"] for t in doc["targets"]}
    assert "TaskStore cycle / bare-SQL cycle" in names
    assert all(isinstance(t["met"], bool) for t in doc["targets"])

    # The markdown table is printed, one row per figure.
    assert "| section | figure |" in done.stdout
    assert done.stdout.count("\n| ") >= len(figures)
    assert not list(scratch.iterdir())  # scratch databases are removed
