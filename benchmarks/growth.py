"""Section 5: the cycle and a current-status read as the store grows (1 k, 100 k, 1 M triples).

Each level is a file of finished, running and waiting tasks with realistic
histories (written in big transactions through `TaskStore.restore`, the bulk
path JSON import uses, so the triggers keep the projection and the full-text
index as they would), plus the tasks the rounds will cycle. The level file is
checkpointed once and copied fresh for every round, so each round starts from
the same number of stored triples (flushed to disk, so no round pays for the
copy). Each round ends with a WAL checkpoint inside the timed part, for the
store and the bare baseline alike: a round of 100 cycles is shorter than the
1000-page autocheckpoint interval, and a cycle's full cost includes writing its
pages into the database file.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from minna_tasks import TaskStore

from . import bare
from ._util import Results, Scratch, Sizes, checkpoint, copy_db, finish_checkpoint

CHUNK = 10_000


def _stamp(base: datetime, seconds: float) -> str:
    return (base + timedelta(seconds=seconds)).isoformat(timespec="microseconds")


def history(i: int, base: datetime) -> list[dict[str, Any]]:
    """The triples of task i: waiting (7), running (10) or finished (15), by i mod 3."""
    t0 = _stamp(base, i * 0.001)
    facts: list[dict[str, Any]] = [
        {"attribute": "title", "value": f"task {i}"},
        {"attribute": "description", "value": f"benchmark task number {i}"},
        {"attribute": "priority", "value": 0},
        {"attribute": "attempts", "value": 0},
        {"attribute": "max_attempts", "value": 3},
        {"attribute": "payload", "value": f'{{"n": {i}}}'},
        {"attribute": "status", "value": "pending", "context": "created"},
    ]
    for f in facts:
        f.update(source="bench", created_at=t0)
    kind = i % 3
    if kind:
        t1 = _stamp(base, i * 0.001 + 1)
        lease = _stamp(datetime.now(UTC), 86400.0) if kind == 1 else _stamp(base, 301)
        facts += [
            {"attribute": "owner", "value": "w1", "source": "w1", "created_at": t1},
            {"attribute": "lease_expires_at", "value": lease, "source": "w1", "created_at": t1},
            {
                "attribute": "status",
                "value": "in_progress",
                "source": "w1",
                "context": "claimed",
                "created_at": t1,
            },
        ]
    if kind == 2:
        t2, t3 = _stamp(base, i * 0.001 + 2), _stamp(base, i * 0.001 + 3)
        facts += [
            {"attribute": "result", "value": '{"ok": true}', "source": "w1", "created_at": t2},
            {
                "attribute": "status",
                "value": "review",
                "source": "w1",
                "context": "executed",
                "created_at": t2,
            },
            {"attribute": "owner", "value": None, "source": "w1", "created_at": t3},
            {"attribute": "lease_expires_at", "value": None, "source": "w1", "created_at": t3},
            {
                "attribute": "status",
                "value": "completed",
                "source": "w1",
                "context": "verified",
                "created_at": t3,
            },
        ]
    return facts


def triples_per_task() -> float:
    return (7 + 10 + 15) / 3


def records(n: int, prefix: str = "h-") -> Iterator[dict[str, Any]]:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        yield {
            "id": f"{prefix}{i}",
            "created_at": _stamp(base, i * 0.001),
            "facts": history(i, base),
        }


def build(path: Path, tasks: int) -> float:
    """Write `tasks` tasks with history in chunks of one transaction each; returns seconds."""
    start = time.perf_counter()
    with TaskStore(path) as store:
        chunk: list[dict[str, Any]] = []
        for record in records(tasks):
            chunk.append(record)
            if len(chunk) == CHUNK:
                store.restore(chunk)
                chunk = []
        if chunk:
            store.restore(chunk)
    return time.perf_counter() - start


def count_triples(store: TaskStore) -> int:
    return int(store.memory.connection.execute("SELECT count(*) FROM memories").fetchone()[0])


def run_growth(res: Results, sizes: Sizes, scratch: Scratch) -> dict[int, Path]:
    """Measure every level; returns the level files (the largest serves the read section)."""
    b = sizes.growth_cycles
    files: dict[int, Path] = {}
    first = sizes.growth_levels[0]
    cycles, reads = f"{b} cycles/round", f"{sizes.growth_reads} random reads/round"
    # (key, label, unit, size, note): each figure at every level, against its 1k value.
    figures = [
        ("growth_cycle", "TaskStore cycle at {tag} triples", "ops/s", cycles, ""),
        (
            "growth_read",
            "current status read, memory.recall(entity, 'status', limit=1), at {tag}",
            "us",
            reads,
            "",
        ),
        ("growth_get", "TaskStore.get(id) at {tag}", "us", reads, ""),
        ("growth_bare_read", "bare SQL status read (index seek) at {tag}", "us", reads, ""),
        (
            "growth_bare_cycle",
            "bare-SQL cycle on a bare EAV file of {tag} triples",
            "ops/s",
            cycles,
            "the same disk and WAL checkpoints without minna-tasks",
        ),
    ]
    for level in sizes.growth_levels:
        tag = _tag(level)
        for key, label, unit, size, note in figures:
            res.figure(
                f"{key}_{tag}",
                "5 growth",
                label.format(tag=tag),
                unit,
                size,
                baseline=None if level == first else f"{key}_{_tag(first)}",
                note=note,
            )
        # The largest level is also the read section's file: at least `big_tasks` tasks.
        least = sizes.big_tasks if level == sizes.growth_levels[-1] else 0
        files[level] = _level_file(res, scratch, level, b, least)
        bare_file = _bare_level_file(res, scratch, tag, b)
        for _ in range(sizes.rounds):
            _round(res, scratch, files[level], tag, b, sizes.growth_reads)
            _bare_round(res, scratch, bare_file, tag, b)
    return files


def _tag(level: int) -> str:
    if level >= 1_000_000:
        return f"{level // 1_000_000}M"
    return f"{level // 1000}k"


def _level_file(res: Results, scratch: Scratch, level: int, b: int, least: int) -> Path:
    path = scratch.path(f"growth-{_tag(level)}")
    filler = max(0, round((level - 7 * b) / triples_per_task()), least - b)
    seconds = build(path, filler)
    with TaskStore(path) as store:
        # The tasks the rounds cycle: newest, but first in claim order (priority 1).
        store.add_many(
            [{"title": f"cycled {i}", "priority": 1, "payload": {"n": i}} for i in range(b)],
            actor="bench",
        )
        triples = count_triples(store)
        tasks = len(store.list())
    checkpoint(path)
    res.extra.setdefault("growth_levels", {})[_tag(level)] = {
        "triples": triples,
        "tasks": tasks,
        "build_seconds": round(seconds, 2),
        "file_mb": round(path.stat().st_size / 2**20, 1),
    }
    return path


def _bare_level_file(res: Results, scratch: Scratch, tag: str, b: int) -> Path:
    """A bare EAV file with as many triples as the level's store file (7 per task)."""
    triples = res.extra["growth_levels"][tag]["triples"]
    path = scratch.path(f"bare-growth-{tag}")
    bare.create(path, max(b, triples // 7)).close()
    checkpoint(path)
    return path


def _bare_round(res: Results, scratch: Scratch, level_file: Path, tag: str, b: int) -> None:
    path = scratch.path(f"bare-growth-{tag}-round")
    copy_db(level_file, path)
    conn = bare.connect(path)
    try:
        start = time.perf_counter()
        for i in range(b):
            bare.cycle(conn, f"t-{i}")
        finish_checkpoint(conn)
        res.add(f"growth_bare_cycle_{tag}", b / (time.perf_counter() - start))
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)


def _round(res: Results, scratch: Scratch, level_file: Path, tag: str, b: int, reads: int) -> None:
    path = scratch.path(f"growth-{tag}-round")
    copy_db(level_file, path)
    try:
        with TaskStore(path) as store:
            ids = [row[0] for row in store.memory.connection.execute("SELECT id FROM task_current")]
            sample = random.Random(7).choices(ids, k=reads)
            start = time.perf_counter()
            for _ in range(b):
                task = store.claim("bench")
                assert task is not None
                assert task.priority == 1
                store.transition(
                    task.id, "review", expected="in_progress", actor="bench", result={"ok": True}
                )
                store.transition(task.id, "completed", expected="review", actor="bench")
            finish_checkpoint(store.memory.connection)
            res.add(f"growth_cycle_{tag}", b / (time.perf_counter() - start))
            memory = store.memory
            start = time.perf_counter()
            for task_id in sample:
                memory.recall(entity=task_id, attribute="status", limit=1)
            res.add(f"growth_read_{tag}", (time.perf_counter() - start) / reads * 1e6)
            start = time.perf_counter()
            for task_id in sample:
                store.get(task_id)
            res.add(f"growth_get_{tag}", (time.perf_counter() - start) / reads * 1e6)
            conn = memory.connection
            start = time.perf_counter()
            for task_id in sample:
                bare.current_status(conn, task_id)
            res.add(f"growth_bare_read_{tag}", (time.perf_counter() - start) / reads * 1e6)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
