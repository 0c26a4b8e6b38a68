"""The server under load and against slow clients, over real sockets.

First `panicwatch serve` as a subprocess: 200 concurrent scrapes while silent,
trickling and non-reading sockets are held open; then the connection pool in-process with
small limits, so each timeout can be watched expire in a second or two.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from conftest import scrape_text, value
from panicwatch.web.http_server import HTTPLimits, HTTPServer, bind_server
from panicwatch.web.pool import PoolLimits
from test_server import get, serve_process


def proc_status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def silent(port: int) -> socket.socket:
    """Connects and never sends a byte."""
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def trickler(port: int) -> socket.socket:
    """Starts a request and never finishes it (the slowloris)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    return s


def non_reader(port: int, path: str = "/metrics") -> socket.socket:
    """Asks for a response and never reads it, through a small receive window."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
    return s


class ThreadSampler:
    """The server process's thread count, sampled every 20 ms while the load runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(proc_status(self.pid, "Threads"))
            self._stop.wait(0.02)

    def __enter__(self) -> ThreadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed_scrape(url: str) -> tuple[float, int, bytes]:
    start = time.monotonic()
    status, _, body = get(url)
    return time.monotonic() - start, status, body


def test_200_concurrent_scrapes_with_slow_clients_held_open(tree):
    with serve_process(tree("fedora_vmcores"), "--no-collector.kernel_log") as (base, proc):
        port = port_of(base)
        get(base + "/metrics")  # first scrape: imports and caches warm
        threads_before = proc_status(proc.pid, "Threads")
        rss_before = proc_status(proc.pid, "VmRSS")
        with ExitStack() as slow:
            for make in [silent] * 20 + [trickler] * 5 + [non_reader] * 5:
                slow.enter_context(make(port))
            time.sleep(0.2)  # the tricklers are on workers now
            with ThreadSampler(proc.pid) as sampler, ThreadPoolExecutor(200) as clients:
                results = list(clients.map(timed_scrape, [base + "/metrics"] * 200))
            # while the slow sockets are still open, a scrape is still quick
            took, status, _ = timed_scrape(base + "/metrics")
        assert status == 200 and took < 5, took  # a blocked one would wait out the 10 s limits
        assert [r[1] for r in results] == [200] * 200
        for _, _, body in results:  # every body whole: its last family and line are there
            samples = scrape_text(body.decode())
            assert value(samples, "panicwatch_vmcores") == 2
            assert body.endswith(b"\n")
        latencies = sorted(r[0] for r in results)
        assert latencies[-1] < 20, latencies[-5:]
        # workers are bounded (16) and the 20 silent sockets hold none of them
        assert max(sampler.samples) <= threads_before + 16, (threads_before, sampler.samples)
        assert proc_status(proc.pid, "VmHWM") - rss_before < 100 * 1024  # KiB: under 100 MiB
        assert proc.poll() is None


# -- the pool in-process, with small limits ---------------------------------------------

def hello(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/slow":
        time.sleep(0.3)
    if environ["PATH_INFO"] == "/big":  # 32 MiB: more than any socket buffers hold
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (b"x" * (1 << 20) for _ in range(32))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello\n"]


@contextmanager
def pool_server(**limits: Any) -> Iterator[tuple[HTTPServer, int]]:
    pool = {k: limits.pop(k) for k in list(limits) if k in PoolLimits.__dataclass_fields__}
    server = bind_server("127.0.0.1:0", hello, None, HTTPLimits(PoolLimits(**pool), **limits))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_within(s: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closes ``s`` (reading and dropping what it sends), or None."""
    start = time.monotonic()
    s.settimeout(0.2)
    while time.monotonic() - start < seconds:
        try:
            if not s.recv(1 << 20):
                return time.monotonic() - start
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - start
    return None


def test_beyond_the_workers_connections_wait_and_are_served():
    with pool_server(max_workers=2) as (server, port), ThreadPoolExecutor(20) as clients:
        results = list(clients.map(lambda _: get(f"http://127.0.0.1:{port}/slow"), range(20)))
        assert [r[0] for r in results] == [200] * 20
        assert server.pool is not None and server.pool.peak_workers == 2


def test_silent_sockets_hold_no_worker_and_are_closed_after_the_first_byte_timeout():
    with pool_server(max_workers=1, first_byte_timeout=1.0) as (server, port):
        sockets = [silent(port) for _ in range(10)]
        start = time.monotonic()
        assert get(f"http://127.0.0.1:{port}/")[0] == 200  # the one worker is free
        assert time.monotonic() - start < 0.5
        assert server.pool is not None and server.pool.peak_workers == 1
        waited = [closed_within(s, 3) for s in sockets]
        assert all(w is not None and w < 1.6 for w in waited), waited
        for s in sockets:
            s.close()


def test_a_trickling_request_is_cut_at_the_request_timeout():
    with pool_server(max_workers=1, request_timeout=1.0) as (_, port):
        s = trickler(port)
        start = time.monotonic()
        dropped = None
        while time.monotonic() - start < 4:
            try:
                s.sendall(b"X-Slow: 1\r\n")  # progress, but never the end of the headers
            except (BrokenPipeError, ConnectionResetError):
                dropped = time.monotonic() - start
                break
            s.settimeout(0.25)
            try:
                if not s.recv(100):
                    dropped = time.monotonic() - start
                    break
            except TimeoutError:
                pass
        s.close()
        assert dropped is not None and dropped < 2, dropped
        assert get(f"http://127.0.0.1:{port}/")[0] == 200


def test_a_client_that_stops_reading_frees_its_worker_at_the_write_timeout():
    with pool_server(max_workers=1, write_timeout=1.0) as (_, port):
        s = non_reader(port, "/big")
        time.sleep(0.2)
        start = time.monotonic()
        assert get(f"http://127.0.0.1:{port}/")[0] == 200  # waited for the one worker
        assert 0.5 < time.monotonic() - start < 3
        s.close()


def test_at_the_connection_limit_the_oldest_silent_socket_makes_room():
    with pool_server(max_connections=4, first_byte_timeout=30) as (server, port):
        sockets = [silent(port) for _ in range(4)]
        time.sleep(0.2)
        start = time.monotonic()
        assert get(f"http://127.0.0.1:{port}/")[0] == 200
        assert time.monotonic() - start < 1
        assert closed_within(sockets[0], 1) is not None  # the oldest went
        assert closed_within(sockets[3], 0.3) is None  # the newest stays
        assert server.pool is not None and server.pool.open_connections <= 4
        for s in sockets:
            s.close()
