"""Accept connections on one thread and serve them on a bounded set of worker threads.

A thread per connection (socketserver's ThreadingMixIn) grows without limit under load
and lets sockets that connect and say nothing each hold a thread. Here:

- one dispatcher thread accepts and keeps each new connection in a waiting room (a
  selector) until its first byte arrives, so a silent socket costs a descriptor, not a
  thread, and is closed after ``first_byte_timeout``;
- a connection with data goes to a worker; at most ``max_workers`` exist, started when
  work waits and none is idle, and ended after ``worker_idle_exit`` seconds without work,
  so an idle exporter keeps few threads;
- at most ``max_connections`` are open at once. At the limit the oldest silent
  connection makes room; if none is silent, accepting pauses and new connections wait
  in the kernel's listen queue until a worker finishes: they wait, they are not refused.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("panicwatch.server")

Handle = Callable[[socket.socket, Any], None]


@dataclass(frozen=True)
class PoolLimits:
    max_workers: int = 16
    max_connections: int = 512
    first_byte_timeout: float = 10.0
    worker_idle_exit: float = 60.0


_LISTENER = object()
_WAKE = object()


class ConnectionPool:
    def __init__(self, listener: socket.socket, handle: Handle,
                 limits: PoolLimits = PoolLimits()) -> None:
        self._listener = listener
        self._handle = handle
        self._limits = limits
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._waiting: dict[socket.socket, tuple[Any, float]] = {}  # insertion order = age
        self._listening = False
        self._stop = False
        self._started = False
        self._stopped = threading.Event()
        self._lock = threading.Condition()  # guards everything below
        self._jobs: deque[tuple[socket.socket, Any]] = deque()
        self._open = 0
        self._workers = 0
        self._idle = 0
        self.peak_workers = 0

    # -- dispatcher --------------------------------------------------------------------

    def serve_forever(self) -> None:
        self._started = True
        self._listener.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        self._listen(True)
        try:
            while not self._stop:
                timeout = None
                if self._waiting:
                    oldest_deadline = next(iter(self._waiting.values()))[1]
                    timeout = max(oldest_deadline - time.monotonic(), 0.0)
                for key, _ in self._selector.select(timeout):
                    if key.data is _LISTENER:
                        self._accept()
                    elif key.data is _WAKE:
                        self._drain_wake()
                    else:
                        self._ready(key.fileobj)  # type: ignore[arg-type]
                self._expire()
                if not self._listening and self.open_connections < self._limits.max_connections:
                    self._listen(True)
        finally:
            self._close_all()
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop accepting; connections being served finish on their own."""
        self._stop = True
        self._wake()
        if self._started:
            self._stopped.wait()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return self._open

    @property
    def workers(self) -> int:
        with self._lock:
            return self._workers

    def _listen(self, on: bool) -> None:
        if on and not self._listening:
            self._selector.register(self._listener, selectors.EVENT_READ, _LISTENER)
        elif not on and self._listening:
            self._selector.unregister(self._listener)
        self._listening = on

    def _accept(self) -> None:
        for _ in range(64):  # a burst of connects must not starve the waiting room
            if self.open_connections >= self._limits.max_connections:
                if not self._waiting:
                    self._listen(False)  # the kernel's listen queue holds the rest
                    return
                self._drop(next(iter(self._waiting)))  # the oldest silent one makes room
            try:
                conn, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # EMFILE and the like: back off rather than spin
                log.warning("accept failed: %s", e)
                time.sleep(0.1)
                return
            conn.setblocking(False)
            with self._lock:
                self._open += 1
            self._waiting[conn] = (address, time.monotonic() + self._limits.first_byte_timeout)
            self._selector.register(conn, selectors.EVENT_READ, address)

    def _ready(self, conn: socket.socket) -> None:
        self._selector.unregister(conn)
        address, _ = self._waiting.pop(conn)
        conn.setblocking(True)
        with self._lock:
            self._jobs.append((conn, address))
            start = len(self._jobs) > self._idle and self._workers < self._limits.max_workers
            if start:
                self._workers += 1
                self.peak_workers = max(self.peak_workers, self._workers)
            self._lock.notify()
        if start:
            threading.Thread(target=self._work, name="panicwatch-http", daemon=True).start()

    def _expire(self) -> None:
        now = time.monotonic()
        while self._waiting:
            conn, (_, deadline) = next(iter(self._waiting.items()))
            if deadline > now:
                return
            self._drop(conn)

    def _drop(self, conn: socket.socket) -> None:
        self._selector.unregister(conn)
        del self._waiting[conn]
        conn.close()
        with self._lock:
            self._open -= 1

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # already awake (buffer full) or shutting down
            self._wake_w.send(b"x")

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass

    def _close_all(self) -> None:
        for conn in list(self._waiting):
            self._drop(conn)
        self._listen(False)
        with self._lock:
            self._stop = True
            jobs, self._jobs = list(self._jobs), deque()
            self._open -= len(jobs)
            self._lock.notify_all()
        for conn, _ in jobs:
            conn.close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- workers -----------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._jobs:
                    if self._stop:
                        self._workers -= 1
                        return
                    self._idle += 1
                    try:
                        woken = self._lock.wait(self._limits.worker_idle_exit)
                    finally:
                        self._idle -= 1
                    if not woken and not self._jobs:
                        self._workers -= 1
                        return
                conn, address = self._jobs.popleft()
            try:
                self._handle(conn, address)
            except Exception:
                log.exception("serving %s failed", address)
            finally:
                conn.close()
                with self._lock:
                    self._open -= 1
                if not self._listening:
                    self._wake()  # accepting paused at the limit: there is room again
