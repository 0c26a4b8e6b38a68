"""kernel_log: events the kernel printed since panicwatch started, from its /dev/kmsg watcher.

On kernels without /sys/kernel/*_count and hung_task_detect_count (before 6.13/6.16, which
is most NFS clients in production), the kernel log is the only record of a lockup
precursor or a server that stopped answering.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from panicwatch.background.kernel_log import KmsgWatcher
from panicwatch.collectors.base import PREFIX, gauge
from panicwatch.parsers.kmsg import EVENT_KINDS, SERVER_KINDS
from panicwatch.reader import HostReader


class KernelLogCollector:
    name = "kernel_log"

    def __init__(self, watcher: KmsgWatcher) -> None:
        self.watcher = watcher

    def collect(self, reader: HostReader) -> Iterator[Metric]:
        snap = self.watcher.snapshot()
        # Without permission this is not a failure of the exporter: the watcher logged
        # why once, and kernel_log_reading says so on every scrape.
        yield gauge("kernel_log_reading",
                    "1 while /dev/kmsg is being read (0: no permission or no device; the "
                    "log says why).", float(snap.reading))
        if not snap.reading and not snap.records_seen:
            return
        events = CounterMetricFamily(
            PREFIX + "kernel_log_events",
            "Kernel log events since panicwatch started, by class; server only for the NFS "
            "and lockd events.", labels=["event", "server"])
        counts = dict(snap.counts)
        for kind in EVENT_KINDS:  # every class from the start, so rate() sees the first one
            if kind not in SERVER_KINDS:
                counts.setdefault((kind, ""), 0)
        for (kind, server), count in sorted(counts.items()):
            events.add_metric([kind, server], count)
        yield events
        not_responding = GaugeMetricFamily(
            PREFIX + "nfs_servers_not_responding",
            "NFS servers the kernel reported 'not responding' with no 'OK' since (1 each); "
            "the kernel rate-limits these messages, so the canary is the measurement.",
            labels=["server"])
        for server in sorted(snap.not_responding):
            not_responding.add_metric([server], 1.0)
        yield not_responding
        yield CounterMetricFamily(PREFIX + "kernel_log_records", "Kernel log records read.",
                                  value=snap.records_seen)
        yield CounterMetricFamily(PREFIX + "kernel_log_records_dropped",
                                  "Records the ring buffer overwrote before they were read "
                                  "(from gaps in the sequence numbers).", value=snap.dropped)
