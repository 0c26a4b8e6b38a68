"""The WSGI application of `serve`: /metrics (gzip when the client accepts it), /healthz, and
/, a page with the panic readiness summary."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from prometheus_client.registry import Collector

from panicwatch import __version__
from panicwatch.background.canary import Canary
from panicwatch.background.kernel_log import KmsgWatcher
from panicwatch.collectors.base import Area
from panicwatch.collectors.canary import CanaryCollector
from panicwatch.collectors.kernel_log import KernelLogCollector
from panicwatch.collectors.registry import build_registry, host_of
from panicwatch.exposition import CONTENT_TYPE, gzipped, render
from panicwatch.readiness.checks import RecentReport, assess
from panicwatch.readiness.report import as_html_rows, verdict
from panicwatch.settings import Settings
from panicwatch.web.auth import BasicAuth, StartResponse, WSGIApp, protect

LANDING = """<!doctype html>
<html><head><meta charset="utf-8"><title>panicwatch</title>
<style>body{{font-family:sans-serif;margin:2em}} td{{padding:2px 8px;vertical-align:top}}
.fail td:first-child{{color:#b00;font-weight:bold}} .pass td:first-child{{color:#070}}
.skip td:first-child{{color:#888}}</style></head>
<body><h1>panicwatch {version}</h1>
<p>Kernel panic readiness and NFS client health exporter.
<a href="{metrics}">Metrics</a> &middot; <a href="/healthz">Health</a></p>
<h2>Panic readiness: {verdict}</h2>
<p><small>As of {age:.0f} s ago.</small></p>
<table>{rows}</table>
</body></html>
"""


def content_codings(header: str) -> dict[str, float]:
    """``Accept-Encoding`` as {coding: q} (RFC 9110 12.5.3); a q that is not a number is 0."""
    codings: dict[str, float] = {}
    for item in header.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        if not coding:
            continue
        q = 1.0
        for param in params:
            key, _, raw = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(max(float(raw.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        codings[coding.lower()] = q
    return codings


def accepts_gzip(header: str) -> bool:
    """gzip when the client rates it above 0 and at least as high as an uncompressed body
    (``identity`` as rated, else as ``*``): the choice of promhttp, node_exporter's handler.
    Anything else gets the body uncompressed."""
    codings = content_codings(header)
    wildcard = codings.get("*", 0.0)
    gzip_q = codings.get("gzip", wildcard)
    return gzip_q > 0 and gzip_q >= codings.get("identity", wildcard)


def metrics_response(registry: Collector, environ: dict[str, Any],
                     start_response: StartResponse) -> Iterable[bytes]:
    headers = [("Content-Type", CONTENT_TYPE), ("Vary", "Accept-Encoding")]
    if accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", "")):
        body = b"".join(gzipped(render(registry)))  # compressed, the page is ~15x smaller
        headers += [("Content-Encoding", "gzip"), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [body]
    start_response("200 OK", headers)
    return render(registry)  # streamed: the uncompressed text is never held whole


def make_app(settings: Settings, canary: Canary | None = None,
             watcher: KmsgWatcher | None = None,
             recent: RecentReport | None = None) -> WSGIApp:
    # Areas fed by serve's background threads: `metrics` and `check` have none.
    background: list[Area] = [CanaryCollector(canary)] if canary else []
    if watcher:
        background.append(KernelLogCollector(watcher))
    recent = recent or RecentReport()
    registry = build_registry(settings, background, recent)
    host = host_of(settings)

    def landing_page() -> bytes:
        # The scrape's own report when there is a recent one: a refresh loop on this page
        # adds no reads of the host.
        report, age = recent.get(lambda: assess(host, settings.collector_kdump_min_free_ratio))
        return LANDING.format(version=__version__, metrics=settings.web_telemetry_path,
                              verdict=html.escape(verdict(report)), age=age,
                              rows=as_html_rows(report)).encode()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == settings.web_telemetry_path:
            return metrics_response(registry, environ, start_response)
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok\n"]
        if path == "/":
            body = landing_page()
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found\n"]

    return protect(app, BasicAuth())


