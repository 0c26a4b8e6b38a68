"""`panicwatch serve`: /metrics (text format, gzip when asked), /healthz, and /.

With --web.config.file: TLS, basic auth and extra headers as node_exporter's
exporter-toolkit, reloaded on change (web_config, web_source, web_tls, web_auth).
Connections are served by a bounded pool of worker threads with time limits on every read
and write (web_server, web_pool, web_io).
"""

from __future__ import annotations

import html
import logging
import sys
from collections.abc import Callable, Iterable
from typing import Any

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
from panicwatch.settings import Settings
from panicwatch.web_auth import BasicAuth, protect
from panicwatch.web_config import WebConfigError
from panicwatch.web_server import HTTPServer, bind_server
from panicwatch.web_source import WebConfigSource

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

    return protect(app, BasicAuth())


def make_http_server(settings: Settings, canary: Canary | None = None,
                     watcher: KmsgWatcher | None = None,
                     web: WebConfigSource | None = None) -> HTTPServer:
    return bind_server(settings.web_listen_address, make_app(settings, canary, watcher), web)


def load_web_config(settings: Settings) -> WebConfigSource | None:
    """The web config named by --web.config.file, or None; a bad one ends the program
    with one line naming the flag, exit code 2 (as an invalid flag value)."""
    path = settings.web_config_file
    if path is None:
        return None
    try:
        web = WebConfigSource(path)
    except WebConfigError as e:
        print(f"panicwatch: error: --web.config.file {path}: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    config = web.current().config
    log.info("web config %s: TLS %s, basic auth %s", path,
             f"on ({config.tls.client_auth_type})" if config.tls else "off",
             f"for {len(config.users)} user(s)" if config.users else "off")
    return web


def serve(settings: Settings) -> None:
    web = load_web_config(settings)  # before anything starts: a bad file is a start-up error
    host = host_of(settings)
    canary = Canary(settings, host)
    watcher = KmsgWatcher(host.root(KMSG)) if settings.collector_kernel_log else None
    server = make_http_server(settings, canary, watcher, web)
    canary.start()
    if watcher:
        watcher.start()
    bound = server.server_address
    scheme = "https" if web and web.current().ssl_context else "http"
    log.info("listening on %s port %s (%s)", bound[0], bound[1], scheme)
    try:
        server.serve_forever()
    finally:
        canary.stop()
        if watcher:
            watcher.stop()
        server.server_close()
