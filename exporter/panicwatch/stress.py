"""`panicwatch stress`: the classic NFS lockup reproducer, bounded and measured.

The reproducer it replaces is eight shell loops, ``for f in /mnt/nfs/spool/*; do stat "$f";
done &``. On a sick mount they pile up in the kernel and never come back, and nobody learns how
fast the mount answered before it froze. Here N daemon threads make the same calls and time each
one, and the main thread only waits: at ``--duration`` (or on Ctrl-C or SIGTERM) it prints the
summary and returns even if every worker is stuck in the kernel. Stuck daemon threads stay
stuck; the process exits around them.

- A walker thread first stats each PATH (a PATH that does not exist is a usage error; a PATH
  that is a symlink is followed, as ``find -H`` does) and then lists the directories below,
  depth first, never following symlinks, up to ``MAX_ENTRIES`` entries. Everything the op applies
  to goes onto one shared list, once: a file deleted later fails (ENOENT) on every pass, a file
  created later is not picked up. The walk runs beside the workers and under the same deadline,
  so a listing that hangs shows up in the summary instead of holding it.
- Workers cycle over that list, worker i starting i/N of the way through, so they do not hit the
  same file at the same moment (the shell loops drift apart the same way).
- Each worker counts latencies in its own log-bucket histogram, a plain list indexed by bucket:
  no lock per op. The main thread merges the lists for the progress line and the summary.
  Resolution: a latency under 128 ns is its own bucket; above that a bucket spans 1/64 of its
  lower bound. A percentile is reported as the top of its bucket, capped by the exact maximum:
  never below the true value and less than 1.6% above it.

The run itself is a forked child (see :func:`supervised`): a call stuck where even SIGKILL cannot
end it (a FUSE request its server has read; a few NFS paths) keeps a process from ever being
reaped and its stdout open, so the parent relays the child's output, takes its exit code from a
pipe of its own and exits: the shell prompt comes back right after the summary.

``stat`` is ``os.lstat``: what ``stat(1)`` does by default (it reports on a symlink, not its
target), so it counts the same calls as the shell loop; on a file or directory it is the same
lookup and GETATTR as ``stat(2)``, and it never leaves the tree through a symlink.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import logging
import math
import os
import selectors
import signal
import stat
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from itertools import chain, islice
from operator import itemgetter
from types import FrameType
from typing import NoReturn, TextIO

from panicwatch.settings import Settings

log = logging.getLogger("panicwatch.stress")

MAX_ENTRIES = 1_000_000  # most directory entries the walk lists
GRACE = 0.5  # a call this old at the end is stuck; a younger one gets this long to come back
TICK = 1.0  # seconds between progress lines
SLOWEST = 5  # slowest paths in the summary
STUCK_SHOWN = 5  # stuck calls listed in the summary
HUNG_AFTER_NS = 1_000_000_000  # the progress line counts calls older than this
BACKSTOP = 10.0  # seconds after the deadline the supervisor gives up on hearing from the run

SUB_BITS = 6
SUB = 1 << SUB_BITS  # buckets per power of two
EXACT = 2 * SUB  # latencies below this many ns get a bucket each
NBUCKETS = (64 - SUB_BITS) * SUB  # enough for any 63-bit nanosecond count

OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC
FILE, DIR, SYMLINK, OTHER = "file", "dir", "symlink", "other"
ALL_KINDS = frozenset({FILE, DIR, SYMLINK, OTHER})

Scandir = Callable[[str], AbstractContextManager[Iterator[os.DirEntry[str]]]]


class UsageError(Exception):
    """Bad input, found before anything ran: exit 2."""


# --- the operations -----------------------------------------------------------------------------


def _open_close(path: str) -> None:
    os.close(os.open(path, OPEN_FLAGS))


def _list_dir(path: str) -> None:
    os.listdir(path)


@dataclass(frozen=True)
class Op:
    call: Callable[[str], object]
    kinds: frozenset[str]  # what the walk hands it (a PATH given is always handed over)
    about: str


OPS: dict[str, Op] = {
    "stat": Op(os.lstat, ALL_KINDS, "lstat every entry (symlinks not followed, as stat(1))"),
    "open": Op(_open_close, frozenset({FILE, DIR}),
               "open O_RDONLY|O_NONBLOCK|O_NOFOLLOW and close every file and directory"),
    "statvfs": Op(os.statvfs, ALL_KINDS - {SYMLINK}, "statvfs every entry except symlinks"),
    "readdir": Op(_list_dir, frozenset({DIR}), "list every directory"),
}


# --- pure helpers: histogram, percentiles, merging -----------------------------------------------


def bucket_of(ns: int) -> int:
    """The histogram bucket of a latency in nanoseconds (the worker loop inlines this)."""
    if ns < EXACT:
        return max(ns, 0)
    shift = ns.bit_length() - SUB_BITS - 1
    return (shift << SUB_BITS) + (ns >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """Lowest and highest nanosecond value that land in a bucket."""
    if index < EXACT:
        return index, index
    shift = (index >> SUB_BITS) - 1
    top = index - (shift << SUB_BITS)
    return top << shift, ((top + 1) << shift) - 1


def percentile(counts: Sequence[int], percent: float, maximum: int) -> int:
    """Nearest-rank percentile of a histogram: the top of the bucket holding that rank."""
    total = sum(counts)
    if total == 0:
        raise ValueError("no values")
    rank = max(1, math.ceil(round(total * percent / 100, 9)))
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return min(bucket_bounds(index)[1], maximum)
    return maximum


def merge_counts(histograms: Iterable[Sequence[int]]) -> list[int]:
    merged = [0] * NBUCKETS
    for counts in histograms:
        merged = [a + b for a, b in zip(merged, counts, strict=True)]
    return merged


def slowest(per_worker: Iterable[Mapping[str, int]], k: int = SLOWEST) -> tuple[tuple[str, int], ...]:
    """The k paths with the worst latency, worst first (a path once, with its worst)."""
    worst: dict[str, int] = {}
    for paths in per_worker:
        for path, ns in paths.items():
            if ns > worst.get(path, -1):
                worst[path] = ns
    ranked = sorted(worst.items(), key=lambda item: (-item[1], item[0]))
    return tuple(ranked[:k])


def errno_name(code: int) -> str:
    return errno.errorcode.get(code, f"errno {code}")


@dataclass(frozen=True)
class ErrorRow:
    name: str
    count: int
    first: str  # the first path that failed this way (in one worker)


def error_rows(counts: Mapping[int, int], first: Mapping[int, str]) -> tuple[ErrorRow, ...]:
    rows = [ErrorRow(errno_name(code), n, first.get(code, "")) for code, n in counts.items() if n]
    return tuple(sorted(rows, key=lambda r: (-r.count, r.name)))


# --- the summary: data, exit code, text ---------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    p50: int
    p90: int
    p99: int
    max: int


@dataclass(frozen=True)
class Stuck:
    what: str  # the call: the op, or the walk's lstat/stat/scandir
    path: str
    seconds: float  # since the call started


@dataclass(frozen=True)
class Summary:
    paths: tuple[str, ...]
    op: str
    about: str
    workers: int
    requested: float
    elapsed: float
    ended: str  # "deadline", "SIGINT" or "SIGTERM"
    targets: int
    walk: str  # "checking", "walking", "complete" or "capped"
    listed: int
    walk_seconds: float
    ops: int
    errors: tuple[ErrorRow, ...] = ()
    latency: Latency | None = None
    slowest: tuple[tuple[str, int], ...] = ()
    stuck: tuple[Stuck, ...] = ()  # workers still in a call at the end, oldest first
    walk_stuck: Stuck | None = None

    @property
    def error_count(self) -> int:
        return sum(row.count for row in self.errors)


def exit_code(summary: Summary) -> int:
    """1 if any call failed or any call never came back (a stuck call is an error), else 0."""
    return 1 if summary.errors or summary.stuck or summary.walk_stuck else 0


LABEL = 11
ENDED = {"deadline": "ended at the deadline", "SIGINT": "stopped by SIGINT (Ctrl-C)",
         "SIGTERM": "stopped by SIGTERM"}


def _line(label: str, text: str) -> str:
    return f"{label + ':':<{LABEL}}{text}"


def _more(text: str) -> str:
    return " " * LABEL + text


def shown(path: str) -> str:
    """A path as one line of text: undecodable bytes and control characters escaped (\\xNN, \\n)."""
    text = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def ms(ns: int) -> str:
    return f"{ns / 1e6:.3f} ms"


def _walk_text(s: Summary) -> str:
    if s.walk == "checking":
        return f"{s.targets}; the PATHs were still being checked (stat) at the end"
    if s.walk == "capped":
        return (f"{s.targets}; walk stopped at the {s.listed}-entry cap after "
                f"{s.walk_seconds:.3f} s")
    state = "complete" if s.walk == "complete" else "incomplete"
    return f"{s.targets}; walk {state}: {s.listed} entries listed in {s.walk_seconds:.3f} s"


def _error_lines(s: Summary) -> list[str]:
    lines = [_line("errors", str(s.error_count))]
    width = max((len(r.name) for r in s.errors), default=0)
    count_width = max((len(str(r.count)) for r in s.errors), default=0)
    for r in s.errors:
        lines.append(_more(f"{r.name:<{width}}  {r.count:>{count_width}}  first: {shown(r.first)}"))
    return lines


def _stuck_lines(s: Summary) -> list[str]:
    if not s.stuck and not s.walk_stuck:
        return [_line("stuck", f"0 of {s.workers} workers")]
    workers = f"{len(s.stuck)} of {s.workers} workers"
    if not s.stuck:
        head = f"the walk still in a call at the end; {workers}"
    else:
        head = workers + (" and the walk" if s.walk_stuck else "") + " still in a call at the end"
    calls = [*([s.walk_stuck] if s.walk_stuck else []), *s.stuck]
    lines = [_line("stuck", head)]
    for call in calls[:STUCK_SHOWN]:
        lines.append(_more(f"{call.seconds:.3f} s  {call.what} {shown(call.path)}"))
    if len(calls) > STUCK_SHOWN:
        lines.append(_more(f"... and {len(calls) - STUCK_SHOWN} more"))
    return lines


def _result(s: Summary) -> str:
    code = exit_code(s)
    if not code:
        return "OK, exit 0"
    problems = []
    if s.errors:
        problems.append(f"{s.error_count} error{'s' * (s.error_count != 1)}")
    if s.stuck:
        problems.append(f"{len(s.stuck)} worker{'s' * (len(s.stuck) != 1)} stuck")
    if s.walk_stuck:
        problems.append("walk stuck")
    return f"FAIL: {', '.join(problems)}; exit {code}"


def format_summary(s: Summary) -> str:
    """The summary as plain text, one `label: value` per line, continuation lines indented."""
    rate = s.ops / s.elapsed if s.elapsed > 0 else 0.0
    lines = ["panicwatch stress summary", _line("paths", shown(s.paths[0]) if s.paths else "")]
    lines += [_more(shown(p)) for p in s.paths[1:]]
    lines += [
        _line("op", f"{s.op}: {s.about}"),
        _line("workers", str(s.workers)),
        _line("duration", f"{s.elapsed:.2f} s of {s.requested:g} s, {ENDED.get(s.ended, s.ended)}"),
        _line("targets", _walk_text(s)),
        _line("ops", f"{s.ops} ({rate:.1f}/s)"),
        *_error_lines(s),
    ]
    if s.latency is None:
        lines.append(_line("latency", "none (no call completed)"))
    else:
        lat = s.latency
        lines.append(_line("latency", f"p50 {ms(lat.p50)}, p90 {ms(lat.p90)}, p99 {ms(lat.p99)}, "
                                      f"max {ms(lat.max)}"))
    if s.slowest:
        width = max(len(ms(ns)) for _, ns in s.slowest)
        texts = [f"{ms(ns):>{width}}  {shown(path)}" for path, ns in s.slowest]
        lines += [_line("slowest", texts[0]), *(_more(t) for t in texts[1:])]
    else:
        lines.append(_line("slowest", "none"))
    lines += [*_stuck_lines(s), _line("result", _result(s))]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Progress:
    elapsed: float
    ops: int
    errors: int
    p99: int | None
    hung: int  # workers in a call that started more than a second ago


def format_progress(p: Progress, rate: float) -> str:
    p99 = "-" if p.p99 is None else ms(p.p99)
    return (f"{p.elapsed:6.1f} s  ops {p.ops}  {rate:.0f}/s  errors {p.errors}  p99 {p99}  "
            f"in a call >1s {p.hung}")


# --- the run -----------------------------------------------------------------------------------


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


def plan_of(settings: Settings, paths: Sequence[str]) -> Plan:
    op = OPS[settings.stress_op]
    return Plan(tuple(paths), settings.stress_op, op.call, op.kinds, settings.stress_workers,
                settings.stress_duration, op.about)


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


# --- the command ---------------------------------------------------------------------------------


class _ProgressLine:
    """One `\\r` line on a terminal, rewritten every tick."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last_ops = 0
        self.last_elapsed = 0.0
        self.shown = False

    def __call__(self, p: Progress) -> None:
        interval = p.elapsed - self.last_elapsed
        rate = (p.ops - self.last_ops) / interval if interval > 0 else 0.0
        self.last_ops, self.last_elapsed = p.ops, p.elapsed
        self.stream.write("\r" + format_progress(p, rate) + "\x1b[K")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def run_stress(settings: Settings, paths: list[str]) -> int:
    """`panicwatch stress PATH...`: 0 ran clean, 1 errors or stuck calls, 2 bad usage."""
    if not paths:
        print("panicwatch stress: error: no PATH given", file=sys.stderr)
        return 2
    plan, tty = plan_of(settings, paths), sys.stderr.isatty()
    return supervised(lambda: run_here(plan, tty), plan.duration + BACKSTOP)


def run_here(plan: Plan, tty: bool) -> int:
    """The run itself, in this process: summary to stdout, progress to stderr on a terminal."""
    progress = _ProgressLine(sys.stderr) if tty else None
    try:
        summary = execute(plan, progress)
    except UsageError as e:
        print(f"panicwatch stress: error: {e}", file=sys.stderr)
        return 2
    finally:
        if progress is not None:
            progress.clear()
    sys.stdout.write(format_summary(summary))
    sys.stdout.flush()
    return exit_code(summary)


# --- the supervisor: this process never waits on a process that may never exit -------------------


def supervised(body: Callable[[], int], patience: float) -> int:
    """Run body in a forked child; relay its stdout and stderr; return the exit code it reports.

    A thread stuck where even SIGKILL cannot end it (a FUSE request its server has already read,
    some NFS paths) keeps a process from ever being reaped, and keeps its stdout and stderr open.
    So the run is a child that reports its exit code on a pipe of its own, and this process
    returns as soon as it has it, without waiting for the child to exit or its output to reach
    EOF: the caller's shell prompt or pipe comes back right after the summary. If no code comes
    within `patience` seconds, the child is killed and the exit code is 1.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    ctl_r, ctl_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(body, out_w, err_w, ctl_w, (out_r, err_r, ctl_r))
    for fd in (out_w, err_w, ctl_w):
        os.close(fd)
    try:
        return _relay(pid, {out_r: sys.stdout, err_r: sys.stderr}, ctl_r, patience)
    finally:
        for fd in (out_r, err_r, ctl_r):
            os.close(fd)
        _reap(pid)


def _child(body: Callable[[], int], out: int, err: int, ctl: int, parent_ends: tuple[int, ...]) -> NoReturn:
    """Run body with stdout/stderr on pipes to the parent, report the exit code on ctl, and _exit."""
    code = 1
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):  # execute() arms its own; ignored around it
            signal.signal(signum, signal.SIG_IGN)
        for fd in parent_ends:
            os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        for fd, target in ((null, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False,  # noqa: SIM115
                          buffering=1)
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False,  # noqa: SIM115
                          buffering=1)
        code = body()
    except BaseException:  # the parent must hear back whatever happened
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        with contextlib.suppress(OSError):
            os.write(ctl, bytes([code & 0xFF]))
        os._exit(code)


def _relay(pid: int, relay: dict[int, TextIO], ctl: int, patience: float) -> int:
    """Copy the child's output until it reports its exit code, then what is already in the pipes."""
    code: int | None = None
    until = time.monotonic() + patience
    with _ForwardSignals(pid), selectors.DefaultSelector() as selector:
        for fd in (*relay, ctl):
            selector.register(fd, selectors.EVENT_READ)
        while code is None:
            remaining = until - time.monotonic()
            if remaining <= 0:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                print(f"panicwatch stress: error: the run did not finish within {patience:g} s",
                      file=sys.stderr)
                return 1
            for key, _ in selector.select(remaining):
                data = os.read(key.fd, 65536)
                if key.fd == ctl:
                    code = data[0] if data else _exit_status(pid)
                elif data:
                    _copy(relay[key.fd], data)
                else:
                    selector.unregister(key.fd)
    for fd, stream in relay.items():
        os.set_blocking(fd, False)
        with contextlib.suppress(BlockingIOError):
            while data := os.read(fd, 65536):
                _copy(stream, data)
    return code


def _copy(stream: TextIO, data: bytes) -> None:
    stream.flush()
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        buffer.write(data)
        buffer.flush()
    else:
        stream.write(data.decode("utf-8", "replace"))
        stream.flush()


def _exit_status(pid: int) -> int:
    """The child closed its end without a word: it is gone; its status, 1 if a signal ended it."""
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        print(f"panicwatch stress: error: the run was killed by {signal.Signals(-code).name}",
              file=sys.stderr)
        return 1
    return code


def _reap(pid: int, wait: float = 0.5) -> None:
    """Collect the child if it exits (it cannot while a call is stuck); else leave it to init."""
    until = time.monotonic() + wait
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(pid, os.WNOHANG) == (0, 0) and time.monotonic() < until:
            time.sleep(0.005)


class _ForwardSignals:
    """SIGINT and SIGTERM to this process go on to the child (a terminal's Ctrl-C reaches both)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.saved: dict[int, object] = {}

    def forward(self, signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):
            os.kill(self.pid, signum)

    def __enter__(self) -> _ForwardSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.saved[signum] = signal.signal(signum, self.forward)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.saved.items():
            if handler is not None:
                signal.signal(signum, handler)  # type: ignore[arg-type]
