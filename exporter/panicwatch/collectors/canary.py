"""canary: the probe threads' latest state (read under a lock, never waiting on a probe)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from panicwatch.background.canary import Canary
from panicwatch.collectors.base import PREFIX, gauge
from panicwatch.reader import HostReader


class CanaryCollector:
    name = "canary"

    def __init__(self, canary: Canary) -> None:
        self.canary = canary

    def collect(self, reader: HostReader) -> Iterator[Metric]:
        state = self.canary.snapshot()
        labels = ["mountpoint"]
        duration = HistogramMetricFamily(
            PREFIX + "canary_probe_duration_seconds",
            "How long each canary probe (statvfs on the mount point) took.", labels=labels)
        timeouts = CounterMetricFamily(
            PREFIX + "canary_probe_timeouts_total",
            "Probes unanswered after --collector.canary.timeout (each counted once, while still "
            "stuck).",
            labels=labels)
        errors = CounterMetricFamily(
            PREFIX + "canary_probe_errors_total", "Probes that failed, by errno.",
            labels=["mountpoint", "error"])
        inflight = GaugeMetricFamily(
            PREFIX + "canary_probe_inflight_seconds",
            "Age of the probe in flight (0 when none): grows while a mount does not answer.",
            labels=labels)
        success = GaugeMetricFamily(
            PREFIX + "canary_last_success_timestamp_seconds",
            "When a probe last succeeded (Unix time).", labels=labels)
        for t in state.targets:
            duration.add_metric([t.path], t.buckets, t.duration_sum)
            timeouts.add_metric([t.path], t.timeouts)
            for error, count in sorted(t.errors.items()):
                errors.add_metric([t.path, error], count)
            inflight.add_metric([t.path], t.inflight_seconds)
            if t.last_success is not None:
                success.add_metric([t.path], t.last_success)
        yield from (duration, timeouts, errors, inflight, success)
        yield gauge("canary_targets", "Paths the canary probes.", len(state.targets))
        yield gauge("canary_targets_over_limit",
                    "Paths left unprobed because of --collector.canary.max-targets.",
                    state.over_limit)
        if state.lag_buckets is not None:
            lag = HistogramMetricFamily(
                PREFIX + "canary_scheduler_lag_seconds",
                "How late the scheduler-lag ticker woke after each short sleep: CPU "
                "starvation and soft-lockup precursors.")
            lag.add_metric([], state.lag_buckets, state.lag_sum)
            yield lag
