"""The fast path renders exactly what prometheus_client would."""

from __future__ import annotations

import gzip

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from panicwatch.exposition import (
    RenderedFamily,
    gzipped,
    label_set,
    render,
    render_all,
    sample_name,
)

HOSTILE = ['/mnt/a b', '/mnt/back\\slash', '/mnt/new\nline', '/mnt/"quoted"', "/mnt/tab\there", "/mnt/ü"]


class Families:
    def __init__(self, *families):
        self.families = families

    def collect(self):
        return self.families


def rendered_counter(name: str, doc: str, rows: list[tuple[str, str, object]],
                     fmt=str) -> RenderedFamily:
    sample = sample_name(name, "counter")
    body = "".join(f"{sample}{label_set(mountpoint=m, op=o)} {fmt(v)}\n" for m, o, v in rows)
    return RenderedFamily(name, doc, "counter", body)


def reference_counter(name: str, doc: str, rows: list[tuple[str, str, int]]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=["mountpoint", "op"])
    for m, o, v in rows:
        family.add_metric([m, o], v)
    return family


def test_rendered_counter_is_byte_identical_to_prometheus_client_for_float_values():
    rows = [(m, "READ", 0.25 * i) for i, m in enumerate(HOSTILE)]
    doc = 'Seconds with a \\ backslash and a\nnewline "quoted".'
    ours = rendered_counter("panicwatch_nfs_operation_rtt_seconds", doc, rows, repr)
    theirs = reference_counter("panicwatch_nfs_operation_rtt_seconds", doc, rows)
    assert render_all(Families(ours)) == generate_latest(Families(theirs))


@given(st.lists(st.tuples(st.text(), st.sampled_from(["READ", "WRITE", "GETATTR"]),
                          st.integers(min_value=0, max_value=2**64 - 1)), max_size=20))
def test_rendered_lines_parse_to_the_same_samples(rows):
    from prometheus_client.parser import text_string_to_metric_families

    ours = render_all(Families(rendered_counter("x_ops", "Ops.", rows))).decode()
    theirs = generate_latest(Families(reference_counter("x_ops", "Ops.", rows))).decode()
    parse = lambda text: [(s.name, s.labels, float(s.value))  # noqa: E731
                          for f in text_string_to_metric_families(text) for s in f.samples]
    assert parse(ours) == parse(theirs)
    # integers are written exactly (prometheus_client writes floats: 1.8446744073709552e+19)
    for (_, _, value), line in zip(rows, ours.split("\n")[2:-1], strict=True):
        assert line.endswith(f" {value}")


def test_render_keeps_order_and_mixes_both_kinds():
    g = GaugeMetricFamily("panicwatch_a", "A.", value=1)
    r = rendered_counter("panicwatch_b", "B.", [("/m", "READ", 5)])
    h = GaugeMetricFamily("panicwatch_c", "C.", value=3)
    text = render_all(Families(g, r, h)).decode()
    assert text == (
        "# HELP panicwatch_a A.\n# TYPE panicwatch_a gauge\npanicwatch_a 1.0\n"
        '# HELP panicwatch_b_total B.\n# TYPE panicwatch_b_total counter\n'
        'panicwatch_b_total{mountpoint="/m",op="READ"} 5\n'
        "# HELP panicwatch_c C.\n# TYPE panicwatch_c gauge\npanicwatch_c 3.0\n"
    )
    assert len(list(render(Families(g, r, h)))) == 3


def test_gzipped_stream_round_trips():
    registry = CollectorRegistry()
    registry.register(Families(rendered_counter("panicwatch_b", "B.", [("/m", "READ", 5)] * 1000)))
    assert gzip.decompress(b"".join(gzipped(render(registry)))) == render_all(registry)
