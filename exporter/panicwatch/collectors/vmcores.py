"""vmcores: dumps waiting in the local crash directory, and why the last panic happened."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from panicwatch.collectors.base import gauge
from panicwatch.reader import HostReader
from panicwatch.snapshots.vmcores import PanicReasonCache, read_inventory


class VmcoresCollector:
    name = "vmcores"

    def __init__(self) -> None:
        self.reasons = PanicReasonCache()

    def collect(self, reader: HostReader) -> Iterator[Metric]:
        inv = reader.snapshot(read_inventory)
        if inv.crash_dir is None:
            return  # remote or unreachable target: nothing local to count
        dumps = inv.dumps
        yield gauge("vmcores", "Crash dumps in the local crash directory (incomplete included).",
                    len(dumps))
        yield gauge("vmcores_incomplete", "Crash dumps whose capture did not finish.",
                    sum(d.incomplete for d in dumps))
        yield gauge("vmcore_bytes", "Bytes of dump files in the local crash directory.",
                    sum(d.bytes for d in dumps))
        newest = inv.newest
        if newest is None:
            return
        yield gauge("vmcore_newest_timestamp_seconds",
                    "Capture time of the newest dump (from its directory name, else mtime).",
                    newest.timestamp)
        why = self.reasons.get(reader, newest)
        yield gauge("last_panic_info",
                    "The newest dump's panic reason and kind, read from its saved dmesg.", 1.0,
                    {"reason": why.reason, "kind": why.kind, "dump": newest.name})
