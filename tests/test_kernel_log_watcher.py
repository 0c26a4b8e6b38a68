"""The /dev/kmsg watcher: a fake device for exact sequences (gaps, EPIPE, duplicates,
open failures), then the real /dev/kmsg when we are root."""

from __future__ import annotations

import collections
import contextlib
import ctypes
import errno
import itertools
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from panicwatch.background.kernel_log import OTHER_SERVER, KmsgFile, KmsgSnapshot, KmsgWatcher
from panicwatch.parsers.kmsg import (
    HUNG_TASK,
    LOCKD_NOT_RESPONDING,
    NFS_NOT_RESPONDING,
    NFS_OK,
    OOPS,
    SOFT_LOCKUP,
    STILL_TRYING,
    KernelEvent,
    KmsgRecord,
    classify_message,
    parse_record,
)

WALL, MONO = 1_700_000_000.0, 5000.0  # the injected clocks: boot was at WALL - MONO


class FakeKmsg:
    """Hands out one queued item per read() like /dev/kmsg: a record's bytes, or an OSError
    to raise (EPIPE...). Empty: EAGAIN. A pipe with one byte per item makes poll() work."""

    def __init__(self, *items: bytes | OSError) -> None:
        self._r, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._items: collections.deque[bytes | OSError] = collections.deque()
        self._lock = threading.Lock()
        self.reads = 0
        self.closed = False
        self.feed(*items)

    def feed(self, *items: bytes | OSError) -> None:
        with self._lock:
            for item in items:
                self._items.append(item)
                os.write(self._w, b"!")

    def fileno(self) -> int:
        return self._r

    def read(self) -> bytes:
        with self._lock:
            self.reads += 1
            if not self._items:
                raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
            item = self._items.popleft()
            os.read(self._r, 1)
        if isinstance(item, OSError):
            raise item
        return item

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self._r)
            os.close(self._w)


def rec(seq: int, message: str, prio: int = 3, ts_us: int = 4_990_000_000) -> bytes:
    return f"{prio},{seq},{ts_us},-;{message}\n".encode()


def epipe() -> OSError:
    return BrokenPipeError(errno.EPIPE, "Broken pipe")


NOT_RESP = "nfs: server {} not responding, still trying"
OK = "nfs: server {} OK"


def wait_for(watcher: KmsgWatcher, check: Callable[[KmsgSnapshot], bool],
             timeout: float = 5.0) -> KmsgSnapshot:
    deadline = time.monotonic() + timeout
    while True:
        snap = watcher.snapshot()
        if check(snap):
            return snap
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last snapshot: {snap}")
        time.sleep(0.005)


@contextlib.contextmanager
def watching(live: FakeKmsg, history: FakeKmsg | None = None, **kwargs: object) -> Iterator[KmsgWatcher]:
    def opener(path: Path, at_end: bool) -> FakeKmsg:
        assert path == Path("/dev/kmsg")
        if at_end:
            return live
        if history is None:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
        return history

    kwargs.setdefault("replay", history is not None)
    kwargs.setdefault("wall", lambda: WALL)
    kwargs.setdefault("monotonic", lambda: MONO)
    watcher = KmsgWatcher(opener=opener, **kwargs)
    watcher.start()
    try:
        yield watcher
    finally:
        watcher.stop()
        assert not watcher.alive


def test_counts_kernel_events_only() -> None:
    live = FakeKmsg()
    with watching(live) as w:
        live.feed(rec(10, "watchdog: BUG: soft lockup - CPU#3 stuck for 22s! [kworker/3:1:123]", prio=0),
                  rec(11, NOT_RESP.format("filer01"), prio=5),
                  rec(12, NOT_RESP.format("spoofed.example"), prio=8),  # "<0>..." from userspace
                  rec(13, "INFO: task cp:4711 blocked for more than 120 seconds.", prio=3),
                  rec(14, "Oops: 0000 [#1] SMP NOPTI", prio=4),
                  rec(15, "nothing to see", prio=6))
        snap = wait_for(w, lambda s: s.records_seen == 6)
    assert snap.counts == {(SOFT_LOCKUP, ""): 1, (NFS_NOT_RESPONDING, "filer01"): 1, (HUNG_TASK, ""): 1,
                           (OOPS, ""): 1}
    assert snap.not_responding == {"filer01": WALL}  # live: the time we read it
    assert (snap.dropped, snap.overruns, snap.malformed, snap.error, snap.reading) == (0, 0, 0, None, True)
    assert [r.seq for r in snap.recent] == [10, 11, 12, 13, 14, 15]
    assert snap.recent[2].facility == 1


def test_sequence_gap_is_counted_as_dropped() -> None:
    live = FakeKmsg(rec(100, "a"), rec(101, "b"), rec(105, "c"), rec(106, "d"), rec(1106, "e"))
    with watching(live) as w:
        snap = wait_for(w, lambda s: s.records_seen == 5)
    assert (snap.dropped, snap.overruns) == (3 + 999, 0)


def test_epipe_counts_the_lost_records_once() -> None:
    """EPIPE: the kernel moved us to its oldest record; the gap says how many were lost."""
    live = FakeKmsg(rec(200, "a"), epipe(), rec(210, "b"), epipe(), epipe(), rec(211, "c"))
    with watching(live) as w:
        snap = wait_for(w, lambda s: s.records_seen == 3)
    assert (snap.dropped, snap.overruns, snap.error) == (9, 3, None)


def test_epipe_before_any_record_counts_one() -> None:
    live = FakeKmsg(epipe(), rec(7, "a"), rec(8, "b"))
    with watching(live) as w:
        snap = wait_for(w, lambda s: s.records_seen == 2)
    assert (snap.dropped, snap.overruns) == (1, 1)


def test_same_sequence_number_counts_once() -> None:
    line = rec(300, NOT_RESP.format("filer01"), prio=5)
    live = FakeKmsg(line, line, rec(299, NOT_RESP.format("filer01"), prio=5), line, rec(301, "x"))
    with watching(live) as w:
        snap = wait_for(w, lambda s: live.reads >= 6 and s.records_seen == 2)
    assert snap.counts == {(NFS_NOT_RESPONDING, "filer01"): 1}
    assert (snap.records_seen, snap.dropped) == (2, 0)


def test_not_responding_then_ok_clears_the_server() -> None:
    live = FakeKmsg()
    now = [WALL]
    with watching(live, wall=lambda: now[0]) as w:
        live.feed(rec(1, NOT_RESP.format("filer01")), rec(2, NOT_RESP.format("2001:db8::a")))
        snap = wait_for(w, lambda s: s.records_seen == 2)
        assert snap.not_responding == {"filer01": WALL, "2001:db8::a": WALL}
        now[0] = WALL + 60
        live.feed(rec(3, NOT_RESP.format("filer01")))  # another task, the same outage: keeps its start
        snap = wait_for(w, lambda s: s.records_seen == 3)
        assert snap.not_responding == {"filer01": WALL, "2001:db8::a": WALL}
        live.feed(rec(4, OK.format("filer01")),
                  rec(5, "nfs: server soft.example not responding, timed out"),  # no OK will follow
                  rec(6, "lockd: server 2001:db8::a not responding, still trying"),
                  rec(7, OK.format("never-down.example")))
        snap = wait_for(w, lambda s: s.records_seen == 7)
        assert snap.not_responding == {"2001:db8::a": WALL}
        now[0] = WALL + 120
        live.feed(rec(20, NOT_RESP.format("filer01")))  # a new outage starts now
        snap = wait_for(w, lambda s: s.records_seen == 8)
    assert snap.not_responding == {"2001:db8::a": WALL, "filer01": WALL + 120}
    assert snap.dropped == 12  # 8..19
    assert snap.counts == {
        (NFS_NOT_RESPONDING, "filer01"): 3, (NFS_NOT_RESPONDING, "2001:db8::a"): 1, (NFS_OK, "filer01"): 1,
        (NFS_NOT_RESPONDING, "soft.example"): 1, (LOCKD_NOT_RESPONDING, "2001:db8::a"): 1,
        (NFS_OK, "never-down.example"): 1,
    }


def test_server_cap_folds_into_other() -> None:
    live = FakeKmsg(rec(1, NOT_RESP.format("a")), rec(2, NOT_RESP.format("b")), rec(3, NOT_RESP.format("c")),
                    rec(4, NOT_RESP.format("d")), rec(5, OK.format("a")), rec(6, OK.format("c")),
                    rec(7, "nfs: server bad\\xffname OK"))
    with watching(live, max_servers=2) as w:
        snap = wait_for(w, lambda s: s.records_seen == 7)
    assert snap.counts == {(NFS_NOT_RESPONDING, "a"): 1, (NFS_NOT_RESPONDING, "b"): 1,
                           (NFS_NOT_RESPONDING, OTHER_SERVER): 2, (NFS_OK, "a"): 1, (NFS_OK, OTHER_SERVER): 2}
    assert snap.not_responding == {"b": WALL}  # "_other" went down twice, then an OK: cleared
    assert snap.servers_folded == 4  # c, d, OK c, OK bad\xffname


def test_server_label_shows_undecodable_bytes() -> None:
    live = FakeKmsg(rec(1, "nfs: server bad\\xffname not responding, still trying"))
    with watching(live) as w:
        snap = wait_for(w, lambda s: s.records_seen == 1)
    assert snap.not_responding == {"bad\\xffname": WALL}
    assert snap.recent[0].message == "nfs: server bad\udcffname not responding, still trying"


def test_malformed_records_are_counted() -> None:
    live = FakeKmsg(b"garbage\n", rec(1, "fine"), b"6,x,1,-;bad seq\n SUBSYSTEM=a\n", b"")
    with watching(live, retry_interval=None) as w:
        snap = wait_for(w, lambda s: not w.alive)
    assert (snap.records_seen, snap.malformed) == (1, 3)
    assert snap.error == "/dev/kmsg: unexpected end of file"  # the b"" read: not /dev/kmsg behaviour


def test_recent_is_bounded_and_the_hook_sees_every_record() -> None:
    seen: list[tuple[int, KernelEvent | None]] = []

    def hook(record: KmsgRecord, event: KernelEvent | None) -> None:
        seen.append((record.seq, event))
        if record.seq == 2:
            raise RuntimeError("a broken hook must not stop the watcher")

    live = FakeKmsg(*(rec(i, OK.format("f")) for i in range(1, 6)))
    with watching(live, recent=3, on_record=hook) as w:
        snap = wait_for(w, lambda s: s.records_seen == 5)
    assert [r.seq for r in snap.recent] == [3, 4, 5]
    assert seen == [(i, KernelEvent(NFS_OK, server="f")) for i in range(1, 6)]
    assert w.snapshot().records_seen == 5


def test_replay_rebuilds_not_responding_without_counting() -> None:
    history = FakeKmsg(rec(1, NOT_RESP.format("a"), ts_us=1_000_000_000),
                       rec(2, NOT_RESP.format("b"), ts_us=2_000_000_000),
                       epipe(),
                       rec(5, OK.format("a")),
                       rec(6, "watchdog: BUG: soft lockup - CPU#1 stuck for 30s! [x:1]", prio=0),
                       rec(7, NOT_RESP.format("c"), prio=13),  # userspace: ignored here too
                       rec(8, NOT_RESP.format("b"), ts_us=4_000_000_000))  # still down: keeps its start
    live = FakeKmsg()
    with watching(live, history) as w:
        snap = wait_for(w, lambda s: s.replayed == 6)
        assert snap.not_responding == {"b": WALL - 3000.0}
        assert (snap.counts, snap.records_seen, snap.dropped) == ({}, 0, 0)
        assert history.closed
        # the live descriptor was positioned before the replay ended: the overlap is
        # applied again (in order, so the state is the same) and counted once
        live.feed(rec(8, NOT_RESP.format("b")), rec(9, OK.format("b")))
        snap = wait_for(w, lambda s: s.records_seen == 2)
    assert snap.not_responding == {}
    assert snap.counts == {(NFS_NOT_RESPONDING, "b"): 1, (NFS_OK, "b"): 1}


def test_open_failure_is_reported_once_and_retried_slowly(caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[float] = []
    live = FakeKmsg(rec(1, "x"))

    def opener(path: Path, at_end: bool) -> FakeKmsg:
        attempts.append(time.monotonic())
        if len(attempts) <= 3:
            raise PermissionError(errno.EPERM, "Operation not permitted")
        return live

    caplog.set_level(logging.INFO, logger="panicwatch.kmsg")
    w = KmsgWatcher(opener=opener, replay=False, retry_interval=0.1)
    w.start()
    try:
        snap = wait_for(w, lambda s: s.error is not None)
        assert snap.error == ("cannot open /dev/kmsg: Operation not permitted (EPERM): needs CAP_SYSLOG "
                              "while kernel.dmesg_restrict=1, and printk.devkmsg must not be off")
        assert not snap.reading
        snap = wait_for(w, lambda s: s.records_seen == 1)
    finally:
        w.stop()
    assert (snap.error, snap.reading) == (None, True)
    assert len(attempts) == 4
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert all(gap >= 0.09 for gap in gaps), gaps
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "kmsg watcher: cannot open /dev/kmsg: Operation not permitted (EPERM): needs CAP_SYSLOG "
                    "while kernel.dmesg_restrict=1, and printk.devkmsg must not be off"),
        ("INFO", "kmsg watcher: reading /dev/kmsg again"),
    ]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (FileNotFoundError(errno.ENOENT, "No such file or directory"),
         "cannot open /dev/kmsg: No such file or directory (ENOENT): no such device here (in a container, "
         "bind-mount the host's /dev/kmsg)"),
        (PermissionError(errno.EACCES, "Permission denied"),
         "cannot open /dev/kmsg: Permission denied (EACCES): the exporter's user cannot read it "
         "(crw-r--r-- root: run as root or grant read)"),
        (OSError(errno.EIO, "Input/output error"), "cannot open /dev/kmsg: Input/output error (EIO)"),
    ],
)
def test_open_failure_without_retry(error: OSError, expected: str) -> None:
    calls = []

    def opener(path: Path, at_end: bool) -> FakeKmsg:
        calls.append(at_end)
        raise error

    w = KmsgWatcher(opener=opener, retry_interval=None)
    w.start()
    w.thread.join(5)
    assert not w.alive
    assert calls == [True]
    assert w.snapshot().error == expected
    w.stop()


def test_read_error_reopens() -> None:
    first = FakeKmsg(rec(1, "a"), OSError(errno.EIO, "Input/output error"))
    second = FakeKmsg(rec(3, "c"))
    devices = iter([first, second])
    w = KmsgWatcher(opener=lambda path, at_end: next(devices), replay=False, retry_interval=0.01)
    w.start()
    try:
        snap = wait_for(w, lambda s: s.records_seen == 2)
    finally:
        w.stop()
    assert first.closed
    assert (snap.dropped, snap.error) == (1, None)  # seq 2 was logged while we were away


def test_stop_is_prompt_while_idle() -> None:
    live = FakeKmsg()
    with watching(live) as w:
        wait_for(w, lambda s: s.reading)
        time.sleep(0.05)
        start = time.monotonic()
        w.stop()
        assert time.monotonic() - start < 0.5
    assert live.closed


# --- the real /dev/kmsg -------------------------------------------------------------------

KMSG = Path("/dev/kmsg")


def _kmsg_usable() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    try:
        os.close(os.open(KMSG, os.O_RDONLY | os.O_NONBLOCK))
    except OSError as e:
        return f"cannot read /dev/kmsg: {e}"
    with contextlib.suppress(OSError):
        if Path("/proc/sys/kernel/printk_devkmsg").read_text().strip() == "off":
            return "printk.devkmsg=off: writes to /dev/kmsg are dropped"
    return None


real = pytest.mark.skipif(_kmsg_usable() is not None, reason=str(_kmsg_usable()))


@real
def test_real_kmsg_spoofed_nfs_message_is_seen_but_not_counted() -> None:
    marker = f"panicwatch-test-{uuid.uuid4()}"
    server = f"{marker}.example"
    w = KmsgWatcher(KMSG)
    w.start()
    try:
        before = wait_for(w, lambda s: s.reading and s.replayed > 0)
        # one descriptor: devkmsg ratelimits each open file to 10 writes per 5 s
        fd = os.open(KMSG, os.O_WRONLY)
        try:
            os.write(fd, f"<0>nfs: server {server} not responding, still trying\n".encode())
            os.write(fd, f"<3>{marker} plain\n".encode())
            os.write(fd, f"nfs: server {server} OK\n".encode())
        finally:
            os.close(fd)
        snap = wait_for(w, lambda s: sum(marker in r.message for r in s.recent) == 3, timeout=5)
    finally:
        w.stop()
    assert not w.alive
    ours = [r for r in snap.recent if marker in r.message]
    default_level = int(Path("/proc/sys/kernel/printk").read_text().split()[1])
    assert [(r.facility, r.level) for r in ours] == [(1, 0), (1, 3), (1, default_level)]
    assert [r.message for r in ours] == [f"nfs: server {server} not responding, still trying",
                                         f"{marker} plain", f"nfs: server {server} OK"]
    assert ours[0].seq < ours[1].seq < ours[2].seq
    # the text alone would be an NFS event; the facility is what keeps it out
    assert classify_message(ours[0].message) == KernelEvent(NFS_NOT_RESPONDING, server=server,
                                                            detail=STILL_TRYING)
    assert not any(server in label for _, label in snap.counts)
    assert server not in snap.not_responding
    assert snap.records_seen >= before.records_seen + 3
    assert (snap.error, snap.malformed) == (None, 0)


@real
def test_real_kmsg_history_parses() -> None:
    """Every record in this kernel's ring buffer parses, and boot messages are facility 0."""
    device = KmsgFile(KMSG, at_end=False)
    records = []
    try:
        while True:
            try:
                data = device.read()
            except BlockingIOError:
                break
            except BrokenPipeError:
                continue
            record = parse_record(data)
            assert record is not None, data
            assert record.skipped_lines == 0, data
            records.append(record)
    finally:
        device.close()
    assert records
    assert any(r.facility == 0 for r in records)
    assert all(a.seq < b.seq for a, b in itertools.pairwise(records))


def _drop_syslog_capabilities() -> None:
    """In the child: leave CAP_SYS_ADMIN and CAP_SYSLOG out of the bounding set, so that
    even root opens /dev/kmsg as an unprivileged reader (kernel.dmesg_restrict applies)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (21, 34):  # CAP_SYS_ADMIN, CAP_SYSLOG
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


CHILD = """
import logging, sys
from panicwatch.background.kernel_log import KmsgWatcher
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
w = KmsgWatcher(retry_interval=None)
w.start()
w.thread.join(10)
s = w.snapshot()
print(s.error)
print(s.reading, w.alive)
"""


@real
def test_real_kmsg_without_capabilities() -> None:
    restricted = Path("/proc/sys/kernel/dmesg_restrict").read_text().strip() == "1"
    result = subprocess.run([sys.executable, "-c", CHILD], preexec_fn=_drop_syslog_capabilities,
                            capture_output=True, text=True, timeout=30, check=True)
    if restricted:
        error = ("cannot open /dev/kmsg: Operation not permitted (EPERM): needs CAP_SYSLOG while "
                 "kernel.dmesg_restrict=1, and printk.devkmsg must not be off")
        assert result.stdout.splitlines() == [error, "False False"]
        assert result.stderr.splitlines() == [f"WARNING kmsg watcher: {error}"]
    else:  # unrestricted: anyone may read the kernel log
        assert result.stdout.splitlines()[0] == "None"
