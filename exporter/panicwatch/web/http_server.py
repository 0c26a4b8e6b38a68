"""The HTTP server under `serve`: wsgiref's request handling on a bounded ConnectionPool,
with TLS and the web config applied per connection and time limits on every read and
write (socket_io.py), so slow or silent clients cannot hold the scrapes up."""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from panicwatch.settings import parse_listen_address
from panicwatch.web.auth import ENVIRON_KEY, WSGIApp
from panicwatch.web.config import WebConfig
from panicwatch.web.config_watch import WebConfigSource
from panicwatch.web.pool import ConnectionPool, PoolLimits
from panicwatch.web.socket_io import DeadlineReader, PieceWriter
from panicwatch.web.tls import server_handshake

log = logging.getLogger("panicwatch.server")


@dataclass(frozen=True)
class HTTPLimits:
    pool: PoolLimits = field(default_factory=PoolLimits)
    # TLS handshake, request line and headers, from the moment a worker takes the
    # connection: one deadline, so a client trickling bytes cannot hold a worker longer.
    request_timeout: float = 10.0
    # Longest a client may take no response bytes at all (per 64 KiB piece). Longer than
    # any scrape_timeout: a scraper that gave up closes the connection and is seen at once.
    write_timeout: float = 30.0
    # Longest the TLS close_notify exchange may take at the end of a response.
    tls_close_timeout: float = 1.0


class _Handler(WSGIRequestHandler):
    """One request on one connection (HTTP/1.0, as wsgiref), within the server's limits."""

    def __init__(self, request: socket.socket, client_address: Any, server: HTTPServer,
                 deadline: float, web_config: WebConfig | None) -> None:
        self.deadline = deadline
        self.web_config = web_config
        super().__init__(request, client_address, server)

    def setup(self) -> None:
        assert isinstance(self.server, HTTPServer)
        self.connection = self.request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        self.rfile = io.BufferedReader(DeadlineReader(self.connection, self.deadline))
        self.wfile = PieceWriter(self.connection, self.server.limits.write_timeout)

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        if self.web_config is not None:
            environ[ENVIRON_KEY] = self.web_config
        if isinstance(self.connection, ssl.SSLSocket):
            environ["wsgi.url_scheme"] = "https"
            environ["HTTPS"] = "on"
        return environ

    def finish(self) -> None:
        try:
            self.wfile.drain()
        except OSError as e:
            log.debug("%s: response not sent: %s", self.address_string(), e)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - " + format, self.address_string(), *args)


class HTTPServer(WSGIServer):
    """wsgiref's server for binding and the WSGI environment; connections are served by a
    ConnectionPool (bounded workers, silent sockets kept off them) instead of a thread
    each, with TLS and the web config applied per connection."""

    allow_reuse_address = True
    request_queue_size = 1024  # 200 scrapers connecting at once wait here, not in SYN retries
    web: WebConfigSource | None = None
    limits = HTTPLimits()
    _pool: ConnectionPool | None = None

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._pool = ConnectionPool(self.socket, self.serve_connection, self.limits.pool)
        self._pool.serve_forever()

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()

    @property
    def pool(self) -> ConnectionPool | None:
        return self._pool

    def serve_connection(self, conn: socket.socket, address: Any) -> None:
        """On a worker thread: the TLS handshake (if on), then one request."""
        active = self.web.current() if self.web else None
        deadline = time.monotonic() + self.limits.request_timeout
        sock: socket.socket = conn
        try:
            if active is not None and active.ssl_context is not None:
                tls = server_handshake(conn, active.ssl_context, deadline)
                if tls is None:
                    return
                sock = tls
            _Handler(sock, address, self, deadline, active.config if active else None)
        except OSError as e:  # timeouts, resets, failed handshakes: the client's business
            log.debug("%s: %s", address[0] if address else "?", e)
        finally:
            self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        try:
            if isinstance(sock, ssl.SSLSocket):
                sock.settimeout(self.limits.tls_close_timeout)
                sock = sock.unwrap()  # close_notify: the client can tell the end from a cut
            sock.shutdown(socket.SHUT_WR)  # a FIN after the data
            # Closing with unread input (a request we only peeked at, a body we ignored)
            # sends a reset, which can destroy the response before the client reads it.
            sock.setblocking(False)
            for _ in range(16):
                if not sock.recv(1 << 16):
                    break
        except (OSError, ValueError):
            pass
        finally:
            sock.close()


class _DualStackServer(HTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class _V6Server(HTTPServer):
    address_family = socket.AF_INET6


def bind_server(listen_address: str, app: WSGIApp, web: WebConfigSource | None = None,
                limits: HTTPLimits = HTTPLimits()) -> HTTPServer:
    host, port = parse_listen_address(listen_address)
    server: HTTPServer | None = None
    if host == "" and socket.has_ipv6:
        with contextlib.suppress(OSError):  # no IPv6 on this host: IPv4 only
            server = _DualStackServer(("::", port), _Handler)
    if server is None:
        server_class = _V6Server if ":" in host else HTTPServer
        server = server_class((host or "0.0.0.0", port), _Handler)
    server.set_app(app)
    server.web = web
    server.limits = limits
    return server
