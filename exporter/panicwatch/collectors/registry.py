"""Build the Prometheus registry from the settings: the enabled areas and build_info."""

from __future__ import annotations

import platform
from collections.abc import Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from panicwatch import __version__
from panicwatch.collectors.base import PREFIX, Area, PanicwatchCollector
from panicwatch.collectors.blocked_tasks import BlockedTasksCollector
from panicwatch.collectors.kdump import KdumpCollector
from panicwatch.collectors.kernel import KernelCollector
from panicwatch.collectors.nfs import NfsCollector
from panicwatch.collectors.nfs_sockets import NfsSocketsCollector
from panicwatch.collectors.readiness import ReadinessCollector
from panicwatch.collectors.rpc import RpcTasksCollector
from panicwatch.collectors.vmcores import VmcoresCollector
from panicwatch.host import Host
from panicwatch.readiness.checks import RecentReport
from panicwatch.settings import Settings


class BuildInfo(Collector):
    def collect(self):  # type: ignore[no-untyped-def]
        info = GaugeMetricFamily(PREFIX + "build_info", "panicwatch's version.",
                                 labels=["version", "pythonversion"])
        info.add_metric([__version__, platform.python_version()], 1.0)
        yield info


def host_of(settings: Settings) -> Host:
    return Host.from_paths(settings.path_rootfs, settings.path_procfs, settings.path_sysfs)


def make_areas(settings: Settings, recent: RecentReport | None = None) -> list[Area]:
    areas: dict[str, Area] = {
        "kdump": KdumpCollector(),
        "vmcores": VmcoresCollector(),
        "kernel": KernelCollector(),
        "readiness": ReadinessCollector(settings.collector_kdump_min_free_ratio, recent),
        "nfs": NfsCollector(settings),
        "rpc": RpcTasksCollector(settings.collector_rpc_stuck_threshold),
        "nfs_sockets": NfsSocketsCollector(settings.collector_nfs_sockets_netns),
        "blocked_tasks": BlockedTasksCollector(),
    }
    return [area for name, area in areas.items() if settings.collector_enabled(name)]


def build_registry(settings: Settings, extra: Sequence[Area] = (),
                   recent: RecentReport | None = None) -> CollectorRegistry:
    """The areas the settings enable, plus ``extra`` (the canary and the kernel log, which
    only `serve` runs); the readiness area publishes its report to ``recent``."""
    registry = CollectorRegistry()
    registry.register(BuildInfo())
    registry.register(PanicwatchCollector(host_of(settings),
                                          [*make_areas(settings, recent), *extra]))
    return registry
