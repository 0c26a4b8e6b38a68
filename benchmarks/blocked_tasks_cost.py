#!/usr/bin/env python3
"""Scrape cost of the blocked_tasks collector on a crowded host: procfs (what it does) vs psutil.

Scenarios, each measured as the median (and min/max) of --runs collections:

1. --processes (default 20,000) ``sleep`` processes: one task each.
2. --thread-processes x --threads (default 20 x 1,000) threads in Python processes: 20,000 tasks
   where psutil's per-process view cannot see a thread's state.
3. --blocked (default 2,000) threads really in D (stat() on a frozen FUSE mount, interrupted by a
   signal): over the cap of 1,000, so the collector reads wchan and stack for 1,000 of them.

Methods: ``collector`` is BlockedTasksCollector().collect() (scan + wchan/stack of D tasks +
metric families). ``psutil`` does the same job through psutil (process_iter, status(),
num_threads(), threads(), Process(tid).status()/create_time()) and the same examination.
``procfs, task/ always`` lists every process's task/ directory instead of reading the leader's
stat first (the shortcut the collector takes for single-threaded processes).

Everything started is killed and reaped in ``finally`` (a FUSE mount is thawed first: its stuck
threads cannot exit before). Needs /dev/fuse for scenario 3 (and mfusepy, a test dependency).

    .venv/bin/python benchmarks/blocked_tasks_cost.py [--processes 20000] [--runs 7]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil

from panicwatch.collectors.blocked_tasks import BlockedTasksCollector
from panicwatch.host import Host
from panicwatch.parsers.task_state import parse_stat
from panicwatch.reader import HostReader
from panicwatch.snapshots import blocked_tasks as bt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from freezefs import FreezeFS

THREADS_CHILD = r"""
import sys, threading
stop = threading.Event()
for _ in range(int(sys.argv[1])):
    threading.Thread(target=stop.wait, daemon=True).start()
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.read()
"""

# N threads stat() a name on the frozen mount; on "kick" the main thread signals each of them
# (pthread_kill): the interruptible FUSE wait becomes a killable one, state D.
BLOCKED_CHILD = r"""
import os, signal, sys, threading
signal.signal(signal.SIGUSR1, lambda *a: None)
workers = [threading.Thread(target=os.stat, args=(sys.argv[1],), daemon=True)
           for _ in range(int(sys.argv[2]))]
for w in workers:
    w.start()
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
for w in workers:
    signal.pthread_kill(w.ident, signal.SIGUSR1)
sys.stdout.write("kicked\n"); sys.stdout.flush()
sys.stdin.read()
os._exit(0)
"""


# ---------------------------------------------------------------------------------------------
# The methods
# ---------------------------------------------------------------------------------------------


def psutil_scan() -> bt.Scan:
    """The D tasks as psutil can find them (it reads psutil.PROCFS_PATH, /proc here)."""
    blocked: list[bt.TaskKey] = []
    processes = tasks = 0
    ticks = os.sysconf("SC_CLK_TCK")
    boot = psutil.boot_time()

    def start_of(p: psutil.Process) -> int:  # create_time is boot time + stat field 22 / ticks
        return round((p.create_time() - boot) * ticks)

    for proc in psutil.process_iter():
        try:
            with proc.oneshot():  # status() and create_time() from one stat read
                status = proc.status()
                threads = proc.num_threads()  # from /proc/<pid>/status: a second read
                processes += 1
                if threads == 1 and status != psutil.STATUS_ZOMBIE:
                    tasks += 1
                    if status == psutil.STATUS_DISK_SLEEP:
                        blocked.append(bt.TaskKey(proc.pid, proc.pid, start_of(proc)))
                    continue
            for thread in proc.threads():  # reads every thread's stat, keeps only CPU times
                try:
                    t = psutil.Process(thread.id)  # /proc/<tid>: another stat read (create_time)
                    with t.oneshot():
                        tasks += 1
                        if t.status() == psutil.STATUS_DISK_SLEEP:  # and another
                            blocked.append(bt.TaskKey(proc.pid, thread.id, start_of(t)))
                except psutil.NoSuchProcess:
                    continue
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return bt.Scan(blocked, processes, tasks)


def procfs_scan_all_task_dirs(procfs: str) -> bt.Scan:
    """The collector's scan without its shortcut: task/ listed for every process."""
    root = os.fsencode(procfs)
    blocked: list[bt.TaskKey] = []
    processes = tasks = 0
    for name in os.listdir(root):
        if not name.isdigit():
            continue
        try:
            tids = os.listdir(root + b"/" + name + b"/task")
        except OSError:
            continue
        processes += 1
        for tid in tids:
            try:
                stat = parse_stat(bt._read(root + b"/" + name + b"/task/" + tid + b"/stat", 4096))
            except OSError:
                continue
            if stat is not None:
                tasks += 1
                if stat.state == "D":
                    blocked.append(bt.TaskKey(int(name), int(tid), stat.start))
    return bt.Scan(blocked, processes, tasks)


def collector_method(host: Host) -> Callable[[], int]:
    area = BlockedTasksCollector()

    def run() -> int:
        families = list(area.collect(HostReader(host)))
        return int(sum(s.value for s in families[0].samples) + families[2].samples[0].value)

    return run


def scan_method(host: Host, scan: Callable[[], bt.Scan]) -> Callable[[], int]:
    """A scan plus the collector's examination (cap 1000, wchan and stack), no exposition."""
    stacks = bt.StackReader()

    def run() -> int:
        found = scan()
        bt.examine(host.proc(), found.blocked[: bt.DEFAULT_MAX_EXAMINED], stacks, alive=set(found.blocked))
        return len(found.blocked)

    return run


def measure(methods: dict[str, Callable[[], int]], runs: int) -> dict[str, float]:
    """Median seconds per method; the methods take turns (rotating order), so that a drift of
    the machine or of the page cache during the runs does not favour one of them."""
    for run in methods.values():
        run()  # warm up (psutil's process_iter cache, the dentries of /proc)
    times: dict[str, list[float]] = {name: [] for name in methods}
    found: dict[str, int] = {}
    names = list(methods)
    for i in range(runs):
        for name in names[i % len(names):] + names[: i % len(names)]:
            start = time.perf_counter()
            found[name] = methods[name]()
            times[name].append(time.perf_counter() - start)
    for name, ts in times.items():
        print(f"  {name:<26} median {statistics.median(ts) * 1000:8.1f} ms  (min {min(ts) * 1000:7.1f}, "
              f"max {max(ts) * 1000:7.1f})  D tasks found: {found[name]}", flush=True)
    return {name: statistics.median(ts) for name, ts in times.items()}


def compare(title: str, runs: int) -> None:
    host = Host.from_paths("/")
    scan = bt.scan_blocked(host.proc())
    print(f"\n{title}: {scan.processes} processes, {scan.tasks} tasks, {len(scan.blocked)} in D", flush=True)
    medians = measure({
        "collector (procfs)": collector_method(host),
        "psutil": scan_method(host, psutil_scan),
        "procfs, task/ always": scan_method(host, lambda: procfs_scan_all_task_dirs(str(host.proc()))),
    }, runs)
    ours = medians["collector (procfs)"]
    print(f"  -> collector {ours / max(scan.tasks, 1) * 1e6:.1f} us per task; psutil takes "
          f"{medians['psutil'] / ours:.1f}x as long", flush=True)


# ---------------------------------------------------------------------------------------------
# The crowd
# ---------------------------------------------------------------------------------------------


def raise_limits(tasks: int) -> None:
    """Enough processes for the crowd (root ignores RLIMIT_NPROC, others may not); pid_max is a
    system setting we do not touch: say so when it is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    want = tasks + 1000
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NPROC, (new, hard))
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    if tasks + len(psutil.pids()) + 100 > pid_max:
        sys.exit(f"kernel.pid_max is {pid_max}: too low for {tasks} more tasks")


@contextlib.contextmanager
def sleepers(n: int) -> Iterator[None]:
    """n ``sleep 600`` processes in one process group, all killed and reaped on the way out."""
    procs: list[subprocess.Popen] = []
    start = time.monotonic()
    try:
        for _ in range(n):
            group = procs[0].pid if procs else 0
            procs.append(subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL,
                                          process_group=group))
        print(f"started {n} processes in {time.monotonic() - start:.1f} s", flush=True)
        yield
    finally:
        if procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(procs[0].pid, signal.SIGKILL)
            for p in procs:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait()


@contextlib.contextmanager
def threaded(processes: int, threads: int) -> Iterator[None]:
    procs: list[subprocess.Popen] = []
    try:
        for _ in range(processes):
            procs.append(subprocess.Popen([sys.executable, "-c", THREADS_CHILD, str(threads)],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for p in procs:
            assert p.stdout.readline() == "ready\n"
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


@contextlib.contextmanager
def blocked_threads(n: int) -> Iterator[None]:
    with tempfile.TemporaryDirectory() as base:
        (Path(base) / "mnt").mkdir()
        with FreezeFS(Path(base) / "mnt", max_freeze=600) as fs:
            target = fs.path / "hello.txt"
            os.stat(target)  # known name: the stats below revalidate side by side
            child = None
            fs.freeze()
            try:
                child = subprocess.Popen([sys.executable, "-c", BLOCKED_CHILD, str(target), str(n)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                assert child.stdout.readline() == "ready\n"
                fs.wait_held(min(n, 10), timeout=30)  # libfuse holds 10, the kernel queues the rest
                time.sleep(1.0)
                child.stdin.write("kick\n")
                child.stdin.flush()
                assert child.stdout.readline() == "kicked\n"
                deadline = time.monotonic() + 30
                while len(bt.scan_blocked("/proc").blocked) < n and time.monotonic() < deadline:
                    time.sleep(0.1)
                yield
            finally:
                fs.thaw()  # first: a thread in D on a held request cannot exit before the reply
                if child is not None:
                    child.kill()
                    child.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=20_000)
    parser.add_argument("--thread-processes", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1000)
    parser.add_argument("--blocked", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    raise_limits(max(args.processes, args.thread_processes * args.threads))
    print(f"python {sys.version.split()[0]}, psutil {psutil.__version__}, {os.cpu_count()} CPUs, "
          f"euid {os.geteuid()}", flush=True)
    compare("idle host", args.runs)
    if args.processes:
        with sleepers(args.processes):
            compare(f"{args.processes} sleep processes", args.runs)
    if args.thread_processes and args.threads:
        with threaded(args.thread_processes, args.threads):
            compare(f"{args.thread_processes} processes x {args.threads} threads", args.runs)
    if args.blocked:
        with blocked_threads(args.blocked):
            compare(f"{args.blocked} threads in D on a frozen FUSE mount", args.runs)


if __name__ == "__main__":
    main()
