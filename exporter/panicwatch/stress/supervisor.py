"""The supervisor: the run in a forked child, and this process never waits on one that may never exit."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import FrameType
from typing import NoReturn, TextIO


def supervised(body: Callable[[], int], patience: float) -> int:
    """Run body in a forked child; relay its stdout and stderr; return the exit code it reports.

    A thread stuck where even SIGKILL cannot end it (a FUSE request its server has already read,
    some NFS paths) keeps a process from ever being reaped, and keeps its stdout and stderr open.
    So the run is a child that reports its exit code on a pipe of its own, and this process
    returns as soon as it has it, without waiting for the child to exit or its output to reach
    EOF: the caller's shell prompt or pipe comes back right after the summary. If no code comes
    within `patience` seconds, the child is killed and the exit code is 1.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    ctl_r, ctl_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(body, out_w, err_w, ctl_w, (out_r, err_r, ctl_r))
    for fd in (out_w, err_w, ctl_w):
        os.close(fd)
    try:
        return _relay(pid, {out_r: sys.stdout, err_r: sys.stderr}, ctl_r, patience)
    finally:
        for fd in (out_r, err_r, ctl_r):
            os.close(fd)
        _reap(pid)


def _child(body: Callable[[], int], out: int, err: int, ctl: int, parent_ends: tuple[int, ...]) -> NoReturn:
    """Run body with stdout/stderr on pipes to the parent, report the exit code on ctl, and _exit."""
    code = 1
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):  # execute() arms its own; ignored around it
            signal.signal(signum, signal.SIG_IGN)
        for fd in parent_ends:
            os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        for fd, target in ((null, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False,  # noqa: SIM115
                          buffering=1)
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False,  # noqa: SIM115
                          buffering=1)
        code = body()
    except BaseException:  # the parent must hear back whatever happened
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        with contextlib.suppress(OSError):
            os.write(ctl, bytes([code & 0xFF]))
        os._exit(code)


def _relay(pid: int, relay: dict[int, TextIO], ctl: int, patience: float) -> int:
    """Copy the child's output until it reports its exit code, then what is already in the pipes."""
    code: int | None = None
    until = time.monotonic() + patience
    with _ForwardSignals(pid), selectors.DefaultSelector() as selector:
        for fd in (*relay, ctl):
            selector.register(fd, selectors.EVENT_READ)
        while code is None:
            remaining = until - time.monotonic()
            if remaining <= 0:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                print(f"panicwatch stress: error: the run did not finish within {patience:g} s",
                      file=sys.stderr)
                return 1
            for key, _ in selector.select(remaining):
                data = os.read(key.fd, 65536)
                if key.fd == ctl:
                    code = data[0] if data else _exit_status(pid)
                elif data:
                    _copy(relay[key.fd], data)
                else:
                    selector.unregister(key.fd)
    for fd, stream in relay.items():
        os.set_blocking(fd, False)
        with contextlib.suppress(BlockingIOError):
            while data := os.read(fd, 65536):
                _copy(stream, data)
    return code


def _copy(stream: TextIO, data: bytes) -> None:
    stream.flush()
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        buffer.write(data)
        buffer.flush()
    else:
        stream.write(data.decode("utf-8", "replace"))
        stream.flush()


def _exit_status(pid: int) -> int:
    """The child closed its end without a word: it is gone; its status, 1 if a signal ended it."""
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        print(f"panicwatch stress: error: the run was killed by {signal.Signals(-code).name}",
              file=sys.stderr)
        return 1
    return code


def _reap(pid: int, wait: float = 0.5) -> None:
    """Collect the child if it exits (it cannot while a call is stuck); else leave it to init."""
    until = time.monotonic() + wait
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(pid, os.WNOHANG) == (0, 0) and time.monotonic() < until:
            time.sleep(0.005)


class _ForwardSignals:
    """SIGINT and SIGTERM to this process go on to the child (a terminal's Ctrl-C reaches both)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.saved: dict[int, object] = {}

    def forward(self, signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):
            os.kill(self.pid, signum)

    def __enter__(self) -> _ForwardSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.saved[signum] = signal.signal(signum, self.forward)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.saved.items():
            if handler is not None:
                signal.signal(signum, handler)  # type: ignore[arg-type]
