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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from panicwatch.exposition import RenderedFamily, prerender
from panicwatch.host import Host
from panicwatch.reader import HostReader, describe_error

log = logging.getLogger("panicwatch.collector")
T = TypeVar("T")
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


class CollectionPause:
    """No cyclic garbage collection while a collector works: the nfs collector makes a tuple
    for every operation of every mount, which starts collections (full ones too, over all the
    scrape holds) that find nothing and cost a sixth of a 1000-mount scrape. Collectors make
    no reference cycles. Counted, so that overlapping scrapes turn it back on only when the
    last one is out, and never while the page is written to a client; left off if it was off."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._paused_by_us = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._holders == 0 and gc.isenabled():
                gc.disable()
                self._paused_by_us = True
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0 and self._paused_by_us:
                    gc.enable()
                    self._paused_by_us = False


collection_paused = CollectionPause()


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
        families = self._timed(self._families)
        while families is not None:
            rendered = self._timed(lambda: self._next(families))
            if rendered is None:
                return
            yield rendered

    def _timed(self, work: Callable[[], T]) -> T:
        start = time.perf_counter()
        with collection_paused():
            result = work()
        self.seconds += time.perf_counter() - start
        return result

    def _families(self) -> Iterator[Metric] | None:
        try:
            return iter(self.area.collect(self.reader))
        except Exception as e:
            self._raised(e)
            return None

    def _next(self, families: Iterator[Metric]) -> RenderedFamily | None:
        """The area's next family that renders; None at its end, or when it raised."""
        while True:
            try:
                family = next(families)
            except StopIteration:
                return None
            except Exception as e:
                self._raised(e)
                return None
            try:
                return prerender(family)
            except Exception as e:
                self.reader.problem(f"{family.name} not written: {describe_error(e)}")

    def _raised(self, error: Exception) -> None:
        # One collector's bug or bad input must not fail the scrape.
        log.debug("collector %s raised", self.area.name, exc_info=True)
        self.reader.problem(describe_error(error))


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
