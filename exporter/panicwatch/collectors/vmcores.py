"""vmcores: dumps waiting in the local crash directory, and the crash each one holds."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from panicwatch.collectors.base import gauge
from panicwatch.exposition import RenderedFamily, label_sets, render_family
from panicwatch.parsers.crash_report import CrashReport
from panicwatch.reader import HostReader
from panicwatch.snapshots.vmcores import Dump, read_inventory
from panicwatch.triage.dumps import CrashCache

CRASH_LABELS = ("dump", "title", "kind", "function", "module", "kernel_release")


def crash_labels(report: CrashReport | None) -> dict[str, str]:
    """The crash's labels: the same crash on many hosts gives the same values."""
    if report is None:
        return {"title": "", "kind": "unknown", "function": "", "module": "",
                "kernel_release": ""}
    return {"title": report.title, "kind": report.kind, "function": report.function or "",
            "module": report.module or "", "kernel_release": report.kernel_release or ""}


class VmcoresCollector:
    name = "vmcores"

    def __init__(self) -> None:
        self.crashes = CrashCache()
        # The per-dump families of the last scrape, reused while the dumps and their crashes
        # are the same objects (the scan and the cache hand out the same ones when unchanged).
        self._rendered: tuple[object, tuple[RenderedFamily, ...]] | None = None

    def _per_dump(self, dumps: tuple[Dump, ...],
                  crashes: dict[str, CrashReport | None]) -> tuple[RenderedFamily, ...]:
        key = (dumps, tuple(crashes.items()))
        if self._rendered is not None and self._rendered[0] == key:
            return self._rendered[1]
        stamps = render_family(
            "panicwatch_vmcore_timestamp_seconds",
            "Capture time of each dump (from its directory name, else mtime).", "gauge",
            label_sets(("dump",), [(d.name,) for d in dumps]), [d.timestamp for d in dumps])
        rows = []
        for dump in dumps:
            if dump.name not in crashes:
                continue  # its log is parsed by a later scrape
            labels = crash_labels(crashes[dump.name])
            rows.append((dump.name, *(labels[k] for k in CRASH_LABELS[1:])))
        info = render_family(
            "panicwatch_vmcore_crash_info",
            "The crash each dump holds, named from its saved kernel log as syzbot titles it "
            "(title empty and kind unknown when the log is missing or holds no report; a dump "
            "appears once its log is parsed).",
            "gauge", label_sets(CRASH_LABELS, rows), [1] * len(rows))
        self._rendered = (key, (stamps, info))
        return stamps, info

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
        crashes = self.crashes.crashes(reader, dumps)
        yield from self._per_dump(dumps, crashes)
        report = crashes.get(newest.name)
        labels = crash_labels(report)
        yield gauge("last_panic_info",
                    "The newest dump's panic: the panic message (numbers and addresses "
                    "stripped), the kind, the crash title and kernel release.", 1.0,
                    {"reason": report.reason if report is not None else "unknown",
                     "kind": labels["kind"], "dump": newest.name, "title": labels["title"],
                     "kernel_release": labels["kernel_release"]})
