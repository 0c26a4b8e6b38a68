"""`panicwatch serve`: the canary and the kernel log watcher in the background, and the
HTTP server (web config, bounded pool, deadlines) in front of the application."""

from __future__ import annotations

import logging
import sys

from panicwatch.background.canary import Canary
from panicwatch.background.kernel_log import KmsgWatcher
from panicwatch.collectors.registry import host_of
from panicwatch.host import KMSG
from panicwatch.settings import Settings
from panicwatch.web.app import make_app
from panicwatch.web.config import WebConfigError
from panicwatch.web.config_watch import WebConfigSource
from panicwatch.web.http_server import HTTPServer, bind_server

log = logging.getLogger("panicwatch.server")


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
    canary = Canary(settings, host) if settings.collector_canary else None
    watcher = KmsgWatcher(host.root(KMSG)) if settings.collector_kernel_log else None
    server = make_http_server(settings, canary, watcher, web)
    if canary:
        canary.start()
    if watcher:
        watcher.start()
    bound = server.server_address
    scheme = "https" if web and web.current().ssl_context else "http"
    log.info("listening on %s port %s (%s)", bound[0], bound[1], scheme)
    try:
        server.serve_forever()
    finally:
        if canary:
            canary.stop()
        if watcher:
            watcher.stop()
        server.server_close()
