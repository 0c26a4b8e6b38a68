"""The collector framework: runs each area, times it, and contains its failures.

Each area yields metric families from a HostReader. The framework emits
``panicwatch_collector_success`` and ``panicwatch_collector_duration_seconds`` for every
area; an exception or an unreadable/garbled file fails that area only, and is logged
once when an area's state changes (not on every scrape).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from panicwatch.exposition import RenderedFamily, prerender
from panicwatch.host import Host
from panicwatch.reader import HostReader, describe_error

log = logging.getLogger("panicwatch.collector")
PREFIX = "panicwatch_"


class Area(Protocol):
    name: str

    def collect(self, reader: HostReader) -> Iterable[Metric]: ...


def gauge(name: str, doc: str, value: float | None = None,
          labels: dict[str, str] | None = None) -> GaugeMetricFamily:
    """A gauge family; with a value, holding that one sample."""
    family = GaugeMetricFamily(PREFIX + name, doc, labels=list(labels or {}))
    if value is not None:
        family.add_metric(list((labels or {}).values()), value)
    return family


@contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic garbage collection during a scrape: the nfs collector makes a tuple for every
    operation of every mount, which starts collections (full ones too, over everything the
    scrape holds) that find nothing and cost a sixth of a 1000-mount scrape. The scrape makes
    no reference cycles; what others made is collected after it. Left off if it was off."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class AreaRun:
    """One area's families, each rendered as soon as it is made and handed on at once, so a
    large area (the nfs bulk) streams to the client instead of being held whole.

    A family that cannot be rendered is left out and the area goes on; an exception from the
    area itself ends it, keeping what it yielded before. Either is one of its problems.
    ``seconds`` counts the area's own work, not the time the client takes to read.
    """

    def __init__(self, area: Area, reader: HostReader) -> None:
        self.area = area
        self.reader = reader
        self.seconds = 0.0

    def __iter__(self) -> Iterator[RenderedFamily]:
        start = time.perf_counter()
        families = iter(self.area.collect(self.reader))
        while True:
            try:
                family = next(families)
            except StopIteration:
                break
            except Exception as e:  # one area's bug or bad input must not fail the scrape
                log.debug("collector %s raised", self.area.name, exc_info=True)
                self.reader.problem(describe_error(e))
                break
            try:
                rendered = prerender(family)
            except Exception as e:
                self.reader.problem(f"{family.name} not written: {describe_error(e)}")
                continue
            self.seconds += time.perf_counter() - start
            yield rendered
            start = time.perf_counter()
        self.seconds += time.perf_counter() - start


class PanicwatchCollector(Collector):
    """All areas behind one collector, so the per-area self metrics form one family each."""

    def __init__(self, host: Host, areas: list[Area]) -> None:
        self.host = host
        self.areas = areas
        self._lock = threading.Lock()
        self._last_problems: dict[str, tuple[str, ...]] = {}

    def describe(self) -> list[Metric]:
        return []  # never touch the host at registration

    def collect(self) -> Iterator[Metric]:
        success = gauge("collector_success", "Whether a collector succeeded (1) or failed (0).",
                        labels={"collector": ""})
        duration = gauge("collector_duration_seconds", "How long a collector took.",
                         labels={"collector": ""})
        scrape = HostReader(self.host)  # snapshots read once and shared by this scrape's areas
        with collection_paused():
            for area in self.areas:
                reader = scrape.sibling()
                run = AreaRun(area, reader)
                yield from run
                self._log_transition(area.name, reader.problems)
                success.add_metric([area.name], 0.0 if reader.problems else 1.0)
                duration.add_metric([area.name], run.seconds)
        yield success
        yield duration

    def _log_transition(self, name: str, problems: list[str]) -> None:
        state = tuple(problems)
        with self._lock:
            previous = self._last_problems.get(name, ())
            self._last_problems[name] = state
        if state == previous:
            return
        if state:
            log.warning("collector %s failed: %s", name, "; ".join(state))
        else:
            log.info("collector %s recovered", name)
