"""Probes for `panicwatch check`: statvfs of each path in a child process of its own, all at
once, with one deadline.

A process, not a thread as in the canary: a thread stuck in an uninterruptible wait (a frozen
FUSE request, some NFS paths) would hold up the exit of the whole command, since a process
is reaped only when its last thread leaves the kernel. A child stuck at the deadline is sent
SIGKILL and left behind: NFS waits are killable, so it goes at once; an uninterruptible one
goes when its wait ends, reparented to init. One child per path per run: bounded.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_RESULT = struct.Struct("=di")  # seconds the statvfs took, errno (0: it answered)


@dataclass(frozen=True)
class ProbeResult:
    seconds: float | None  # how long statvfs took; None when it did not return in time
    error: str | None = None  # errno name when it failed (ESTALE, EACCES...)

    @property
    def timed_out(self) -> bool:
        return self.seconds is None


def _child(path: Path, write_end: int) -> None:
    # A child left stuck must hold none of our descriptors: a caller reading our stdout
    # (a pipe, $(...)) would wait for its end of file as long as the mount hangs.
    os.closerange(0, write_end)
    os.closerange(write_end + 1, os.sysconf("SC_OPEN_MAX"))
    start = time.monotonic()
    code = 0
    try:
        os.statvfs(path)
    except OSError as e:
        code = e.errno or errno.EIO
    os.write(write_end, _RESULT.pack(time.monotonic() - start, code))


class ProbeRun:
    """The probes of every path, started at once (a fork each) and collected by ``wait``,
    which returns by the deadline counted from the start: work done in between is free."""

    def __init__(self, paths: Sequence[Path], timeout: float) -> None:
        self.deadline = time.monotonic() + timeout
        self._children: dict[int, tuple[int, int]] = {}  # read end -> (index, pid)
        self._count = len(paths)
        for index, path in enumerate(paths):
            read_end, write_end = os.pipe2(os.O_CLOEXEC)
            pid = os.fork()
            if pid == 0:  # pragma: no cover (the child; coverage cannot follow it)
                try:
                    os.close(read_end)
                    _child(path, write_end)
                finally:
                    os._exit(0)
            os.close(write_end)
            self._children[read_end] = (index, pid)

    def wait(self) -> list[ProbeResult]:
        results: list[ProbeResult | None] = [None] * self._count
        poller = select.poll()
        for read_end in self._children:
            poller.register(read_end, select.POLLIN | select.POLLHUP)
        pending = dict(self._children)
        while pending:
            # answers already in are taken even past the deadline: the caller may come late
            ready = poller.poll(max(0.0, self.deadline - time.monotonic()) * 1000)
            if not ready:
                break
            for read_end, _ in ready:
                index, pid = pending.pop(read_end)
                poller.unregister(read_end)
                results[index] = _read_result(read_end)
                os.close(read_end)
                _reap(pid, wait=True)
        self._children = pending
        self.cancel()
        return [r if r is not None else ProbeResult(None) for r in results]

    def cancel(self) -> None:
        """Kill the probes still out; nothing after ``wait``."""
        for read_end, (_, pid) in self._children.items():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _reap(pid, wait=False)
            os.close(read_end)
        self._children = {}


def probe_all(paths: Sequence[Path], timeout: float) -> list[ProbeResult]:
    """statvfs every path, in parallel; returns within ``timeout`` (and a fork per path)."""
    return ProbeRun(paths, timeout).wait()


def _read_result(read_end: int) -> ProbeResult:
    data = os.read(read_end, _RESULT.size)
    if len(data) != _RESULT.size:  # the child died before it could tell (killed by someone)
        return ProbeResult(None, "no answer")
    seconds, code = _RESULT.unpack(data)
    return ProbeResult(seconds, errno.errorcode.get(code, str(code)) if code else None)


def _reap(pid: int, *, wait: bool) -> None:
    """A child that answered exits at once; one killed in an uninterruptible wait is left to
    init when we exit (waiting for it is what a hang would make us do)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0 if wait else os.WNOHANG)
