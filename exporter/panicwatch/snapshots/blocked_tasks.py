"""The tasks (threads) in uninterruptible sleep (D), and what each waits on.

Every thread's own ``task/<tid>/stat`` counts (the leader's ``stat`` shows only its own state),
read only where it can differ from the leader's. ``wchan`` and, as root, ``stack`` classify a
D task (parsers/task_state.py). Reading ``stack`` takes the task's exec lock, which a task
stuck in execve on a hung mount can hold: stacks are read on one helper thread with a time
budget (StackReader). Kernel details: docs/kernel-interfaces.md, "blocked_tasks".
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from panicwatch.parsers.task_state import WAITS, classify, is_plain_task, parse_stack, parse_stat
from panicwatch.reader import HostReader

DEFAULT_MAX_EXAMINED = 1000
DEFAULT_STACK_BUDGET = 1.0  # seconds for all stack reads of one scrape
STAT_READ = 4096  # a stat line is < 1 KiB (52 numbers and a 16-byte comm)
WCHAN_READ = 256  # a symbol name (KSYM_NAME_LEN is 512, real names are far shorter)
STACK_READ = 16384  # at most 64 frames (MAX_STACK_TRACE_DEPTH) of ~80 bytes

# A task that exited between being listed and being read: not a problem, just gone.
GONE_ERRNOS = frozenset({errno.ENOENT, errno.ESRCH, errno.ENOTDIR})


# --------------------------------------------------------------------------------------------
# Listing the D tasks
# --------------------------------------------------------------------------------------------


class TaskKey(NamedTuple):
    """A task's identity across scrapes: ids are reused, (pid, tid, start time) is not."""

    pid: int
    tid: int
    start: int


@dataclass(frozen=True)
class Scan:
    blocked: list[TaskKey]  # tasks in D, in listing order
    processes: int  # thread groups looked at
    tasks: int  # tasks (threads) whose state was read
    garbled: int = 0  # stat files not in the kernel's format: skipped
    unreadable: int = 0  # stat files we could not read (other than vanished): not counted
    unreadable_reason: str = ""


def _read(path: bytes, limit: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, limit)
    finally:
        os.close(fd)


def scan_blocked(procfs: os.PathLike[str] | str) -> Scan:
    """Every task in D under ``procfs`` (the Host's, ``reader.host.proc()``).

    Reads one stat file per process, and one per thread only for processes with more than one
    thread (or a zombie leader). Tasks that vanish meanwhile are skipped. Why not psutil: it has
    no per-thread state (``Process.threads()`` reads each thread's stat and keeps only CPU times;
    ``status()`` is the leader's), a ``Process(tid)`` per thread costs another stat read or two
    for each, and it reads ``psutil.PROCFS_PATH``, one process-wide global, where --path.procfs
    must be followed per collector; benchmarks/blocked_tasks_cost.py measures both (psutil took
    about 4x as long for 20,000 processes, 12x for 20,000 threads).
    """
    # The root comes from the Host; below it, bytes paths built here and os.open/os.read keep
    # the loop cheap: with 20,000 processes it runs 20,000 times per scrape, and the open and
    # read of a stat file (~17 us on a small VM) are most of the cost; pathlib and open() would
    # add half as much again.
    root = os.fsencode(procfs).rstrip(b"/") or b"/"
    blocked: list[TaskKey] = []
    processes = tasks = garbled = unreadable = 0
    reason = ""

    def read_or_none(path: bytes) -> bytes | None:
        """The file, or None when its task is gone (normal) or it cannot be read (counted)."""
        nonlocal unreadable, reason
        try:
            return _read(path, STAT_READ)
        except OSError as e:
            if e.errno not in GONE_ERRNOS:
                unreadable += 1
                reason = reason or (e.strerror or str(e))
            return None

    for name in os.listdir(root):  # an unreadable procfs is the caller's failure
        if not name.isdigit():
            continue
        pid_dir = root + b"/" + name
        data = read_or_none(pid_dir + b"/stat")
        if data is None:
            continue
        if is_plain_task(data):  # most processes: nothing more to do
            processes += 1
            tasks += 1
            continue
        leader = parse_stat(data)
        if leader is None:
            garbled += 1
            continue
        processes += 1
        pid = int(name)
        if leader.num_threads == 1 and leader.state != "Z":
            tasks += 1
            if leader.state == "D":
                blocked.append(TaskKey(pid, pid, leader.start))
            continue
        try:
            tids = os.listdir(pid_dir + b"/task")
        except OSError as e:
            if e.errno not in GONE_ERRNOS:
                unreadable += 1
                reason = reason or (e.strerror or str(e))
            continue
        for tid_name in tids:
            if tid_name == name:  # the leader: its own state is the one already read
                stat = leader
            else:
                data = read_or_none(pid_dir + b"/task/" + tid_name + b"/stat")
                if data is None:
                    continue
                stat = parse_stat(data)
                if stat is None:
                    garbled += 1
                    continue
            tasks += 1
            if stat.state == "D" and tid_name.isdigit():
                blocked.append(TaskKey(pid, int(tid_name), stat.start))
    return Scan(blocked, processes, tasks, garbled, unreadable, reason)


# --------------------------------------------------------------------------------------------
# Kernel stacks, on a helper thread
# --------------------------------------------------------------------------------------------


def read_stack_file(path: bytes) -> str:
    return _read(path, STACK_READ).decode("utf-8", "replace")


@dataclass
class _Batch:
    items: list[tuple[TaskKey, bytes]]
    read: Callable[[bytes], str]
    results: dict[TaskKey, str | OSError] = field(default_factory=dict)
    current: TaskKey | None = None  # the task whose stack is being read right now
    cancelled: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        try:
            for key, path in self.items:
                with self.lock:
                    if self.cancelled:
                        return
                    self.current = key
                try:
                    result: str | OSError = self.read(path)
                except OSError as e:
                    result = e
                with self.lock:
                    self.results[key] = result
                    self.current = None
        finally:
            self.done.set()


@dataclass(frozen=True)
class StackResults:
    stacks: dict[TaskKey, str | OSError]  # the reads that finished: text, or why not
    blocked_on: TaskKey | None  # a read that did not return in time (its task is then avoided)


class StackReader:
    """Reads kernel stacks on one helper thread, so that a read that blocks (see the module
    docstring) never holds up a scrape. Thread-safe.

    Each :meth:`read` gives the helper a time budget; reads not done by then are left out (the
    caller falls back to wchan). A task whose stack read was still running at the deadline is
    avoided from then on, for as long as it stays in the given ``alive`` set. While a read is
    stuck, the helper is busy and every :meth:`read` returns nothing at once: there is never
    more than one helper thread, stuck or not.
    """

    def __init__(self, read: Callable[[bytes], str] = read_stack_file) -> None:
        self._read = read
        self._lock = threading.Lock()
        self._batch: _Batch | None = None
        self._thread: threading.Thread | None = None
        self._avoid: set[TaskKey] = set()

    def busy(self) -> TaskKey | None:
        """The task whose stack read is still blocked from an earlier call, if any."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive() and self._batch is not None:
                with self._batch.lock:
                    return self._batch.current
            return None

    def read(self, items: Sequence[tuple[TaskKey, bytes]], budget: float,
             alive: set[TaskKey] | None = None) -> StackResults:
        with self._lock:
            if alive is not None:
                self._avoid &= alive
            if self._thread is not None and self._thread.is_alive():
                batch = self._batch
                assert batch is not None
                with batch.lock:
                    return StackResults({}, batch.current)
            todo = [(key, path) for key, path in items if key not in self._avoid]
            if not todo:
                return StackResults({}, None)
            batch = _Batch(todo, self._read)
            self._batch = batch
            self._thread = threading.Thread(target=batch.run, name="panicwatch-stacks", daemon=True)
            self._thread.start()
        batch.done.wait(budget)
        with batch.lock:
            batch.cancelled = True
            results = dict(batch.results)
            blocked_on = batch.current
        if blocked_on is not None:
            with self._lock:
                self._avoid.add(blocked_on)
        return StackResults(results, blocked_on)


# --------------------------------------------------------------------------------------------
# The snapshot
# --------------------------------------------------------------------------------------------


class BlockedTask(NamedTuple):
    pid: int
    tid: int
    start: int  # clock ticks after boot
    wait: str  # "nfs", "rpc" or "other"
    wchan: str  # "" when unknown (0: not sleeping any more, or not allowed to look)
    stack: bool  # classified with the kernel stack (False: from wchan alone)

    @property
    def key(self) -> TaskKey:
        return TaskKey(self.pid, self.tid, self.start)


@dataclass(frozen=True)
class BlockedTasks:
    tasks: list[BlockedTask]  # the examined D tasks, classified
    unexamined: list[TaskKey]  # D tasks past the cap: counted, not classified
    scan: Scan
    stack_blocked_on: TaskKey | None = None  # a stack read that blocked (see StackReader)

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(WAITS, 0)
        for task in self.tasks:
            counts[task.wait] += 1
        return counts


def examine(procfs: os.PathLike[str] | str, keys: Sequence[TaskKey], stacks: StackReader | None,
            *, budget: float = DEFAULT_STACK_BUDGET, alive: set[TaskKey] | None = None,
            ) -> tuple[list[BlockedTask], TaskKey | None]:
    """wchan and stack of each task in ``keys``, classified. Tasks gone meanwhile are left out.
    ``stacks`` None: wchan only."""
    root = os.fsencode(procfs).rstrip(b"/") or b"/"
    wchans: dict[TaskKey, str] = {}
    dirs: dict[TaskKey, bytes] = {}
    for key in keys:
        task_dir = b"%s/%d/task/%d" % (root, key.pid, key.tid)
        try:
            wchan = _read(task_dir + b"/wchan", WCHAN_READ).decode("utf-8", "replace").strip()
        except OSError as e:
            if e.errno in GONE_ERRNOS:
                continue  # exited since the scan: no longer blocked
            wchan = ""  # any other error: classify by the stack alone
        wchans[key] = "" if wchan == "0" else wchan
        dirs[key] = task_dir
    results = StackResults({}, None)
    if stacks is not None:  # also with nothing to read: says whether a read is still blocked
        results = stacks.read([(key, dirs[key] + b"/stack") for key in wchans], budget, alive)
    tasks = []
    for key, wchan in wchans.items():
        stack = results.stacks.get(key)
        # Permission denied (not root), no such file (no CONFIG_STACKTRACE, or just exited):
        # wchan alone. A task that exited will be gone from the next scan.
        frames = parse_stack(stack) if isinstance(stack, str) else []
        tasks.append(BlockedTask(key.pid, key.tid, key.start, classify(wchan, frames), wchan,
                                 bool(frames)))
    return tasks, results.blocked_on


def read_blocked_tasks(reader: HostReader, *, limit: int = DEFAULT_MAX_EXAMINED,
                       stacks: StackReader | None = None, budget: float = DEFAULT_STACK_BUDGET,
                       first_seen: Mapping[TaskKey, float] | None = None) -> BlockedTasks:
    """All D tasks of the Host's procfs; the first ``limit`` of them examined and classified.

    With ``first_seen`` (a tracker's), the tasks blocked longest are examined first, so past the
    cap the longest waits are still the ones classified. ``stacks`` None: a fresh StackReader
    (tests, one-off use); a collector keeps its own, which remembers reads that blocked."""
    procfs = reader.host.proc()
    scan = scan_blocked(procfs)
    if scan.garbled:
        reader.problem(f"{procfs}: stat files not in the kernel's format skipped")
    if scan.unreadable:
        reader.problem(f"{procfs}: some task stat files unreadable ({scan.unreadable_reason}): "
                       "their tasks are not counted")
    order = scan.blocked
    if first_seen:
        newest = float("inf")
        order = sorted(order, key=lambda key: first_seen.get(key, newest))  # stable
    limit = max(0, limit)
    chosen, rest = order[:limit], order[limit:]
    tasks, blocked_on = examine(procfs, chosen, stacks if stacks is not None else StackReader(),
                                budget=budget, alive=set(scan.blocked))
    return BlockedTasks(tasks, rest, scan, blocked_on)
