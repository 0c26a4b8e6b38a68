"""rpc: the NFS client's RPC layer: its call totals, the transports' queues per server, and
the RPC tasks in flight per server, with their ages.

The kernel prints no task age, so each task is followed across scrapes (TaskTracker) and
its age is how long it has been seen: a lower bound, short by up to one scrape interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from panicwatch.collectors.base import PREFIX, gauge
from panicwatch.reader import HostReader
from panicwatch.snapshots.nfs import read_rpc_nfs
from panicwatch.snapshots.rpc import DebugfsUnavailable, read_rpc_clients, read_transports
from panicwatch.tracking.rpc_task_ages import TaskTracker, aggregate_by_server

log = logging.getLogger("panicwatch.collector")


class RpcTasksCollector:
    name = "rpc"

    def __init__(self, stuck_after: float) -> None:
        self.stuck_after = stuck_after
        self._lock = threading.Lock()
        self._tracker = TaskTracker()
        self._unavailable: str | None = None

    def collect(self, reader: HostReader) -> Iterator[Metric]:
        yield from client_totals(reader)
        yield from transport_metrics(reader)
        yield from self.task_metrics(reader)

    def task_metrics(self, reader: HostReader) -> Iterator[Metric]:
        try:
            clients = read_rpc_clients(reader)
        except DebugfsUnavailable as e:
            # Not a failure: most hosts do not mount debugfs for us. Said once.
            if str(e) != self._unavailable:
                log.info("rpc: debugfs sunrpc not available (%s): no RPC task metrics", e)
                self._unavailable = str(e)
            yield gauge("rpc_debugfs_available",
                        "1 when debugfs sunrpc could be read (root, debugfs mounted, NFS in use).",
                        0.0)
            return
        self._unavailable = None
        yield gauge("rpc_debugfs_available",
                    "1 when debugfs sunrpc could be read (root, debugfs mounted, NFS in use).", 1.0)
        with self._lock:
            update = self._tracker.update(time.monotonic(), clients.tasks,
                                          retain_clients=clients.unreadable)
        by_server = aggregate_by_server(update, clients.servers, stuck_after=self.stuck_after)
        families = {
            "tasks": ("rpc_tasks", "RPC tasks in flight to the server."),
            "oldest": ("rpc_task_oldest_age_seconds",
                       "How long the oldest task in flight has been seen (a lower bound)."),
            "stuck": ("rpc_tasks_stuck",
                      "Tasks in flight longer than --collector.rpc.stuck-threshold."),
            "major": ("rpc_tasks_major_timeout",
                      "Tasks that have hit a major timeout and are still waiting (hard mounts: "
                      "'server not responding, still trying')."),
        }
        out = {k: GaugeMetricFamily(PREFIX + name, doc, labels=["server"])
               for k, (name, doc) in families.items()}
        for server, agg in sorted(by_server.items()):
            out["tasks"].add_metric([server], agg.tasks)
            out["oldest"].add_metric([server], agg.oldest_age_seconds)
            out["stuck"].add_metric([server], agg.stuck)
            out["major"].add_metric([server], agg.major_timeouts)
        yield from out.values()


def client_totals(reader: HostReader) -> Iterator[Metric]:
    """The NFS client's RPC totals (/proc/net/rpc/nfs; absent without the NFS client)."""
    rpc = read_rpc_nfs(reader)
    if rpc is None:
        return
    yield CounterMetricFamily(PREFIX + "rpc_calls", "RPC calls made by the NFS client "
                              "(/proc/net/rpc/nfs; 32-bit, wraps).", value=rpc.calls)
    yield CounterMetricFamily(PREFIX + "rpc_retransmissions",
                              "RPC calls the NFS client retransmitted.", value=rpc.retransmissions)
    yield CounterMetricFamily(PREFIX + "rpc_auth_refreshes",
                              "RPC credential refreshes by the NFS client.",
                              value=rpc.auth_refreshes)


def transport_metrics(reader: HostReader) -> Iterator[Metric]:
    """Tasks queued on each server's RPC transports, summed over them (sysfs, 5.14+)."""
    transports = read_transports(reader)
    if not transports:
        return
    queued = GaugeMetricFamily(
        PREFIX + "rpc_transport_queue_tasks",
        "Tasks waiting on the server's RPC transports: for a request slot (backlog), to "
        "send (sending), for a reply (pending), for rpcbind (binding).",
        labels=["server", "queue"])
    assigned = GaugeMetricFamily(PREFIX + "rpc_transport_tasks",
                                 "Tasks that picked one of the server's transports.",
                                 labels=["server"])
    congestion = GaugeMetricFamily(
        PREFIX + "rpc_transport_congestion_ratio",
        "Requests in flight over the congestion window (1: the client is holding requests "
        "back).", labels=["server"])
    for server, infos in sorted(transports.items()):
        for queue in ("backlog", "sending", "pending", "binding"):
            queued.add_metric([server, queue], sum(getattr(i, f"{queue}_q_len") or 0 for i in infos))
        assigned.add_metric([server], sum(i.tasks_queuelen or 0 for i in infos))
        window = sum(i.cong_win or 0 for i in infos)
        if window:
            congestion.add_metric([server], sum(i.cur_cong or 0 for i in infos) / window)
    yield from (queued, assigned, congestion)
