"""`minna-tasks memory ...`: the whole Minna memory on the command line, through
CliRunner, plus the real console script once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from minna_tasks_cli.main import cli

from minna_tasks import TaskStore

from .conftest import unchanged

SCRIPT = Path(sys.executable).with_name("minna-tasks")


def invoke(db: Path, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, ["--db", str(db), *args])
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def as_json(db: Path, *args: str) -> Any:
    return json.loads(invoke(db, *args, "--json").stdout)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "m.db"


def test_entities_profiles_and_relations(db: Path) -> None:
    assert invoke(db, "memory", "entity", "add", "Jack", "person", "--alias", "jj").stdout == "1\n"
    assert invoke(db, "memory", "entity", "add", "adr:spine:auth", "concept").stdout == "2\n"
    invoke(db, "memory", "store", "Jack", "timezone", "UTC-5")
    invoke(db, "memory", "store", "Jack", "timezone", "UTC+1")
    invoke(db, "memory", "relate", "Jack", "adr:spine:auth", "decided")
    entity = as_json(db, "memory", "entity", "get", "jj")
    assert (entity["id"], entity["name"], entity["aliases"]) == (1, "Jack", ["jj"])
    shown = invoke(db, "memory", "entity", "get", "Jack").stdout.splitlines()
    assert shown[1:4] == ["name:        Jack", "entity_type: person", "aliases:     jj"]
    found = as_json(db, "memory", "entity", "find", "J", "--type", "person")
    assert [e["name"] for e in found] == ["Jack"]
    assert [e["name"] for e in as_json(db, "memory", "entity", "find")] == [
        "Jack",
        "adr:spine:auth",
    ]
    profile = as_json(db, "memory", "who", "jj")
    assert (profile["name"], profile["facts"]) == ("Jack", {"timezone": "UTC+1"})
    assert [m["value"] for m in profile["memories"]] == ["UTC+1", "UTC-5"]
    who = invoke(db, "memory", "who", "Jack").stdout.splitlines()
    assert who[:3] == ["name:        Jack", "entity_type: person", "aliases:     jj"]
    assert "timezone   UTC+1" in who
    assert "out        decided   adr:spine:auth" in who
    related = as_json(db, "memory", "related", "adr:spine:auth")
    assert [(r["entity"], r["direction"]) for r in related] == [("Jack", "in")]
    assert as_json(db, "memory", "related", "Jack", "--type", "other") == []


def test_preferences_sessions_stats_conflicts_and_verify(db: Path) -> None:
    assert invoke(db, "memory", "pref", "set", "code_style", "line_length", "100").stdout == (
        "100\n"
    )
    invoke(db, "memory", "pref", "set", "writing", "line_length", "72")
    assert invoke(db, "memory", "pref", "get", "code_style", "line_length").stdout == "100\n"
    prefs = as_json(db, "memory", "pref", "list", "--category", "writing")
    assert [(p["key"], p["value"]) for p in prefs] == [("line_length", "72")]
    assert len(as_json(db, "memory", "pref", "list")) == 2
    assert (
        invoke(db, "memory", "session", "add", "s-1", "kick-off", "--topic", "setup").stdout
        == "1\n"
    )
    invoke(
        db,
        "memory",
        "session",
        "add",
        "s-2",
        "wired minna",
        "--topic",
        "minna",
        "--topic",
        "docs",
        "--entity-id",
        "7",
        "--entity-id",
        "spine",
    )
    sessions = as_json(db, "memory", "session", "list", "--limit", "5")
    assert [(s["session_id"], s["topics"], s["entity_ids"]) for s in sessions] == [
        ("s-2", ["minna", "docs"], [7, "spine"]),
        ("s-1", ["setup"], []),
    ]
    first = int(invoke(db, "memory", "store", "Jack", "timezone", "UTC-5").stdout)
    invoke(db, "memory", "store", "Jack", "timezone", "UTC+1")
    conflicts = as_json(db, "memory", "conflicts", "--entity", "Jack")
    assert conflicts == {
        "conflicts": [
            {
                "entity": "Jack",
                "attribute": "timezone",
                "values": ["UTC-5", "UTC+1"],
                "memory_ids": [first, first + 1],
            }
        ]
    }
    assert "Jack    timezone   " in invoke(db, "memory", "conflicts").stdout
    verified = invoke(db, "memory", "verify", str(first)).stdout.strip()
    recalled = as_json(db, "memory", "recall", "--entity", "Jack", "--min-confidence", "0.5")
    assert recalled[1]["verified_at"] == verified
    stats = as_json(db, "memory", "stats")
    assert (stats["memories"], stats["sessions"], stats["preferences"]) == (2, 2, 2)
    assert invoke(db, "memory", "stats").stdout.splitlines()[0] == "memories:    2"


def test_recall_leaves_out_decayed_memories(db: Path) -> None:
    invoke(db, "memory", "store", "old", "fact", "x")
    with TaskStore(db) as store:
        store.memory.connection.execute(
            "UPDATE memories SET created_at = '2020-01-01T00:00:00.000000+00:00'"
        )
    assert as_json(db, "memory", "recall", "--min-confidence", "0.5") == []
    (kept,) = as_json(db, "memory", "recall", "--half-life", "100000")
    assert 0.9 < kept["effective_confidence"] < 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["entity", "add", "job", "task"],
            "Error: unknown entity type 'task' (tasks are made by the task tools); "
            "use one of: person, project, concept, topic, preference\n",
        ),
        (
            ["entity", "add", "x", "robot"],
            "Error: unknown entity type 'robot'; "
            "use one of: person, project, concept, topic, preference\n",
        ),
        (["entity", "get", "nobody"], "Error: no entity is named 'nobody'\n"),
        (["who", "nobody"], "Error: nothing is known about 'nobody'\n"),
        (["pref", "get", "a", "b"], "Error: no preference 'b' in category 'a'\n"),
        (["verify", "99"], "Error: memory 99 not found\n"),
        (
            ["store", "t-1", "status", "completed"],
            "Error: t-1 is a task: its status changes only through the task commands "
            "(add, move, claim, heartbeat, release, retry)\n",
        ),
    ],
)
def test_refusals_are_one_line_and_change_nothing(db: Path, args: list[str], message: str) -> None:
    invoke(db, "add", "a task")
    with unchanged(db):
        result = invoke(db, "memory", *args, code=1)
    assert result.stderr == message


def test_console_script_memory_commands(tmp_path: Path) -> None:
    env = {**os.environ, "MINNA_DB": str(tmp_path / "sub.db")}

    def script(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SCRIPT), "memory", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert script("entity", "add", "agent:coder-1", "concept").stdout == "1\n"
    assert script("store", "agent:coder-1", "status", "active").returncode == 0
    profile = json.loads(script("who", "agent:coder-1", "--json").stdout)
    assert (profile["entity_type"], profile["facts"]) == ("concept", {"status": "active"})
    bad = script("entity", "add", "x", "agent")
    assert (bad.returncode, bad.stdout) == (1, "")
    assert bad.stderr.startswith("Error: unknown entity type 'agent'")


def test_commands_that_print_a_value_also_print_json(db: Path) -> None:
    """entity add, pref set|get, session add and verify print what the MCP tools return."""
    assert as_json(db, "memory", "entity", "add", "Jack", "person") == {"entity_id": 1}
    assert invoke(db, "memory", "entity", "add", "Jack", "person", "--alias", "jj").stdout == "1\n"
    pref = {"category": "writing", "key": "tone", "value": "plain"}
    assert as_json(db, "memory", "pref", "set", "writing", "tone", "plain") == pref
    assert as_json(db, "memory", "pref", "get", "writing", "tone") == pref
    assert invoke(db, "memory", "pref", "get", "writing", "tone").stdout == "plain\n"
    summary = as_json(db, "memory", "session", "add", "s1", "did things", "--entity-id", "Jack")
    assert list(summary) == ["summary_id"]
    assert isinstance(summary["summary_id"], int)
    memory_id = int(invoke(db, "memory", "store", "Jack", "role", "dev").stdout)
    verified = as_json(db, "memory", "verify", str(memory_id))
    assert verified["memory_id"] == memory_id
    assert verified["verified_at"] == TaskStore(db).memory.recall(entity="Jack")[0]["verified_at"]
