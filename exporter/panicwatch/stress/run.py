"""The run: a walker thread and N worker threads under a deadline the main thread keeps.

- A walker thread first stats each PATH (a PATH that does not exist is a usage error; a PATH
  that is a symlink is followed, as ``find -H`` does) and then lists the directories below,
  depth first, never following symlinks, up to ``MAX_ENTRIES`` entries. Everything the op applies
  to goes onto one shared list, once: a file deleted later fails (ENOENT) on every pass, a file
  created later is not picked up. The walk runs beside the workers and under the same deadline,
  so a listing that hangs shows up in the summary instead of holding it.
- Workers cycle over that list, worker i starting i/N of the way through, so they do not hit the
  same file at the same moment (the shell loops drift apart the same way).
- Each worker counts latencies in its own histogram (see :mod:`panicwatch.stress.latency`): no
  lock per op. The main thread merges them for the progress line and the summary.
- The main thread only waits: at the deadline, or on the first SIGINT or SIGTERM, it builds the
  summary and returns, whether or not the threads ever come back from their calls.
"""

from __future__ import annotations

import heapq
import logging
import os
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from itertools import chain, islice
from operator import itemgetter
from types import FrameType

from panicwatch.stress.latency import (
    EXACT,
    NBUCKETS,
    SLOWEST,
    SUB_BITS,
    merge_counts,
    percentile,
    slowest,
)
from panicwatch.stress.ops import DIR, FILE, OTHER, SYMLINK
from panicwatch.stress.summary import Latency, Progress, Stuck, Summary, error_rows, shown

log = logging.getLogger("panicwatch.stress")

MAX_ENTRIES = 1_000_000  # most directory entries the walk lists
GRACE = 0.5  # a call this old at the end is stuck; a younger one gets this long to come back
TICK = 1.0  # seconds between progress lines
HUNG_AFTER_NS = 1_000_000_000  # the progress line counts calls older than this

Scandir = Callable[[str], AbstractContextManager[Iterator[os.DirEntry[str]]]]


class UsageError(Exception):
    """Bad input, found before anything ran: exit 2."""


@dataclass(frozen=True)
class Plan:
    paths: tuple[str, ...]
    op: str
    call: Callable[[str], object]
    kinds: frozenset[str]
    workers: int
    duration: float
    about: str = ""
    grace: float = GRACE
    max_entries: int = MAX_ENTRIES
    tick: float = TICK
    lstat: Callable[[str], os.stat_result] = os.lstat
    scandir: Scandir = os.scandir


class _Recorder:
    """What one thread saw: its histogram, errors, slowest paths and the call it is in."""

    def __init__(self) -> None:
        self.counts = [0] * NBUCKETS
        self.errors: dict[int, int] = {}
        self.first_error: dict[int, str] = {}
        self.slow: dict[str, int] = {}
        # [start of the call in progress (perf_counter_ns, 0: none), its path, what it is]
        self.current: list[object] = [0, "", ""]

    def error(self, error: OSError, path: str) -> None:
        code = error.errno or 0
        if code not in self.errors:
            self.first_error[code] = path
        self.errors[code] = self.errors.get(code, 0) + 1

    def note_slow(self, path: str, ns: int, floor: int) -> int:
        """Keep path if it may be among the slowest; return the new admission floor."""
        if ns > self.slow.get(path, -1):
            self.slow[path] = ns
        if len(self.slow) <= 4 * SLOWEST:
            return floor
        kept = heapq.nlargest(SLOWEST, self.slow.items(), key=itemgetter(1))
        self.slow = dict(kept)
        return kept[-1][1]

    def in_call(self) -> tuple[int, str, str]:
        since, path, what = self.current
        assert isinstance(since, int) and isinstance(path, str) and isinstance(what, str)
        return since, path, what


def _kind(entry: os.DirEntry[str]) -> str:
    if entry.is_dir(follow_symlinks=False):
        return DIR
    if entry.is_symlink():
        return SYMLINK
    return FILE if entry.is_file(follow_symlinks=False) else OTHER


class _Run:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.alive = [True]  # workers and walk stop when this turns False
        self.targets: list[str] = []
        self.missing: list[str] = []
        self.checked = threading.Event()
        self.walk_state = "checking"
        self.listed = 0
        self.walk_started = 0.0
        self.walk_ended: float | None = None
        self.walker = _Recorder()
        self.workers = [_Recorder() for _ in range(plan.workers)]
        self.threads: list[threading.Thread] = []
        self.walk_thread = threading.Thread(target=self._walk, name="stress-walk", daemon=True)

    # the walker thread

    def _check(self) -> list[str]:
        """Stat each PATH; returns the directories to walk."""
        current, dirs = self.walker.current, []
        for path in self.plan.paths:
            current[1], current[2], current[0] = path, "lstat", time.perf_counter_ns()
            try:
                mode = self.plan.lstat(path).st_mode
                if stat.S_ISLNK(mode):
                    real = os.path.realpath(path)
                    current[1], current[2], current[0] = real, "stat", time.perf_counter_ns()
                    mode = os.stat(real).st_mode
                    path = real
            except (FileNotFoundError, NotADirectoryError):
                self.missing.append(path)
                continue
            except OSError as e:  # there but failing: the op will count it on every pass
                self.walker.error(e, path)
                mode = 0
            self.targets.append(path)
            if stat.S_ISDIR(mode):
                dirs.append(path)
        current[0] = 0
        return dirs

    def _walk(self) -> None:
        self.walk_started = time.monotonic()
        try:
            dirs = self._check()
        finally:
            self.checked.set()
        if self.missing:
            return
        self.walk_state = "walking"
        if self._list(dirs[::-1]):
            self.walk_state = "complete"
        self.walk_ended = time.monotonic()
        self.walker.current[0] = 0
        log.debug("listed %d entries under %d paths in %.3f s (%s), %d targets", self.listed,
                  len(self.plan.paths), self.walk_ended - self.walk_started, self.walk_state,
                  len(self.targets))

    def _list(self, stack: list[str]) -> bool:
        """Depth first, without following symlinks; False if stopped or capped."""
        alive, current, kinds, targets = self.alive, self.walker.current, self.plan.kinds, self.targets
        while stack:
            directory = stack.pop()
            current[1], current[2], current[0] = directory, "scandir", time.perf_counter_ns()
            try:
                with self.plan.scandir(directory) as entries:
                    for entry in entries:
                        if not alive[0]:
                            return False
                        if self.listed >= self.plan.max_entries:
                            self.walk_state = "capped"
                            return False
                        self.listed += 1
                        kind = _kind(entry)
                        if kind == DIR:
                            stack.append(entry.path)
                        if kind in kinds:
                            targets.append(entry.path)
            except OSError as e:
                self.walker.error(e, directory)
        return True

    # the worker threads

    def _work(self, index: int) -> None:
        me = self.workers[index]
        alive, targets, call, nworkers = self.alive, self.targets, self.plan.call, self.plan.workers
        counts, current, clock = me.counts, me.current, time.perf_counter_ns
        current[2] = self.plan.op
        floor = -1
        while alive[0]:
            n = len(targets)
            if not n:  # cannot happen once the PATHs are checked; never spin on it anyway
                time.sleep(0.01)
                continue
            offset = index * n // nworkers
            for path in chain(islice(targets, offset, n), islice(targets, 0, offset)):
                if not alive[0]:
                    break
                current[1] = path
                current[0] = start = clock()
                try:
                    call(path)
                except OSError as e:
                    me.error(e, path)
                ns = clock() - start
                if ns < EXACT:  # bucket_of(ns), inlined
                    counts[ns] += 1
                else:
                    shift = ns.bit_length() - SUB_BITS - 1
                    counts[(shift << SUB_BITS) + (ns >> shift)] += 1
                if ns > floor:
                    floor = me.note_slow(path, ns, floor)
        current[0] = 0

    def start_workers(self) -> None:
        log.debug("starting %d workers (%s)", self.plan.workers, self.plan.op)
        for i in range(self.plan.workers):
            thread = threading.Thread(target=self._work, args=(i,), name=f"stress-{i}", daemon=True)
            self.threads.append(thread)
            thread.start()

    @property
    def started(self) -> bool:
        return bool(self.threads)

    # the main thread

    def stop(self) -> None:
        """Tell everyone to stop; wait up to `grace` for those whose call is younger than that.

        A call already `grace` old is stuck: nobody waits for it, so a frozen mount gets its
        summary at the deadline, not `grace` later.
        """
        self.alive[0] = False
        until, grace_ns = time.monotonic() + self.plan.grace, int(self.plan.grace * 1e9)
        pairs = [(self.walker, self.walk_thread), *zip(self.workers, self.threads, strict=False)]
        for recorder, thread in pairs:
            since = recorder.in_call()[0]
            if thread.ident is None or (since and time.perf_counter_ns() - since >= grace_ns):
                continue
            thread.join(max(0.0, until - time.monotonic()))

    def progress(self, elapsed: float) -> Progress:
        counts = merge_counts(list(w.counts) for w in self.workers)
        ops = sum(counts)
        errors = sum(sum(dict(r.errors).values()) for r in [self.walker, *self.workers])
        maximum = max((max(dict(w.slow).values(), default=0) for w in self.workers), default=0)
        now = time.perf_counter_ns()
        hung = 0
        for worker in self.workers:
            since = worker.current[0]
            if isinstance(since, int) and since and now - since > HUNG_AFTER_NS:
                hung += 1
        return Progress(elapsed, ops, errors, percentile(counts, 99, maximum) if ops else None, hung)

    def _stuck(self) -> tuple[tuple[Stuck, ...], Stuck | None]:
        now = time.perf_counter_ns()

        def stuck_of(recorder: _Recorder, thread: threading.Thread) -> Stuck | None:
            since, path, what = recorder.in_call()
            if not thread.is_alive() or not since:
                return None
            return Stuck(what, path, (now - since) / 1e9)

        workers = [stuck_of(w, t) for w, t in zip(self.workers, self.threads, strict=False)]
        ranked = sorted((s for s in workers if s), key=lambda s: (-s.seconds, s.path))
        walk = stuck_of(self.walker, self.walk_thread) if self.walk_thread.ident else None
        return tuple(ranked), walk

    def summary(self, elapsed: float, ended: str) -> Summary:
        plan = self.plan
        recorders = [self.walker, *self.workers]
        counts = merge_counts(list(w.counts) for w in self.workers)
        ops = sum(counts)
        worst = slowest([dict(w.slow) for w in self.workers])
        latency = None
        if ops:
            maximum = worst[0][1]
            latency = Latency(*(percentile(counts, p, maximum) for p in (50, 90, 99)), maximum)
        errors: dict[int, int] = {}
        first: dict[int, str] = {}
        for r in recorders:
            for code, n in dict(r.errors).items():
                errors[code] = errors.get(code, 0) + n
                first.setdefault(code, r.first_error.get(code, ""))
        stuck, walk_stuck = self._stuck()
        walk_end = self.walk_ended if self.walk_ended is not None else time.monotonic()
        return Summary(
            paths=plan.paths, op=plan.op, about=plan.about, workers=plan.workers,
            requested=plan.duration, elapsed=elapsed, ended=ended, targets=len(self.targets),
            walk=self.walk_state, listed=self.listed,
            walk_seconds=max(0.0, walk_end - self.walk_started) if self.walk_started else 0.0,
            ops=ops, errors=error_rows(errors, first), latency=latency, slowest=worst,
            stuck=stuck, walk_stuck=walk_stuck,
        )


# --- deadline and signals ------------------------------------------------------------------------


class _Signalled(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass
class _StopSignals:
    """SIGINT and SIGTERM end the wait once (by raising in the main thread); later ones are ignored."""

    armed: bool = True
    saved: dict[int, object] = field(default_factory=dict)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.armed:
            self.armed = False
            raise _Signalled(signal.Signals(signum).name)

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.saved[signum] = signal.signal(signum, self.handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.saved.items():
            if handler is not None:
                signal.signal(signum, handler)  # type: ignore[arg-type]


def _wait(run: _Run, start: float, deadline: float, on_progress: Callable[[Progress], None] | None) -> None:
    """Sleep until the deadline; start the workers once the PATHs are checked; tick the progress."""
    next_tick = start + run.plan.tick
    while (now := time.monotonic()) < deadline:
        until = min(next_tick, deadline)
        if not run.started:
            if run.checked.wait(until - now):
                if run.missing:
                    raise UsageError(f"{shown(run.missing[0])}: No such file or directory")
                run.start_workers()
                continue
        else:
            time.sleep(until - now)
        now = time.monotonic()
        if now >= next_tick:
            if on_progress is not None:
                on_progress(run.progress(now - start))
            next_tick += run.plan.tick


def execute(plan: Plan, on_progress: Callable[[Progress], None] | None = None) -> Summary:
    """Run the plan until its deadline or a signal; never waits on a call that does not return.

    Raises UsageError if a PATH does not exist (known only if its stat returned in time).
    """
    if not plan.paths:
        raise UsageError("no PATH given")
    run = _Run(plan)
    ended = "deadline"
    with _StopSignals() as signals:
        start = time.monotonic()
        try:
            run.walk_thread.start()
            try:
                _wait(run, start, start + plan.duration, on_progress)
                signals.armed = False
            except _Signalled as signalled:
                ended = signalled.name
            elapsed = time.monotonic() - start
            if run.missing:
                raise UsageError(f"{shown(run.missing[0])}: No such file or directory")
        finally:
            signals.armed = False
            run.stop()
        return run.summary(elapsed, ended)
