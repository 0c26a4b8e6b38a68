"""The text exposition: what production renders is what prometheus_client would, every family
is rendered where its collector can still fail alone, and the page streams."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from panicwatch.collectors.nfs import NfsCollector
from panicwatch.exposition import (
    RenderedFamily,
    gzipped,
    label_sets,
    prerender,
    printable,
    render,
    render_all,
    render_family,
)
from panicwatch.host import Host
from panicwatch.parsers.mountstats import parse_mountstats
from panicwatch.reader import HostReader
from panicwatch.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "mountstats"
HOSTILE = ['/mnt/a b', '/mnt/back\\slash', '/mnt/new\nline', '/mnt/"quoted"', "/mnt/tab\there",
           "/mnt/ü", "/mnt/\\n not a newline", '/mnt/end\\']


class Families:
    def __init__(self, *families: Metric) -> None:
        self.families = families

    def collect(self) -> tuple[Metric, ...]:
        return self.families


def reference(family: RenderedFamily, label_names: list[str],
              rows: list[tuple[list[str], int | float]]) -> bytes:
    """What prometheus_client renders for the same family, labels and values."""
    cls = CounterMetricFamily if family.type == "counter" else GaugeMetricFamily
    theirs = cls(family.name, family.documentation, labels=label_names)
    for labels, v in rows:
        theirs.add_metric(labels, v)
    return generate_latest(Families(theirs))


def same_text(ours: bytes, theirs: bytes) -> None:
    """Byte for byte, except that integers are written exactly where prometheus_client writes
    a float: each such value, as prometheus_client formats it, is its value."""
    ours_lines, theirs_lines = ours.decode().split("\n"), theirs.decode().split("\n")
    assert len(ours_lines) == len(theirs_lines)
    for mine, reference_line in zip(ours_lines, theirs_lines, strict=True):
        if mine == reference_line:
            continue
        head, _, number = mine.rpartition(" ")
        reference_head, _, reference_number = reference_line.rpartition(" ")
        assert (head, floatToGoString(int(number))) == (reference_head, reference_number)


def test_render_family_matches_prometheus_client_on_hostile_labels_and_help():
    doc = 'Seconds with a \\ backslash and a\nnewline "quoted".'
    rows = [([m, op], 0.25 * i) for i, m in enumerate(HOSTILE) for op in ("READ", 'GET"ATTR\\')]
    series = label_sets(("mountpoint", "op"), [labels for labels, _ in rows])
    ours = render_family("panicwatch_rtt_seconds", doc, "counter", series, [v for _, v in rows])
    assert ours.data == reference(ours, ["mountpoint", "op"], rows)


def test_render_family_sorts_labels_by_name_as_prometheus_client_does():
    rows = [(["/m", "srv:/x", "files", "4.2", "tcp"], 1)]
    series = label_sets(("mountpoint", "export", "server", "version", "proto"), [r[0] for r in rows])
    ours = render_family("panicwatch_nfs_mount_info", "Info.", "gauge", series, [1])
    assert ours.data == (b'# HELP panicwatch_nfs_mount_info Info.\n# TYPE panicwatch_nfs_mount_info '
                         b'gauge\npanicwatch_nfs_mount_info{export="srv:/x",mountpoint="/m",proto="tcp",'
                         b'server="files",version="4.2"} 1\n')
    same_text(ours.data, reference(ours, ["mountpoint", "export", "server", "version", "proto"], rows))


def test_what_the_nfs_collector_emits_is_what_prometheus_client_would(tmp_path: Path):
    """The production path: every family of the nfs collector, on mount points and operation
    names holding every character the format escapes, against prometheus_client's rendering
    of the same parsed mountstats."""
    block = (FIXTURES / "nconnect4.txt").read_text()
    hostile = block.replace("mounted on /scratch ", 'mounted on /mnt/a\\040b\\012\\134"c ').replace(
        " GETATTR:", ' GET"ATTR\\:')
    text = block + hostile
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/mountstats").write_text(text)
    settings = Settings(path_rootfs=tmp_path, collector_nfs_all_ops=True, collector_nfs_op_bytes=True,
                        collector_nfs_events=True)
    reader = HostReader(Host.from_paths(tmp_path))
    produced = {f.name: f for f in NfsCollector(settings).collect(reader)}
    assert reader.problems == []
    mounts = parse_mountstats(text).mounts
    assert {m.mountpoint for m in mounts} == {"/scratch", '/mnt/a b\n\\"c'}

    ops = produced["panicwatch_nfs_operation_rtt_seconds"]
    rows = [([m.mountpoint, op], s[6] / 1000) for m in mounts for op, s in m.ops.items()]
    assert ops.data == reference(ops, ["mountpoint", "op"], rows)  # floats: byte for byte
    assert b'op="GET\\"ATTR\\\\"' in ops.data
    count = produced["panicwatch_nfs_operations"]
    rows = [([m.mountpoint, op], s[0]) for m in mounts for op, s in m.ops.items()]
    same_text(count.data, reference(count, ["mountpoint", "op"], rows))
    info = produced["panicwatch_nfs_mount_info"]
    rows = [([m.mountpoint, m.export, m.server, m.version or "", m.proto or ""], 1) for m in mounts]
    same_text(info.data, reference(info, ["mountpoint", "export", "server", "version", "proto"], rows))
    sends = produced["panicwatch_nfs_transport_sends"]
    rows = [([m.mountpoint], sum(x.sends for x in m.transports)) for m in mounts]
    same_text(sends.data, reference(sends, ["mountpoint"], rows))
    # and every family parses
    page = b"".join(prerender(f).data for f in produced.values()).decode()
    parsed = {f.name for f in text_string_to_metric_families(page)}
    assert len(parsed) == len(produced) > 20


@given(st.lists(st.tuples(st.text(), st.text(), st.integers(min_value=0, max_value=2**64 - 1)),
                max_size=20))
def test_any_label_values_parse_back_exactly(rows):
    series = label_sets(("mountpoint", "op"), [(m, o) for m, o, _ in rows])
    family = render_family("x_ops", "Ops.", "counter", series, [v for _, _, v in rows])
    [parsed] = text_string_to_metric_families(family.data.decode())
    # integers come back exactly as the kernel counted them (the parser keeps them as int)
    assert [(s.labels, s.value) for s in parsed.samples] == [
        ({"mountpoint": m, "op": o}, v) for m, o, v in rows]


def test_prerender_shows_names_that_are_not_utf8_byte_by_byte():
    family = GaugeMetricFamily("panicwatch_x", "X.", labels=["dump"])
    family.add_metric(["crash-\udce9t\udcc3"], 1)  # os.scandir's surrogateescape of latin-1 bytes
    assert prerender(family).data.endswith(b'panicwatch_x{dump="crash-\\\\xe9t\\\\xc3"} 1.0\n')


def test_prerender_raises_where_a_family_cannot_be_rendered():
    family = GaugeMetricFamily("panicwatch_x", "X.", labels=["a"])
    family.add_metric(["b"], "not a number")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        prerender(family)


def test_an_already_rendered_family_refuses_generate_latest():
    family = render_family("panicwatch_b", "B.", "counter", label_sets(("m",), [("/m",)]), [5])
    with pytest.raises(TypeError, match="already rendered"):
        generate_latest(Families(family))


def test_render_keeps_order_and_mixes_both_kinds():
    g = GaugeMetricFamily("panicwatch_a", "A.", value=1)
    r = render_family("panicwatch_b", "B.", "counter", label_sets(("mountpoint", "op"), [("/m", "READ")]),
                      [5])
    h = GaugeMetricFamily("panicwatch_c", "C.", value=3)
    assert b"".join(render(Families(g, r, h))) == (
        b"# HELP panicwatch_a A.\n# TYPE panicwatch_a gauge\npanicwatch_a 1.0\n"
        b'# HELP panicwatch_b_total B.\n# TYPE panicwatch_b_total counter\n'
        b'panicwatch_b_total{mountpoint="/m",op="READ"} 5\n'
        b"# HELP panicwatch_c C.\n# TYPE panicwatch_c gauge\npanicwatch_c 3.0\n")


def test_a_large_family_is_rendered_in_chunks_of_whole_lines():
    series = label_sets(("mountpoint", "op"), [(f"/m{i}", "READ") for i in range(10_000)])
    family = render_family("panicwatch_b", "B.", "counter", series, list(range(10_000)))
    assert len(family.chunks) == 1 + 3  # HELP and TYPE, then 4096 lines a chunk
    assert all(chunk.endswith(b"\n") for chunk in family.chunks)
    assert family.data.count(b"\n") == 10_002
    with pytest.raises(ValueError, match="2 label sets for 3 values"):
        render_family("panicwatch_b", "B.", "counter", series[:2], [1, 2, 3])


@pytest.mark.parametrize("value", [0.25, -3.5, 1e-05, 999999.9, 1e6, 1234567.125, 1e22,
                                   float("inf"), float("-inf"), float("nan"), -1e300])
def test_floats_are_written_as_prometheus_client_writes_them(value):
    family = render_family("panicwatch_x", "X.", "gauge", label_sets(("a",), [("b",)]), [value])
    assert family.data.endswith(f' {floatToGoString(value)}\n'.encode())


def test_none_values_leave_their_series_out():
    series = label_sets(("op",), [("READ",), ("WRITE",)])
    family = render_family("panicwatch_errors", "E.", "counter", series, [None, 3])
    assert family.data.endswith(b'# TYPE panicwatch_errors_total counter\n'
                                b'panicwatch_errors_total{op="WRITE"} 3\n')


def test_gzipped_stream_round_trips():
    registry = CollectorRegistry()
    series = label_sets(("mountpoint", "op"), [("/m", "READ")] * 1000)
    registry.register(Families(render_family("panicwatch_b", "B.", "counter", series, [5] * 1000)))
    assert gzip.decompress(b"".join(gzipped(render(registry)))) == render_all(registry)


def test_printable_shows_bytes_that_were_not_utf8():
    assert printable("ok \udcff") == "ok \\xff"  # surrogate-escaped byte 0xff
    assert printable("lone \ud800") == "lone \\ud800"
    assert printable("caf\u00e9") == "caf\u00e9"


def test_prerender_refuses_a_series_twice():
    family = GaugeMetricFamily("panicwatch_x", "X.", labels=["backend"])
    family.add_metric(["a\udcff"], 1)  # two names that read the same once made printable
    family.add_metric(["a\\xff"], 2)
    with pytest.raises(ValueError, match="a series appears twice"):
        prerender(family)
