"""How long sunrpc tasks have been in flight, from repeated reads of the debugfs ``tasks`` files.

Pure logic, no I/O and no clock of its own: the caller parses every client's ``tasks`` file
(panicwatch.parsers.sunrpc.parse_tasks) and hands all the tasks of one scrape to
``TaskTracker.update(now, tasks)``, with ``now`` from a monotonic clock, in seconds.

The kernel prints no start time for a task (``tk_start`` exists but is not in the file), so the
age is measured from the first scrape that saw the task: it is a lower bound that can be short by
up to one scrape interval, every task is 0 s old on the first scrape, and an exporter restart
starts everything again at 0. That is enough to tell an RPC that has been stuck for ten minutes
from the thousands that come and go between scrapes.

Which task is which: a task is identified by (client id, task id, xid).

* The task id (``tk_pid``) is a 16-bit debugging counter shared by all clients; it wraps, so it
  can come back as a different task. The xid tells them apart: the same (client, task id) with a
  different xid is a new task and its age starts again. A hard task that retransmits keeps its
  xid (the kernel keeps the request slot for all retransmissions), so a task stuck on a dead
  server keeps its age.
* xid 0 means "no request slot": a task waiting for a slot (``xprt_backlog``) or for an NFSv4.1
  session slot has xid 0 until it gets one; a task whose slot was released to restart the call
  (NFS4ERR_DELAY, jukebox) is at xid 0 until it gets the next. A 0 on either side therefore
  matches any xid: the task keeps its age through getting or giving up a slot. (Two different
  tasks would need the same 16-bit id on the same client within one scrape interval to be
  confused by this.) A restart that gets a new xid between two scrapes counts as a new task.
* A task missing from a scrape is forgotten. If a client's file could not be read, pass its id
  in ``retain_clients`` and its tasks are kept (not reported) until the next update.

Memory is bounded by ``max_tracked`` (default 100,000 tasks: 16 MB kept, 30 MB at the peak of an
update, measured on CPython 3.11). Past it: tasks already
tracked keep their place, and new tasks beyond the cap are reported with age 0 and
``tracked=False``, counted in ``TrackerUpdate.untracked``, and not remembered, so each scrape
they are new again (their age stays 0 and they never count as stuck) until room frees up. The
per-update result holds one small object per task; nothing else grows.

Not thread-safe: one TaskTracker belongs to one collector, which holds its own lock around
``update`` (scrapes may run concurrently).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from panicwatch.parsers.sunrpc import RpcTask

DEFAULT_MAX_TRACKED = 100_000


class TrackedTask(NamedTuple):
    """One task of an update and its age. A NamedTuple, like RpcTask: one per task per scrape."""

    task: RpcTask
    first_seen: float  # the ``now`` of the first update that saw this task (caller's clock, seconds)
    age_seconds: float  # now - first_seen, never negative
    tracked: bool = True  # False: over the tracker's cap, not remembered (age stays 0)

    @property
    def major_timeout(self) -> bool:
        return self.task.major_timeout


@dataclass(frozen=True, slots=True)
class TrackerUpdate:
    """What one ``TaskTracker.update`` saw."""

    now: float
    tasks: tuple[TrackedTask, ...]  # every task of the update, in input order, duplicates left out
    new: int  # tasks tracked from this update on (first seen, or the same id with a new xid)
    forgotten: int  # tasks tracked before and gone now (finished, or replaced by a new xid)
    untracked: int  # tasks not remembered because the tracker was full
    duplicates: int  # tasks whose (client id, task id) came earlier in the same update; left out

    def by_client(self) -> dict[int, list[TrackedTask]]:
        """The tasks grouped by client id, each group in input order."""
        groups: dict[int, list[TrackedTask]] = {}
        for tracked in self.tasks:
            groups.setdefault(tracked.task.client_id, []).append(tracked)
        return groups


class TaskTracker:
    """First-seen times of sunrpc tasks across scrapes. See the module docstring."""

    def __init__(self, max_tracked: int = DEFAULT_MAX_TRACKED) -> None:
        if max_tracked < 0:
            raise ValueError("max_tracked must be >= 0")
        self.max_tracked = max_tracked
        # (client id, task id) -> (xid last seen, first seen)
        self._entries: dict[tuple[int, int], tuple[int, float]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries = {}

    def update(self, now: float, tasks: Iterable[RpcTask], *,
               retain_clients: Collection[int] = ()) -> TrackerUpdate:
        """Record one scrape: every task currently in flight, from all clients.

        Tracked tasks absent from ``tasks`` are forgotten, except those of clients in
        ``retain_clients`` (clients whose file could not be read this time)."""
        old = self._entries
        entries: dict[tuple[int, int], tuple[int, float]] = {}
        rows: list[TrackedTask] = []
        newcomers: list[int] = []  # indexes into rows of tasks not tracked before
        continued = duplicates = 0
        make = tuple.__new__  # TrackedTask(...) without the NamedTuple __new__ wrapper: 100k per scrape
        for task in tasks:
            key = (task.client_id, task.task_id)
            if key in entries:
                duplicates += 1
                continue
            before = old.get(key)
            xid = task.xid
            if before is not None and (before[0] == xid or not before[0] or not xid):
                first = before[1]
                continued += 1
            else:
                first = now
                newcomers.append(len(rows))
            entries[key] = (xid, first)
            rows.append(make(TrackedTask, (task, first, now - first if now > first else 0.0, True)))
        # Places go to continuing tasks, then to retained ones, then to newcomers in input order.
        room = max(self.max_tracked - continued, 0)
        retained = 0
        if retain_clients:
            keep = set(retain_clients)
            for key, value in old.items():
                if retained < room and key[0] in keep and key not in entries:
                    entries[key] = value
                    retained += 1
        room -= retained
        untracked = newcomers[room:]
        for index in untracked:
            tracked = rows[index]
            del entries[(tracked.task.client_id, tracked.task.task_id)]
            rows[index] = tracked._replace(tracked=False)
        self._entries = entries
        return TrackerUpdate(now=now, tasks=tuple(rows), new=len(newcomers) - len(untracked),
                             forgotten=len(old) - continued - retained, untracked=len(untracked),
                             duplicates=duplicates)


@dataclass(frozen=True, slots=True)
class ServerTasks:
    """The tasks of one server (all clients that talk to it), for ``rpc_tasks``,
    ``rpc_task_oldest_age_seconds`` and ``rpc_tasks_stuck``."""

    server: str
    tasks: int
    oldest_age_seconds: float  # 0.0 without tasks
    stuck: int  # tasks with age_seconds >= stuck_after
    major_timeouts: int  # tasks carrying RPC_CALL_MAJORSEEN


def aggregate_by_server(tracked: Iterable[TrackedTask], servers: Mapping[int, str], *, stuck_after: float,
                        unknown_server: str = "unknown") -> dict[str, ServerTasks]:
    """Per-server totals. ``servers`` maps client id -> server address (the caller joins clients to
    transports); every server in it appears, with zeros if it has no task, so gauges drop to 0
    instead of vanishing. Tasks of a client missing from ``servers`` go to ``unknown_server``.
    Sorted by server."""
    totals: dict[str, list[float]] = {server: [0, 0.0, 0, 0] for server in servers.values()}
    for item in tracked:
        server = servers.get(item.task.client_id, unknown_server)
        total = totals.get(server)
        if total is None:
            total = totals[server] = [0, 0.0, 0, 0]
        total[0] += 1
        total[1] = max(total[1], item.age_seconds)
        total[2] += item.age_seconds >= stuck_after
        total[3] += item.task.major_timeout
    return {server: ServerTasks(server, int(n), oldest, int(stuck), int(major))
            for server, (n, oldest, stuck, major) in sorted(totals.items())}
