"""Socket reads and writes with limits, so that a slow or silent client frees its worker.

A per-call socket timeout is not enough against a client that sends one byte every few
seconds: each call makes progress and the request never ends. The request (TLS handshake
included) therefore has one deadline in all; the response has a progress timeout per
piece, because a big scrape to a slow-but-reading client is legitimate.
"""

from __future__ import annotations

import io
import socket
import time
from typing import Any

WRITE_PIECE = 64 * 1024


class DeadlineReader(io.RawIOBase):
    """A socket's input that raises TimeoutError once ``deadline`` (monotonic) has passed."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request did not arrive in time")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


class PieceWriter(io.RawIOBase):
    """A socket's output, gathered into pieces of up to 64 KiB, each of which the client
    must take within ``timeout`` seconds.

    Gathering also makes a small response one segment rather than one per header line and
    chunk. A client that stops reading gets ConnectionAbortedError, which wsgiref treats
    as a client gone away (no traceback).
    """

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        super().__init__()
        self._sock = sock
        self._timeout = timeout
        self._pending = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if len(self._pending) + len(view) < WRITE_PIECE:
            self._pending += view
            return len(view)
        self._send(self._pending)  # a big chunk goes out as it is, not copied into the buffer
        self._pending = bytearray()
        self._send(view)
        return len(view)

    def flush(self) -> None:
        # wsgiref flushes after every chunk; the gathering happens here, the sending in
        # drain() (or once a piece is full).
        pass

    def drain(self) -> None:
        self._send(self._pending)
        self._pending = bytearray()

    def _send(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        for start in range(0, len(view), WRITE_PIECE):
            self._sock.settimeout(self._timeout)
            try:
                self._sock.sendall(view[start:start + WRITE_PIECE])
            except TimeoutError:
                raise ConnectionAbortedError(
                    f"the client took no data for {self._timeout:g} s") from None
