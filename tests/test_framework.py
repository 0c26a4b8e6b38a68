"""The collector framework: failures stay in their area and are logged once per change."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from conftest import scrape_text, value
from panicwatch.collectors.base import PanicwatchCollector
from panicwatch.exposition import render_all
from panicwatch.host import Host


class Boom:
    name = "boom"

    def __init__(self) -> None:
        self.fail = True

    def collect(self, reader):
        if self.fail:
            raise RuntimeError("kaput")
        yield GaugeMetricFamily("panicwatch_boom", "ok", value=1)


class Partial:
    name = "partial"

    def collect(self, reader):
        reader.integer(reader.host.sys_kernel("kexec_crash_size"))  # garbled -> problem
        yield GaugeMetricFamily("panicwatch_partial", "still here", value=7)


def test_failures_are_contained_and_logged_once_per_change(tmp_path, caplog):
    (tmp_path / "sys/kernel").mkdir(parents=True)
    (tmp_path / "sys/kernel/kexec_crash_size").write_text("garbage\n")
    boom = Boom()
    registry = CollectorRegistry()
    registry.register(PanicwatchCollector(Host.from_paths(tmp_path), [boom, Partial()]))
    caplog.set_level(logging.INFO, logger="panicwatch.collector")

    for _ in range(3):
        s = scrape_text(render_all(registry).decode())
    assert value(s, "panicwatch_collector_success", collector="boom") == 0
    assert value(s, "panicwatch_collector_success", collector="partial") == 0
    assert value(s, "panicwatch_partial") == 7  # a partial failure loses nothing it could read
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "collector boom failed: RuntimeError: kaput",
        f"collector partial failed: {tmp_path}/sys/kernel/kexec_crash_size: "
        "expected an integer, got 'garbage'",
    ]

    boom.fail = False
    caplog.clear()
    s = scrape_text(render_all(registry).decode())
    s = scrape_text(render_all(registry).decode())
    assert value(s, "panicwatch_collector_success", collector="boom") == 1
    assert value(s, "panicwatch_boom") == 1
    assert [r.getMessage() for r in caplog.records] == ["collector boom recovered"]


def test_describe_never_touches_the_host():
    collector = PanicwatchCollector(Host.from_paths("/nonexistent"), [Boom()])
    assert collector.describe() == []


def test_no_garbage_collection_while_a_collector_works(tmp_path):
    import gc

    from panicwatch.collectors.base import collection_paused
    from panicwatch.exposition import render

    seen = []

    class Probe:
        name = "probe"

        def collect(self, reader):
            seen.append(gc.isenabled())
            yield GaugeMetricFamily("panicwatch_probe", "ok", value=1)
            seen.append(gc.isenabled())

    registry = CollectorRegistry()
    registry.register(PanicwatchCollector(Host.from_paths(tmp_path), [Probe()]))
    assert gc.isenabled()
    render_all(registry)
    assert seen == [False, False] and gc.isenabled()
    # ...but on while the page is written to the client, and after a client went away
    stream = render(registry)
    next(stream)
    assert gc.isenabled()
    stream.close()
    assert gc.isenabled()
    # overlapping scrapes: on again only when the last one is out
    with collection_paused():
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    # left off where someone else turned it off
    gc.disable()
    try:
        render_all(registry)
        assert not gc.isenabled()
    finally:
        gc.enable()
