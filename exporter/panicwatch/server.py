"""`panicwatch serve`: /metrics (text format, gzip when asked), /healthz, and /."""

from __future__ import annotations

import html
import logging
import socket
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client.registry import Collector

from panicwatch import __version__
from panicwatch.canary import Canary
from panicwatch.collectors.base import Area
from panicwatch.collectors.canary import CanaryCollector
from panicwatch.collectors.kernel_log import KernelLogCollector
from panicwatch.collectors.registry import build_registry, host_of
from panicwatch.exposition import CONTENT_TYPE, gzipped, render
from panicwatch.host import KMSG
from panicwatch.kmsg_watcher import KmsgWatcher
from panicwatch.readiness import assess
from panicwatch.report import as_html_rows, verdict
from panicwatch.settings import Settings, parse_listen_address

log = logging.getLogger("panicwatch.server")
StartResponse = Callable[..., Any]

LANDING = """<!doctype html>
<html><head><meta charset="utf-8"><title>panicwatch</title>
<style>body{{font-family:sans-serif;margin:2em}} td{{padding:2px 8px;vertical-align:top}}
.fail td:first-child{{color:#b00;font-weight:bold}} .pass td:first-child{{color:#070}}
.skip td:first-child{{color:#888}}</style></head>
<body><h1>panicwatch {version}</h1>
<p>Kernel panic readiness and NFS client health exporter.
<a href="{metrics}">Metrics</a> &middot; <a href="/healthz">Health</a></p>
<h2>Panic readiness: {verdict}</h2>
<table>{rows}</table>
</body></html>
"""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _DualStackServer(_ThreadingServer):
    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - " + format, self.address_string(), *args)


def metrics_response(registry: Collector, environ: dict[str, Any],
                     start_response: StartResponse) -> Iterable[bytes]:
    headers = [("Content-Type", CONTENT_TYPE)]
    if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
        body = b"".join(gzipped(render(registry)))
        headers += [("Content-Encoding", "gzip"), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [body]
    start_response("200 OK", headers)
    return render(registry)  # streamed: the uncompressed text is never held whole


def make_app(settings: Settings, canary: Canary | None = None,
             watcher: KmsgWatcher | None = None,
             ) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    # Areas fed by serve's background threads: `metrics` and `check` have none.
    background: list[Area] = [CanaryCollector(canary)] if canary else []
    if watcher:
        background.append(KernelLogCollector(watcher))
    registry = build_registry(settings, background)
    host = host_of(settings)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == settings.web_telemetry_path:
            return metrics_response(registry, environ, start_response)
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok\n"]
        if path == "/":
            report = assess(host, settings.kdump_min_free_ratio)
            body = LANDING.format(version=__version__, metrics=settings.web_telemetry_path,
                                  verdict=html.escape(verdict(report)),
                                  rows=as_html_rows(report))
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [body.encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found\n"]

    return app


def make_http_server(settings: Settings, canary: Canary | None = None,
                     watcher: KmsgWatcher | None = None) -> WSGIServer:
    host, port = parse_listen_address(settings.web_listen_address)
    app = make_app(settings, canary, watcher)
    if host == "" and socket.has_ipv6:
        try:
            return make_server("::", port, app, _DualStackServer, _QuietHandler)
        except OSError:
            pass  # no IPv6 on this host: IPv4 only
    server_class = _ThreadingServer
    if ":" in host:
        server_class = type("_V6Server", (_ThreadingServer,), {"address_family": socket.AF_INET6})
    return make_server(host or "0.0.0.0", port, app, server_class, _QuietHandler)


def serve(settings: Settings) -> None:
    host = host_of(settings)
    canary = Canary(settings, host)
    watcher = KmsgWatcher(host.root(KMSG)) if settings.collector_kernel_log else None
    server = make_http_server(settings, canary, watcher)
    canary.start()
    if watcher:
        watcher.start()
    bound = server.server_address
    log.info("listening on %s port %s", bound[0], bound[1])
    try:
        server.serve_forever()
    finally:
        canary.stop()
        if watcher:
            watcher.stop()
        server.server_close()
