"""blocked_tasks: tasks (threads) in uninterruptible sleep (D), by what they wait on, and how
long the longest of each class has been seen in D (followed across scrapes by pid, tid and
start time: a lower bound). Bounded: at most ``max_examined`` D tasks classified a scrape,
the longest-blocked first, and a time budget for stack reads. docs/kernel-interfaces.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from panicwatch.collectors.base import PREFIX, gauge
from panicwatch.parsers.task_state import WAITS
from panicwatch.reader import HostReader
from panicwatch.snapshots.blocked_tasks import (
    DEFAULT_MAX_EXAMINED,
    DEFAULT_STACK_BUDGET,
    StackReader,
    TaskKey,
    read_blocked_tasks,
)

log = logging.getLogger("panicwatch.collector")


class BlockedTasksCollector:
    name = "blocked_tasks"

    def __init__(self, max_examined: int = DEFAULT_MAX_EXAMINED,
                 stack_budget: float = DEFAULT_STACK_BUDGET) -> None:
        if max_examined < 0 or stack_budget < 0:
            raise ValueError("max_examined and stack_budget must be >= 0")
        self.max_examined = max_examined
        self.stack_budget = stack_budget
        # One lock for the whole collection: concurrent scrapes take turns (each is bounded:
        # one pass over procfs plus at most stack_budget), so the tracker and the stack reader
        # see one scrape at a time.
        self._lock = threading.Lock()
        self._first_seen: dict[TaskKey, float] = {}  # every task in D at the last scrape
        self._stacks = StackReader()
        self._stack_blocked_on: TaskKey | None = None

    def collect(self, reader: HostReader) -> Iterator[Metric]:
        with self._lock:
            snap = read_blocked_tasks(reader, limit=self.max_examined, stacks=self._stacks,
                                      budget=self.stack_budget, first_seen=self._first_seen)
            now = time.monotonic()
            previous = self._first_seen
            self._first_seen = {key: previous.get(key, now) for key in snap.scan.blocked}
            first_seen = self._first_seen
            self._note_stack_blocked(snap.stack_blocked_on)

        counts = dict.fromkeys(WAITS, 0)
        longest = dict.fromkeys(WAITS, 0.0)
        without_stack = 0
        for task in snap.tasks:
            counts[task.wait] += 1
            longest[task.wait] = max(longest[task.wait], now - first_seen.get(task.key, now))
            without_stack += not task.stack
        blocked = GaugeMetricFamily(
            PREFIX + "blocked_tasks",
            "Tasks (threads) in uninterruptible sleep (D), by what they wait on: rpc (an RPC to "
            "the server), nfs (the NFS client, no RPC of its own), other. Examined tasks only, "
            "see blocked_tasks_unexamined.", labels=["wait"])
        age = GaugeMetricFamily(
            PREFIX + "blocked_task_longest_seconds",
            "How long the longest-blocked task of this class has been seen in D across scrapes "
            "(a lower bound, short by up to one scrape interval; 0 when none).", labels=["wait"])
        for wait in WAITS:
            blocked.add_metric([wait], counts[wait])
            age.add_metric([wait], longest[wait])
        yield blocked
        yield age
        yield gauge("blocked_tasks_unexamined",
                    f"Tasks in D not examined this scrape: past the cap of {self.max_examined}, "
                    "the most recently blocked are left out. Counted here only, not in blocked_tasks.",
                    float(len(snap.unexamined)))
        yield gauge("blocked_tasks_without_stack",
                    "Examined tasks in D classified by wchan alone: kernel stack not readable "
                    "(not root), or its read blocked or ran out of time.", float(without_stack))

    def _note_stack_blocked(self, key: TaskKey | None) -> None:
        """Log once when a stack read blocks, and once when reads are back."""
        if key is not None and self._stack_blocked_on is None:
            log.warning("blocked_tasks: reading the kernel stack of task %d (pid %d) did not return "
                        "in %.1f s (it may hold its exec lock, stuck in execve on a hung mount): "
                        "such tasks are classified by wchan alone", key.tid, key.pid, self.stack_budget)
        elif key is None and self._stack_blocked_on is not None:
            log.info("blocked_tasks: kernel stack reads are back")
        self._stack_blocked_on = key
