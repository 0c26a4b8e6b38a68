"""How long sunrpc tasks have been in flight, from repeated reads of the debugfs ``tasks`` files.

The kernel prints no start time, so a task's age counts from the first scrape that saw it: a
lower bound, short by up to one scrape interval. A task is (client id, task id, xid), an xid
of 0 (no request slot) matching any; a task missing from a scrape is forgotten, unless its
client's file could not be read. Pure, no clock of its own, not thread-safe (its collector
holds a lock). The identity rules and the memory bound: docs/kernel-interfaces.md, "rpc".
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

    def update(self, now: float, tasks: Iterable[RpcTask], *,
               retain_clients: Collection[int] = ()) -> tuple[TrackedTask, ...]:
        """Record one scrape: every task currently in flight, from all clients, in input
        order (a (client, task id) seen twice counts once).

        Tracked tasks absent from ``tasks`` are forgotten, except those of clients in
        ``retain_clients`` (clients whose file could not be read this time). Past
        ``max_tracked``, tasks already tracked keep their place and new ones are reported
        with ``tracked=False`` and age 0, until room frees up."""
        old = self._entries
        entries: dict[tuple[int, int], tuple[int, float]] = {}
        rows: list[TrackedTask] = []
        newcomers: list[int] = []  # indexes into rows of tasks not tracked before
        continued = 0
        make = tuple.__new__  # TrackedTask(...) without the NamedTuple __new__ wrapper: 100k per scrape
        for task in tasks:
            key = (task.client_id, task.task_id)
            if key in entries:
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
        return tuple(rows)


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
