"""readiness: the panic readiness checks as metrics."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from panicwatch.collectors.base import PREFIX, gauge
from panicwatch.reader import HostReader
from panicwatch.readiness import evaluate, is_ready
from panicwatch.snapshots.kdump import read_kdump
from panicwatch.snapshots.kernel import read_kernel
from panicwatch.snapshots.vmcores import read_inventory


class ReadinessCollector:
    name = "readiness"

    def __init__(self, min_free_ratio: float) -> None:
        self.min_free_ratio = min_free_ratio

    def collect(self, reader: HostReader) -> Iterator[Metric]:
        checks = evaluate(reader.snapshot(read_kdump), reader.snapshot(read_inventory),
                          reader.snapshot(read_kernel), self.min_free_ratio)
        family = GaugeMetricFamily(PREFIX + "readiness_check",
                                   "A panic readiness check: 1 pass, 0 fail "
                                   "(absent when it cannot be evaluated here).",
                                   labels=["check"])
        for check in checks:
            if check.passed is not None:
                family.add_metric([check.name], float(check.passed))
        yield family
        yield gauge("panic_ready",
                    "1 when every critical readiness check passes: a panic now leaves a dump.",
                    float(is_ready(checks)))
