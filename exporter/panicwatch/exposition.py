"""The text exposition format (0.0.4), rendered family by family and streamed.

Whatever a host file says, the page must stay valid: a label value Prometheus cannot parse
makes it drop the whole scrape, every collector's signals with it. So every family is
rendered here, while its collector still owns it (``prerender``: a family that cannot be
rendered fails that collector only), and every label value and HELP text of a family a
collector renders itself goes through ``label_sets`` and ``render_family``.

prometheus_client renders a sample in about 10 us (sorting and escaping each label,
formatting each float): 6 s for the 576,000 per-op samples of 1000 NFS mounts. The nfs
collector therefore renders its label sets once per (mount, operation), shares them between
families, and writes integers as they are; the text is the same format (labels in name
order, floats as prometheus_client writes them), as tests/test_exposition.py checks.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Number = int | float

_SURROGATE = re.compile("[\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` as UTF-8 can hold it: bytes that were not UTF-8 (names from os.scandir, the
    kernel log, surrogate-escaped) are shown as ``\\xNN``, other lone surrogates as ``\\uXXXX``."""
    if text.isascii() or not _SURROGATE.search(text):
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no decoder made
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def escape_label_value(value: str) -> str:
    return printable(value).replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def escape_help(text: str) -> str:
    return printable(text).replace("\\", r"\\").replace("\n", r"\n")


def sample_name(name: str, typ: str) -> str:
    """The name samples of a family carry: counters end in ``_total``."""
    return name + "_total" if typ == "counter" else name


def label_sets(names: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """``{a="x",b="y"}`` for each row of label values, escaped, in label-name order.

    Rendered once and handed to several ``render_family`` calls: the per-op families of a
    mount share their label sets. Each distinct value is escaped once."""
    order = sorted(range(len(names)), key=lambda i: names[i])
    # Label names are constants without "%"; values are inserted as they are.
    template = "{" + ",".join(f'{names[i]}="%s"' for i in order) + "}"
    escaped: dict[str, str] = {}

    def esc(value: str) -> str:
        e = escaped.get(value)
        if e is None:
            e = escaped[value] = escape_label_value(value)
        return e

    if len(order) == 1:
        [a] = order
        return [template % esc(row[a]) for row in rows]
    if len(order) == 2:  # (mountpoint, op): most of a scrape
        a, b = order
        return [template % (esc(row[a]), esc(row[b])) for row in rows]
    return [template % tuple([esc(row[i]) for i in order]) for row in rows]


class RenderedFamily(Metric):
    """A family already in the text format: ``chunks`` are its HELP, TYPE and sample lines."""

    def __init__(self, name: str, documentation: str, typ: str, chunks: list[bytes]) -> None:
        super().__init__(name, documentation, typ)
        self.chunks = chunks

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)

    @property  # type: ignore[override]
    def samples(self) -> list:  # type: ignore[type-arg]
        # generate_latest() would write its HELP and TYPE and silently drop the samples.
        raise TypeError(f"{self.name} is already rendered: write it with exposition.render()")

    @samples.setter
    def samples(self, value: list) -> None:  # type: ignore[type-arg]
        pass  # Metric.__init__ sets an empty list

    def __repr__(self) -> str:
        return f"RenderedFamily({self.name!r}, {self.type!r}, {sum(map(len, self.chunks))} bytes)"


_CHUNK = 4096  # sample lines a chunk: a family is never held as one string, then one bytes
_NEG_INF = float("-inf")


def render_family(name: str, doc: str, typ: str, series: Sequence[str],
                  values: Sequence[Number | None]) -> RenderedFamily:
    """A counter or gauge family from label sets (``label_sets``) and a value for each;
    None leaves that series out. Integers are written exactly, floats as prometheus_client
    writes them (``repr`` below 1e6, where its Go-style formatting agrees)."""
    if len(series) != len(values):
        raise ValueError(f"{name}: {len(series)} label sets for {len(values)} values")
    sample = sample_name(name, typ)
    chunks = [f"# HELP {sample} {escape_help(doc)}\n# TYPE {sample} {typ}\n".encode()]
    for start in range(0, len(series), _CHUNK):
        chunks.append("".join([
            f"{sample}{labels} {v}\n" if type(v) is int else
            f"{sample}{labels} {repr(v) if _NEG_INF < v < 1e6 else floatToGoString(v)}\n"
            for labels, v in zip(series[start:start + _CHUNK], values[start:start + _CHUNK],
                                 strict=True)
            if v is not None]).encode())
    return RenderedFamily(name, doc, typ, chunks)


class _One(Collector):
    def __init__(self, family: Metric) -> None:
        self.family = family

    def collect(self) -> Iterable[Metric]:
        return [self.family]


def prerender(family: Metric) -> RenderedFamily:
    """Any family in the text format, now: an error (a value that cannot be written, a series
    twice) is raised here, to the collector that made the family, not to the page."""
    if isinstance(family, RenderedFamily):
        return family
    samples = [s._replace(labels={k: printable(v) for k, v in s.labels.items()})
               for s in family.samples]
    keys = {(s.name, tuple(sorted(s.labels.items()))) for s in samples}
    if len(keys) != len(samples):  # Prometheus would drop them, promtool rejects the page
        raise ValueError(f"{family.name}: a series appears twice")
    family.documentation = printable(family.documentation)
    family.samples = samples
    return RenderedFamily(family.name, family.documentation, family.type,
                          [generate_latest(_One(family))])


def render(registry: Collector) -> Iterator[bytes]:
    """The registry in the text format, a family at a time: the page is never held whole."""
    for family in registry.collect():
        yield from prerender(family).chunks


def gzipped(chunks: Iterable[bytes]) -> Iterator[bytes]:
    # Level 1: the text compresses about 15:1 at it, several times faster than level 6.
    compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


def render_all(registry: Collector) -> bytes:
    return b"".join(render(registry))
