"""readiness: the panic readiness checks as metrics."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from panicwatch.collectors.base import PREFIX, gauge
from panicwatch.reader import HostReader
from panicwatch.readiness.checks import RecentReport, report_from


class ReadinessCollector:
    name = "readiness"

    def __init__(self, min_free_ratio: float, recent: RecentReport | None = None) -> None:
        self.min_free_ratio = min_free_ratio
        self.recent = recent

    def collect(self, reader: HostReader) -> Iterator[Metric]:
        report = report_from(reader, self.min_free_ratio)
        if self.recent is not None:  # for the landing page
            self.recent.publish(report)
        family = GaugeMetricFamily(PREFIX + "readiness_check",
                                   "A panic readiness check: 1 pass, 0 fail "
                                   "(absent when it cannot be evaluated here).",
                                   labels=["check"])
        for check in report.checks:
            if check.passed is not None:
                family.add_metric([check.name], float(check.passed))
        yield family
        yield gauge("panic_ready",
                    "1 when every critical readiness check passes: a panic now leaves a dump.",
                    float(report.ready))
