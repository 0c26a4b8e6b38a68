"""A thread that reads /dev/kmsg and counts kernel events for the scrape to read.

It starts at the end of the log (and replays what the ring buffer still holds only to rebuild
which NFS servers are not responding), counts each record once by its sequence number, says
how many the ring buffer overwrote before they were read, bounds the server names it keeps,
and without permission logs why once and retries every minute. Details:
docs/kernel-interfaces.md, "kernel_log".
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from panicwatch.exposition import printable
from panicwatch.parsers.kmsg import (
    NFS_NOT_RESPONDING,
    NFS_OK,
    SERVER_KINDS,
    STILL_TRYING,
    KernelEvent,
    KmsgRecord,
    classify,
    parse_records,
)

log = logging.getLogger("panicwatch.kmsg")

DEFAULT_PATH = Path("/dev/kmsg")
READ_SIZE = 16384  # the kernel's largest record is CONSOLE_EXT_LOG_MAX = 8192 bytes
OTHER_SERVER = "_other"
MAX_REPLAY = 1_000_000  # records; a 2 GiB log_buf holds fewer than this many long ones

_HINTS = {
    errno.EPERM: "needs CAP_SYSLOG while kernel.dmesg_restrict=1, and printk.devkmsg must not be off",
    errno.EACCES: "the exporter's user cannot read it (crw-r--r-- root: run as root or grant read)",
    errno.ENOENT: "no such device here (in a container, bind-mount the host's /dev/kmsg)",
}


class KmsgDevice(Protocol):
    """What the watcher reads: one record per read(), OSError(EAGAIN) when empty."""

    def fileno(self) -> int: ...

    def read(self) -> bytes: ...

    def close(self) -> None: ...


class KmsgFile:
    """/dev/kmsg itself, non-blocking, at its end (or at its oldest record)."""

    def __init__(self, path: Path, at_end: bool = True) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            os.lseek(self._fd, 0, os.SEEK_END if at_end else os.SEEK_SET)
        except OSError:
            os.close(self._fd)
            raise

    def fileno(self) -> int:
        return self._fd

    def read(self) -> bytes:
        return os.read(self._fd, READ_SIZE)

    def close(self) -> None:
        os.close(self._fd)


Opener = Callable[[Path, bool], KmsgDevice]  # (path, at_end) -> device


@dataclass(frozen=True)
class KmsgSnapshot:
    counts: dict[tuple[str, str], int]  # (event kind, server or "") -> events since start
    not_responding: dict[str, float]  # NFS server -> unix time first reported, since its last OK
    records_seen: int  # records read (every facility), each sequence number once
    dropped: int  # records lost before we could read them (sequence gaps)
    overruns: int  # EPIPE reads (the ring buffer overtook us)
    malformed: int  # lines that were not records
    servers_folded: int  # events counted under "_other" because of max_servers
    replayed: int  # old records read at start-up to rebuild not_responding
    recent: tuple[KmsgRecord, ...]  # the last records read, oldest first
    error: str | None  # why /dev/kmsg is not being read, if it is not
    reading: bool  # the device is open and being read


class KmsgWatcher:
    def __init__(self, path: Path = DEFAULT_PATH, *, opener: Opener = KmsgFile,
                 replay: bool = True, retry_interval: float | None = 60.0, max_servers: int = 256,
                 recent: int = 32, on_record: Callable[[KmsgRecord, KernelEvent | None], None] | None = None,
                 wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.opener = opener
        self.replay = replay
        self._replay_pending = replay  # once per watcher: after a reopen the live state is better
        self.retry_interval = retry_interval
        self.max_servers = max_servers
        self.on_record = on_record
        self.wall = wall
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._not_responding: dict[str, float] = {}
        self._servers: set[str] = set()
        self._recent: deque[KmsgRecord] = deque(maxlen=recent)
        self._next_seq: int | None = None
        self._records_seen = self._dropped = self._overruns = self._malformed = 0
        self._servers_folded = self._replayed = 0
        self._error: str | None = None
        self._reading = False
        self._logged_error: str | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.thread = threading.Thread(target=self._run, name="kmsg watcher", daemon=True)

    # --- control ----------------------------------------------------------------------------

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):  # the pipe is full (already woken) or closed
            os.write(self._wake_w, b"x")
        if self.thread.is_alive():
            self.thread.join(timeout)
        if not self.thread.is_alive() and self._wake_w >= 0:
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def snapshot(self) -> KmsgSnapshot:
        with self._lock:
            return KmsgSnapshot(dict(self._counts), dict(self._not_responding), self._records_seen,
                                self._dropped, self._overruns, self._malformed, self._servers_folded,
                                self._replayed, tuple(self._recent), self._error, self._reading)

    # --- the thread -------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            device = self._open()
            if device is None:
                if self.retry_interval is None or self._stop.wait(self.retry_interval):
                    return
                continue
            try:
                if self._replay_pending:
                    self._replay_pending = False
                    if (error := self.replay_buffer()) is not None:
                        log.info("kmsg watcher: no replay: %s", error)
                self._read(device)
            except OSError as e:
                self._set_error(f"reading {self.path} failed: {_describe(e)}")
            except Exception:  # the thread must not die on a bug in one record
                log.exception("kmsg watcher: unexpected error")
                self._set_error(f"reading {self.path} failed: unexpected error (see the log)")
            finally:
                with self._lock:
                    self._reading = False
                device.close()
            if self._stop.is_set() or self.retry_interval is None:
                return
            self._stop.wait(self.retry_interval)

    def _open(self) -> KmsgDevice | None:
        try:
            device = self.opener(self.path, True)
        except OSError as e:
            hint = _HINTS.get(e.errno or 0)
            self._set_error(f"cannot open {self.path}: {_describe(e)}" + (f": {hint}" if hint else ""))
            return None
        with self._lock:
            self._error, self._reading = None, True
        if self._logged_error is not None:
            log.info("kmsg watcher: reading %s again", self.path)
            self._logged_error = None
        return device

    def _set_error(self, message: str) -> None:
        with self._lock:
            self._error = message
        if message != self._logged_error:  # once per distinct error, not per retry
            log.warning("kmsg watcher: %s", message)
            self._logged_error = message

    def _read(self, device: KmsgDevice) -> None:
        poller = select.poll()
        poller.register(device.fileno(), select.POLLIN | select.POLLPRI)
        poller.register(self._wake_r, select.POLLIN)
        while not self._stop.is_set():
            if not self._drain(device):
                return
            poller.poll(1000)  # the wake-up pipe ends this at stop(); 1 s is a backstop

    def _drain(self, device: KmsgDevice) -> bool:
        """Read until EAGAIN. False at end of file (not /dev/kmsg: a file or a fake)."""
        while not self._stop.is_set():
            try:
                data = device.read()
            except BlockingIOError:
                return True
            except OSError as e:
                if e.errno == errno.EPIPE:
                    with self._lock:
                        self._overruns += 1
                        if self._next_seq is None:
                            self._dropped += 1  # no baseline: at least one was lost
                    continue
                if e.errno in (errno.EINVAL, errno.EINTR):
                    continue  # EINVAL: the kernel skipped a record too big for us (a gap)
                raise
            if not data:
                self._set_error(f"{self.path}: unexpected end of file")
                return False
            self._ingest(data)
        return True

    def _ingest(self, data: bytes) -> None:
        records, skipped = parse_records(data)
        if skipped:
            with self._lock:
                self._malformed += skipped
        for record in records:
            event = classify(record)
            with self._lock:
                if self._next_seq is not None and record.seq < self._next_seq:
                    continue  # seen already
                if self._next_seq is not None and record.seq > self._next_seq:
                    self._dropped += record.seq - self._next_seq
                self._next_seq = record.seq + 1
                self._records_seen += 1
                self._recent.append(record)
                if event is not None:
                    self._apply(event, self.wall(), count=True)  # read within moments of logging
            if self.on_record is not None:
                try:
                    self.on_record(record, event)
                except Exception:
                    log.exception("kmsg watcher: on_record hook failed")

    def replay_buffer(self) -> str | None:
        """Rebuild not_responding from the records still in the ring buffer. ``check`` calls
        it alone, with no thread. Returns why the buffer could not be read, if it could not."""
        try:
            device = self.opener(self.path, False)
        except OSError as e:  # in the thread the live descriptor is open: this only costs the replay
            hint = _HINTS.get(e.errno or 0)
            return f"cannot open {self.path}: {_describe(e)}" + (f": {hint}" if hint else "")
        replayed = 0
        try:
            while replayed < MAX_REPLAY and not self._stop.is_set():
                try:
                    data = device.read()
                except BlockingIOError:
                    break
                except OSError as e:
                    if e.errno in (errno.EPIPE, errno.EINVAL, errno.EINTR):
                        continue
                    raise
                if not data:
                    break
                for record in parse_records(data)[0]:
                    replayed += 1
                    event = classify(record)
                    if event is not None and event.kind in (NFS_NOT_RESPONDING, NFS_OK):
                        with self._lock:
                            self._apply(event, self._wall_time(record), count=False)
        finally:
            device.close()
        with self._lock:
            self._replayed = replayed
        return None

    def _apply(self, event: KernelEvent, when: float, count: bool) -> None:
        """Under the lock. ``when``: the unix time the record was logged."""
        server = self._server_label(event.server) if event.kind in SERVER_KINDS else ""
        if count:
            self._counts[(event.kind, server)] += 1
        if event.kind == NFS_NOT_RESPONDING and event.detail == STILL_TRYING:
            self._not_responding.setdefault(server, when)
        elif event.kind == NFS_OK:
            self._not_responding.pop(server, None)

    def _server_label(self, server: str) -> str:
        server = printable(server)
        if server in self._servers:
            return server
        if len(self._servers) < self.max_servers:
            self._servers.add(server)
            return server
        self._servers_folded += 1
        return OTHER_SERVER

    def _wall_time(self, record: KmsgRecord) -> float:
        """When the kernel logged an old record: its timestamp is on the printk clock
        (local_clock), which counts from boot like CLOCK_MONOTONIC but is not slewed by
        NTP, so this is off by the accumulated slew (ppm of the uptime)."""
        now = self.wall()
        return min(now, now - (self.monotonic() - record.timestamp_us / 1e6))


def _describe(error: OSError) -> str:
    name = errno.errorcode.get(error.errno or 0, "error")
    return f"{error.strerror or error} ({name})"
