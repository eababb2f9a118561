"""`minna-tasks run`: the seed's loop with shell commands as the worker.

Each claimed task runs CMD with the task in its environment; exit 0 means
executed (stdout is the result, as JSON when it parses), then `--verify CMD`
must exit 0 for `completed`. Anything else is a failed attempt, recorded with
the tail of the output as the task's error. N workers are N processes (each
with its own connection, forked). Ctrl-C releases the
tasks in hand, so nothing is lost.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import click

from minna_tasks import Task, TaskStore, defaults, state_machine_loop
from minna_tasks.engines import is_postgres_url
from minna_tasks.loop import default_worker

from .app import USER_ERRORS, App, describe, safe_text

TAIL = 4000
INTERRUPTED = 130
# Workers are forked: they start at once with everything imported, so N workers cost
# little more than one. A forked worker never uses our open connection: it opens its own
# store (the Database also reopens itself in a new process), and a fork child ends with
# os._exit, so the copy is never closed from there either. Where fork is missing, a
# forkserver gives the same start-up once per run.
_FORK = "fork" in multiprocessing.get_all_start_methods()

Command = str | Sequence[str]


class CommandFailed(Exception):
    """CMD (or the verify command) exited non-zero or timed out."""


@dataclass
class RunConfig:
    """Everything a worker process needs (picklable, for worker processes)."""

    db: str
    command: Command
    verify: Command | None = None
    lease: float = defaults.LEASE_SECONDS
    timeout: float | None = None
    max_tasks: int | None = None
    worker: str | None = None
    follow: bool = False


def _tail(text: str) -> str:
    text = text.rstrip()
    return text if len(text) <= TAIL else "..." + text[-TAIL:]


def task_env(task: Task, db: str, worker: str) -> dict[str, str]:
    """The environment CMD sees: ours plus the task."""
    env = dict(os.environ)
    env.update(
        {
            "MINNA_TASK_ID": task.id,
            "MINNA_TASK_TITLE": task.title,
            "MINNA_TASK_PAYLOAD": json.dumps(task.payload, ensure_ascii=False),
            "MINNA_TASK_ATTEMPT": str(task.attempts + 1),
            "MINNA_WORKER": worker,
            "MINNA_DB": db if is_postgres_url(db) else os.path.abspath(db),
        }
    )
    return env


def _kill(proc: subprocess.Popen[str]) -> None:
    """Kill CMD and anything it started (it runs in its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class ShellWorker:
    """execute/verify callables for state_machine_loop that run shell commands."""

    def __init__(self, config: RunConfig, worker: str, stop: threading.Event) -> None:
        self.config, self.worker, self.stop = config, worker, stop
        self.busy = threading.Event()
        self.current: Task | None = None  # the task in hand, to report its release

    def _run(self, command: Command, env: dict[str, str], what: str) -> str:
        if self.stop.is_set():
            raise KeyboardInterrupt  # interrupted between claim and work: release the task
        shell = isinstance(command, str) or len(command) == 1
        args: Command = (
            command if isinstance(command, str) else (command[0] if shell else list(command))
        )
        timeout = self.config.timeout
        with subprocess.Popen(
            args,
            shell=shell,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        ) as proc:
            try:
                self.busy.set()
                # A SIGINT while CMD was starting found us not busy yet: it only set stop.
                # Checked after busy is set, so one or the other always interrupts CMD.
                if self.stop.is_set():
                    raise KeyboardInterrupt
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill(proc)
                out, err = proc.communicate()
                raise CommandFailed(
                    f"{what} timed out after {timeout:g}s and was killed" + _with(err or out)
                ) from None
            except BaseException:
                _kill(proc)
                raise
            finally:
                self.busy.clear()
        if proc.returncode != 0:
            raise CommandFailed(
                f"{what} exited with {_exit_text(proc.returncode)}" + _with(err or out)
            )
        return _tail(out)

    def execute(self, task: Task) -> Any:
        self.current = task
        out = self._run(self.config.command, task_env(task, self.config.db, self.worker), "command")
        return result_of(out)

    def verify(self, task: Task) -> bool:
        assert self.config.verify is not None
        env = task_env(task, self.config.db, self.worker)
        result = task.result
        env["MINNA_TASK_RESULT"] = result if isinstance(result, str) else json.dumps(result)
        self._run(self.config.verify, env, "verification")
        return True


def result_of(output: str) -> Any:
    """CMD's stdout as the task's result: the JSON value when it parses as JSON, else the text.

    So `{"words": 4}` is stored as an object, not as a string holding JSON.
    """
    try:
        return json.loads(output)
    except ValueError:
        return output


def _with(output: str) -> str:
    tail = _tail(output)
    return f": {tail}" if tail else ""


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


class _Interrupt:
    """SIGINT handler: stop claiming, and interrupt a running command (to release its task).

    A second Ctrl-C is ignored so that the release itself is never interrupted.
    """

    def __init__(
        self,
        stop: threading.Event,
        busy: threading.Event,
        terminated: threading.Event | None = None,
    ) -> None:
        self.stop, self.busy, self.terminated = stop, busy, terminated

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.stop.is_set():
            return
        if signum == signal.SIGTERM and self.terminated is not None:
            self.terminated.set()  # a service manager's stop: a clean exit, code 0
        self.stop.set()
        if self.busy.is_set():
            raise KeyboardInterrupt


def work(
    config: RunConfig,
    store: TaskStore,
    on_change: Callable[[Change], None],
    stop: threading.Event | None = None,
    terminated: threading.Event | None = None,
) -> bool:
    """Run one worker loop in this process; True if it was interrupted (SIGINT or SIGTERM;
    `terminated` is set for SIGTERM)."""
    stop = stop or threading.Event()
    name = config.worker or default_worker()
    shell = ShellWorker(config, name, stop)
    handler = _Interrupt(stop, shell.busy, terminated)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, handler) if main_thread else None
    previous_term = signal.signal(signal.SIGTERM, handler) if main_thread else None
    try:
        state_machine_loop(
            store,
            shell.execute,
            shell.verify if config.verify else None,
            name,
            lease_seconds=config.lease,
            max_tasks=config.max_tasks,
            stop=stop,
            on_change=lambda task: on_change(Change.of(task)),
            follow=config.follow,
        )
    except KeyboardInterrupt:
        stop.set()
        if shell.current is not None:  # the loop handed it back: say so
            on_change(Change.of(store.get(shell.current.id), released=True))
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
            signal.signal(signal.SIGTERM, previous_term)
    return stop.is_set()


def _child(config: RunConfig, events: Any) -> None:
    """Entry point of a worker process; reports each change on `events`."""
    stop, terminated = threading.Event(), threading.Event()
    signal.signal(signal.SIGINT, lambda s, f: stop.set())  # until work() installs its own

    def on_term(signum: int, frame: FrameType | None) -> None:
        terminated.set()
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    try:
        with TaskStore(config.db) as store:
            interrupted = work(config, store, events.put, stop, terminated)
    except USER_ERRORS as e:
        print(f"Error: {describe(e)}", file=sys.stderr)
        sys.exit(1)
    sys.exit(INTERRUPTED if interrupted and not terminated.is_set() else 0)


@dataclass(frozen=True)
class Change:
    """One status change of a task during the run (sent from worker processes): as the
    loop reports it (a claim, or how an attempt ended: done, or failed back to the
    queue or to failed), or `released` when an interrupted worker handed it back."""

    task_id: str
    status: str
    attempts: int
    max_attempts: int
    error: str | None
    released: bool = False

    @classmethod
    def of(cls, task: Task, released: bool = False) -> Change:
        return cls(task.id, task.status, task.attempts, task.max_attempts, task.error, released)


@dataclass
class Progress:
    """What this run did, task by task, shown on one terminal line that updates in place.

    Every task touched ends in exactly one count (completed, failed, back to pending,
    or still held), so the counts add up; each failed attempt's error goes to stderr
    as it happens.
    """

    store: TaskStore
    show: bool
    last: dict[str, Change] = field(default_factory=dict)
    failed_attempts: int = 0
    released: list[str] = field(default_factory=list)
    _shown: float = 0.0

    def change(self, change: Change) -> None:
        machine = self.store.machine
        if change.released:
            self.released.append(change.task_id)
        elif change.status in (machine.initial, machine.failed):  # the loop's failed attempt
            self.failed_attempts += 1
            self._say(
                f"{change.task_id}: attempt {change.attempts} of {change.max_attempts} failed"
                + (f": {_first_line(change.error)}" if change.error else "")
            )
        self.last[change.task_id] = change
        self.refresh()

    def count(self, *states: str | None) -> int:
        return sum(1 for c in self.last.values() if c.status in states)

    def line(self) -> str:
        m = self.store.machine  # counted by role, whatever the machine names its states
        return (
            f"{self.count(m.done)} completed, {self.count(m.failed)} failed, "
            f"{self.failed_attempts} failed attempt(s), {self.count(*m.held)} in hand"
        )

    def summary(self, workers: int) -> str:
        """The closing line: the tasks touched, split into counts that add up to them."""
        m = self.store.machine
        held = self.count(*m.held)
        parts = [
            f"{self.count(m.done)} completed",
            f"{self.count(m.failed)} failed",
            f"{self.count(m.initial)} back to pending",
        ]
        if held:
            parts.append(f"{held} still held")
        pending = self.store.stats().get(m.initial, 0)
        return (
            f"Ran {len(self.last)} task(s) with {workers} worker(s): {', '.join(parts)} "
            f"({self.failed_attempts} failed attempt(s)); {pending} pending in {self.store.path}"
        )

    def _say(self, text: str) -> None:
        prefix = "\r\x1b[K" if self.show else ""
        click.echo(f"{prefix}run: {safe_text(text)}", err=True)
        self._shown = 0.0
        self.refresh()

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.show and (force or now - self._shown > 0.2):
            self._shown = now
            click.echo(f"\r\x1b[Krun: {self.line()}", nl=False, err=True)

    def finish(self) -> None:
        if self.show:
            self.refresh(force=True)
            click.echo(err=True)


def _first_line(text: str) -> str:
    return " ".join(text.split())[:300]


def run_workers(config: RunConfig, store: TaskStore, workers: int, progress: Progress) -> int:
    """Run the queue with `workers` processes (or in this process for one); the exit code:
    0 when drained or stopped by SIGTERM, INTERRUPTED after Ctrl-C."""
    terminated = threading.Event()
    if workers == 1:
        interrupted = work(config, store, progress.change, terminated=terminated)
        return INTERRUPTED if interrupted and not terminated.is_set() else 0
    context = (
        multiprocessing.get_context("fork") if _FORK else multiprocessing.get_context("forkserver")
    )
    events = context.Queue()
    procs = []
    for i in range(workers):
        name = f"{config.worker}-{i + 1}" if config.worker else None
        child = RunConfig(**{**config.__dict__, "worker": name})
        procs.append(context.Process(target=_child, args=(child, events), daemon=False))
    stopped = threading.Event()

    def forward(signum: int, frame: FrameType | None) -> None:
        (terminated if signum == signal.SIGTERM else stopped).set()
        for p in procs:
            if p.pid is not None and p.is_alive():
                os.kill(p.pid, signum)

    previous = signal.signal(signal.SIGINT, forward)
    previous_term = signal.signal(signal.SIGTERM, forward)
    try:
        for p in procs:
            p.start()
        while alive := [p.sentinel for p in procs if p.is_alive()]:
            # Wake when a worker exits (not a polling interval later), or to show progress.
            multiprocessing.connection.wait(alive, timeout=0.1)
            _drain(events, progress)
            progress.refresh()
        for p in procs:
            p.join()
        _drain(events, progress)
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
    codes = [p.exitcode for p in procs]
    if terminated.is_set() and not stopped.is_set():
        return 0
    if stopped.is_set() or INTERRUPTED in codes:
        return INTERRUPTED
    bad = [c for c in codes if c != 0]
    if bad:
        raise click.ClickException(f"{len(bad)} worker process(es) failed (exit {bad[0]})")
    return 0


def _drain(events: Any, progress: Progress) -> None:
    try:
        while True:
            progress.change(events.get_nowait())
    except queue.Empty:
        pass


@click.command(context_settings={"allow_interspersed_args": False})
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option(
    "--verify", metavar="CMD", help="A shell command that must exit 0 for the task to be completed."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes working the file together.",
)
@click.option(
    "--lease",
    type=click.FloatRange(min=0, min_open=True),
    default=defaults.LEASE_SECONDS,
    show_default=True,
    help="Seconds a claim holds without a heartbeat.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Kill CMD (or the verify command) after this many seconds: a failed attempt.",
)
@click.option(
    "--max-tasks", type=click.IntRange(min=1), help="Each worker stops after this many tasks."
)
@click.option("--worker", help="Worker name (default HOST-PID, unique per process).")
@click.option(
    "--follow",
    is_flag=True,
    help="When the queue is empty, wait for new tasks instead of stopping (until SIGTERM "
    "or Ctrl-C; SIGTERM exits 0 once the task in hand is handed back).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show progress (default: when stderr is a terminal).",
)
@click.pass_context
def run(
    ctx: click.Context,
    command: tuple[str, ...],
    verify: str | None,
    workers: int,
    lease: float,
    timeout: float | None,
    max_tasks: int | None,
    worker: str | None,
    follow: bool,
    progress: bool | None,
) -> None:
    """Work the queue with a shell command: run CMD for each task until none is pending.

    CMD sees MINNA_TASK_ID, MINNA_TASK_TITLE, MINNA_TASK_PAYLOAD (JSON) and
    MINNA_TASK_ATTEMPT (1 for the first try). Exit 0 means executed and
    stdout is the result: stored as JSON when it parses as JSON (`{"words": 4}`
    is an object), else as text (its last 4000 characters). --verify CMD also
    sees MINNA_TASK_RESULT. A single CMD argument runs through the shell. Each
    failed attempt's error is printed on stderr. Exits 0 when the queue is
    drained and no task failed, 1 if one did or tasks are left blocked behind a
    failed dependency, 130 on Ctrl-C (the tasks in hand go back to pending and
    their ids are printed). Tasks wait for their dependencies; while a task that
    others wait for is running, the workers wait too. With --follow it waits for
    new tasks until SIGTERM (exit 0: the task in hand goes back to pending) or Ctrl-C.
    """
    app = ctx.find_object(App)
    assert app is not None
    store = app.store(create=False)
    config = RunConfig(
        db=app.db,
        command=list(command),
        verify=verify,
        lease=lease,
        timeout=timeout,
        max_tasks=max_tasks,
        worker=worker,
        follow=follow,
    )
    show = sys.stderr.isatty() if progress is None else progress
    meter = Progress(store, show)
    code = run_workers(config, store, workers, meter)
    meter.finish()
    click.echo(meter.summary(workers))
    if code == INTERRUPTED:
        back = ", ".join(sorted(meter.released)) or "none was in hand"
        click.echo(f"Interrupted; handed back to pending: {back}.", err=True)
        ctx.exit(INTERRUPTED)
    stranded = [t.id for t in store.stranded()]
    if stranded:
        click.echo(
            f"{len(stranded)} task(s) left blocked behind failed dependencies: "
            + ", ".join(stranded[:10])
            + (" ..." if len(stranded) > 10 else ""),
            err=True,
        )
    # A following run is a service: its tasks' failures are not its own.
    if (meter.count(store.machine.failed) or stranded) and not follow:
        ctx.exit(1)
