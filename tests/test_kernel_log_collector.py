"""kernel_log metrics from a watcher fed kernel-format records (the watcher's own tests,
including the real /dev/kmsg, are in test_kernel_log_watcher.py)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from conftest import names, scrape_text, value
from panicwatch.background.kernel_log import KmsgWatcher
from panicwatch.collectors.base import PanicwatchCollector
from panicwatch.collectors.kernel_log import KernelLogCollector
from panicwatch.exposition import render_all
from panicwatch.host import Host


class Datagrams:
    """A device that returns one record per read(), like /dev/kmsg."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> bytes:
        return self.sock.recv(16384)

    def close(self) -> None:
        self.sock.close()


def scrape(watcher: KmsgWatcher) -> dict:
    registry = CollectorRegistry()
    registry.register(PanicwatchCollector(Host.from_paths("/"), [KernelLogCollector(watcher)]))
    return scrape_text(render_all(registry).decode())


def test_events_by_class_and_servers_not_responding():
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    watcher = KmsgWatcher(Path("/dev/kmsg"), opener=lambda path, at_end: Datagrams(ours),
                          replay=False)
    watcher.start()
    records = [
        "5,100,5000000,-;nfs: server filer1 not responding, still trying",
        "5,101,5000100,-;nfs: server filer2 not responding, still trying",
        "4,102,6000000,-;watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [find:48213]",
        "3,103,7000000,-;INFO: task stat:9913 blocked for more than 120 seconds.",
        "5,104,8000000,-;nfs: server filer1 OK",
        # written from userspace: facility 1, must not count
        "8,105,8000001,-;nfs: server spoofed not responding, still trying",
        "5,108,9000000,-;nfs: server filer2 not responding, still trying",  # 106-107 lost
    ]
    try:
        for record in records:
            kernel.send(record.encode() + b"\n")
        deadline = time.monotonic() + 5
        while watcher.snapshot().records_seen < len(records):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        s = scrape(watcher)
    finally:
        watcher.stop()
        kernel.close()
    event = "panicwatch_kernel_log_events_total"
    assert value(s, event, event="nfs_not_responding", server="filer1") == 1
    assert value(s, event, event="nfs_not_responding", server="filer2") == 2
    assert value(s, event, event="nfs_ok", server="filer1") == 1
    assert value(s, event, event="soft_lockup", server="") == 1
    assert value(s, event, event="hung_task", server="") == 1
    assert value(s, event, event="rcu_stall", server="") == 0  # present before it ever happens
    assert value(s, event, event="nfs_not_responding", server="spoofed") is None
    assert {dict(lb)["server"]: v for lb, v in
            names(s, "panicwatch_nfs_servers_not_responding").items()} == {"filer2": 1}
    assert value(s, "panicwatch_kernel_log_records_total") == 7
    assert value(s, "panicwatch_kernel_log_records_dropped_total") == 2
    assert value(s, "panicwatch_kernel_log_reading") == 1


def test_without_a_device_it_says_so_and_exports_nothing_else(tmp_path):
    watcher = KmsgWatcher(tmp_path / "no-kmsg", replay=False, retry_interval=None)
    watcher.start()
    try:
        deadline = time.monotonic() + 5
        while watcher.snapshot().error is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        s = scrape(watcher)
    finally:
        watcher.stop()
    assert value(s, "panicwatch_kernel_log_reading") == 0
    assert value(s, "panicwatch_collector_success", collector="kernel_log") == 1
    assert not names(s, "panicwatch_kernel_log_events_total")
