"""Shared pieces: sizes, figures with rounds, machine facts, scratch files."""

from __future__ import annotations

import math
import os
import platform
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Sizes:
    """Every size the suite uses; `--quick` swaps in tiny ones."""

    rounds: int = 5
    commits_normal: int = 5000
    commits_full: int = 300
    backlog: int = 10_000
    cycles: int = 1000
    proc_tasks: int = 2000
    proc_rounds: int = 3
    growth_levels: tuple[int, ...] = (1_000, 100_000, 1_000_000)
    growth_cycles: int = 100
    growth_reads: int = 2000
    big_tasks: int = 100_000
    add_many: int = 100_000
    bulk_rounds: int = 3
    rss_rounds: int = 2
    rss_tasks: tuple[int, int] = (2_000, 20_000)
    wait_tasks: int = 200
    wait_rounds: int = 3
    idle_seconds: float = 10.0
    follow_tasks: int = 5000
    follow_rate: float = 100.0
    follow_rounds: int = 1

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            rounds=2,
            commits_normal=200,
            commits_full=20,
            backlog=200,
            cycles=50,
            proc_tasks=60,
            proc_rounds=1,
            growth_levels=(1_000, 5_000, 20_000),
            growth_cycles=30,
            growth_reads=100,
            big_tasks=1_000,
            add_many=1_000,
            bulk_rounds=1,
            rss_rounds=1,
            rss_tasks=(10, 40),
            wait_tasks=20,
            wait_rounds=1,
            idle_seconds=0.5,
            follow_tasks=60,
            follow_rate=200.0,
        )


@dataclass
class Figure:
    """One measured quantity: its samples (one per round) and what it is compared to."""

    key: str
    section: str
    label: str
    unit: str  # "ops/s", "ms", "s" or "MB"
    size: str
    samples: list[float] = field(default_factory=list)
    baseline: str | None = None  # key of the figure this one is compared to
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(median=self.median, min=self.low, max=self.high, rounds=len(self.samples))
        return out


@dataclass
class Target:
    """A target from the issue: a ratio or a figure against a threshold."""

    name: str
    value: float
    threshold: float
    higher_is_better: bool
    detail: str

    @property
    def met(self) -> bool:
        if self.higher_is_better:
            return self.value >= self.threshold
        return self.value < self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


class Results:
    """All figures of one run, in the order measured."""

    def __init__(self) -> None:
        self.figures: dict[str, Figure] = {}
        self.targets: list[Target] = []
        self.extra: dict[str, Any] = {}

    def figure(
        self,
        key: str,
        section: str,
        label: str,
        unit: str,
        size: str,
        baseline: str | None = None,
        note: str = "",
    ) -> Figure:
        if key not in self.figures:
            self.figures[key] = Figure(
                key, section, label, unit, size, baseline=baseline, note=note
            )
        return self.figures[key]

    def add(self, key: str, value: float) -> None:
        self.figures[key].samples.append(value)

    def ratio(self, key: str, baseline: str | None = None) -> float | None:
        """Median of `key` over median of its baseline (same unit)."""
        fig = self.figures.get(key)
        base_key = baseline or (fig.baseline if fig else None)
        base = self.figures.get(base_key) if base_key else None
        if fig is None or base is None or not fig.samples or not base.samples or not base.median:
            return None
        return fig.median / base.median

    def target(
        self, name: str, value: float | None, threshold: float, higher_is_better: bool, detail: str
    ) -> None:
        if value is not None:
            self.targets.append(Target(name, value, threshold, higher_is_better, detail))


def machine(synchronous: str = "NORMAL") -> dict[str, Any]:
    """Facts about the machine and SQLite that a reader needs to weigh the figures."""
    info: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "journal_mode": "WAL",
        "synchronous": synchronous + " (FULL measured separately for the commit limit)",
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }
    try:
        from importlib.metadata import version

        import litequeue  # noqa: F401

        info["litequeue"] = version("litequeue")
    except ImportError:
        info["litequeue"] = None
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class Scratch:
    """A folder of benchmark databases on the same disk as the results, removed at the end."""

    def __init__(self, base: Path | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="minna-bench-", dir=base))
        self._n = 0

    def path(self, name: str) -> Path:
        self._n += 1
        folder = self.root / f"{self._n:03d}-{name}"
        folder.mkdir()
        return folder / "minna.db"

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def copy_db(src: Path, dst: Path) -> None:
    """Copy a checkpointed database file (no WAL) to a fresh place, flushed to disk.

    Without the fsync, the first checkpoint of the measured round would pay for
    writing the whole copy (177 MB at 1 M triples) to disk.
    """
    shutil.copyfile(src, dst)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def finish_checkpoint(conn: sqlite3.Connection) -> None:
    """Copy the round's WAL pages into the database file (part of a write's full cost)."""
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def checkpoint(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


@contextmanager
def timer() -> Iterator[Callable[[], float]]:
    """Yields a function returning the seconds since the block began (frozen at its end)."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; values need not be sorted."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]
