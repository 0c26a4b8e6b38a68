"""kernel: panic sysctls, lockup counters, pstore records, IO pressure."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from panicwatch.collectors.base import PREFIX
from panicwatch.reader import HostReader
from panicwatch.snapshots.kernel import read_kernel


class KernelCollector:
    name = "kernel"

    def collect(self, reader: HostReader) -> Iterator[Metric]:
        k = reader.snapshot(read_kernel)
        settings = GaugeMetricFamily(
            PREFIX + "kernel_panic_setting",
            "Kernel sysctls that decide whether a lockup, oops or warning panics "
            "(kernel.<setting>; absent when this kernel lacks it).", labels=["setting"])
        for name, value in k.settings.items():
            settings.add_metric([name], value)
        yield settings
        lockups = CounterMetricFamily(
            PREFIX + "kernel_lockups", "Lockups, stalls, oopses and warnings since boot, "
            "by the kernel's own counters.", labels=["kind"])
        for kind, value in k.lockups.items():
            lockups.add_metric([kind], value)
        yield lockups
        pstore = GaugeMetricFamily(PREFIX + "pstore_records",
                                   "Records in /sys/fs/pstore (a crash log kept across reboot).",
                                   labels=["backend", "type"])
        for (backend, type_), count in sorted(k.pstore_records.items()):
            pstore.add_metric([backend, type_], count)
        yield pstore
        if k.io_pressure is not None:
            io = CounterMetricFamily(PREFIX + "pressure_io_stalled_seconds",
                                     "Time some/all tasks stalled on IO (/proc/pressure/io).",
                                     labels=["kind"])
            io.add_metric(["some"], k.io_pressure.some_total_us / 1e6)
            if k.io_pressure.full_total_us is not None:
                io.add_metric(["full"], k.io_pressure.full_total_us / 1e6)
            yield io
