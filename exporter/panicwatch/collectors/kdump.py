"""kdump: crash kernel loaded, crash memory reserved/requested/recommended, service, target."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from panicwatch.collectors.base import gauge
from panicwatch.reader import HostReader
from panicwatch.snapshots.kdump import KdumpState, read_kdump


class KdumpCollector:
    name = "kdump"

    def collect(self, reader: HostReader) -> Iterator[Metric]:
        yield from kdump_metrics(reader.snapshot(read_kdump))


def kdump_metrics(k: KdumpState) -> Iterator[Metric]:
    yield gauge("kdump_loaded",
                "Whether a crash kernel is loaded (kexec_crash_loaded) or fadump is registered.",
                float(k.loaded))
    yield gauge("kdump_crash_memory_reserved_bytes",
                "Memory reserved for the crash kernel (kexec_crash_size, /proc/iomem "
                "'Crash kernel' ranges, or fadump mem_reserved).", k.reserved_bytes)
    if k.request.present and k.request.resolved:
        yield gauge("kdump_crash_memory_requested_bytes",
                    "Memory crashkernel= on the kernel command line resolves to on this RAM "
                    "(0 when it is invalid or no range matches).", k.request.total)
    if k.recommendation is not None:
        yield gauge("kdump_crash_memory_recommended_bytes",
                    "The distribution's recommended crash kernel reservation for this RAM and "
                    "architecture.", k.recommendation.size)
    yield gauge("kdump_service_enabled",
                "Whether the kdump service is enabled at boot (and, on Debian, USE_KDUMP=1).",
                float(k.service.enabled))
    t = k.target
    yield gauge("kdump_dump_target_info", "Where the capture kernel writes dumps.", 1.0,
                {"path": t.target.label, "type": t.target.type})
    if t.free_bytes is not None:
        yield gauge("kdump_dump_target_free_bytes",
                    "Free bytes on a local dump target's filesystem (for unprivileged users).",
                    t.free_bytes, {"path": t.target.label, "type": t.target.type})
    if k.test is not None:
        yield gauge("kdump_test_success",
                    "Whether the last `kdumpctl test` captured a dump (1) or not (0).",
                    float(k.test.status == "success"))
        if k.test.timestamp is not None:
            yield gauge("kdump_test_timestamp_seconds",
                        "When the last `kdumpctl test` was started (Unix time).", k.test.timestamp)
