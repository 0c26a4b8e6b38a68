"""The canary and `stress` against a real FUSE mount that slows down, freezes and thaws.

`serve` runs as a subprocess and is scraped over HTTP while its probe is stuck in the
kernel: scrapes stay fast, the thread count stays flat, the timeout counts once, and the
probe completes after the thaw. FreezeFS always thaws and unmounts, even on failure.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import scrape_text, value
from freezefs import FreezeFS
from test_server import get, serve_process

QUIET = ["--no-collector.kdump", "--no-collector.vmcores", "--no-collector.kernel",
         "--no-collector.readiness", "--no-collector.nfs"]


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads: line")


def scrape(base: str) -> tuple[float, dict]:
    start = time.monotonic()
    status, _, body = get(base + "/metrics")
    took = time.monotonic() - start
    assert status == 200
    return took, scrape_text(body.decode())


def m(name: str) -> str:
    return f"panicwatch_canary_{name}"


@pytest.fixture
def fuse(tmp_path):
    (tmp_path / "mnt").mkdir()
    with FreezeFS(tmp_path / "mnt", files=20) as fs:
        yield fs


def wait_until(base: str, check, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        _, s = scrape(base)
        if check(s):
            return s
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_delay_freeze_and_thaw(fuse):
    mp = str(fuse.path)
    args = ["--collector.canary.path", mp, "--collector.canary.interval", "0.2",
            "--collector.canary.timeout", "1",
            "--collector.canary.scheduler-tick", "0.05", *QUIET]
    with serve_process(Path("/"), *args) as (base, proc):
        # 1. a slow server: every probe lands in the 250 ms bucket, none below 100 ms
        fuse.delay(200)
        s = wait_until(base, lambda s: (value(s, m("probe_duration_seconds_count"),
                                              mountpoint=mp) or 0) >= 8)
        slow = value(s, m("probe_duration_seconds_count"), mountpoint=mp) - value(
            s, m("probe_duration_seconds_bucket"), mountpoint=mp, le="0.1")
        assert slow >= 3  # the delayed probes (the first few may predate the delay)
        assert value(s, m("probe_timeouts_total"), mountpoint=mp) == 0
        fuse.delay(0)
        before_freeze = wait_until(base, lambda s: value(
            s, m("probe_inflight_seconds"), mountpoint=mp) == 0)
        success_before = value(before_freeze, m("last_success_timestamp_seconds"), mountpoint=mp)

        # 2. frozen: the probe is stuck in the kernel
        fuse.freeze()
        fuse.wait_held(1)
        # main, discovery, rounds, ticker, the one target, an HTTP request thread (5-6 seen),
        # and one to spare for a request thread that has not exited yet
        most_threads = 7
        inflight_seen, timeouts_seen, threads_seen, counts_seen = [], [], [], []
        for _ in range(50):
            took, s = scrape(base)
            # a scrape that touched the frozen mount would never return; 1 s leaves room for
            # a loaded 2-CPU CI machine (0.53 s was seen with a QEMU guest running alongside)
            assert took < 1.0, f"a scrape took {took:.2f} s while the mount was frozen"
            inflight_seen.append(value(s, m("probe_inflight_seconds"), mountpoint=mp))
            timeouts_seen.append(value(s, m("probe_timeouts_total"), mountpoint=mp))
            threads_seen.append(threads_of(proc.pid))
            counts_seen.append(value(s, m("probe_duration_seconds_count"), mountpoint=mp))
            time.sleep(0.05)
        assert max(threads_seen) <= most_threads, threads_seen  # no thread per stuck round
        assert inflight_seen == sorted(inflight_seen)  # grows across scrapes
        assert inflight_seen[-1] > 1.5
        assert timeouts_seen[-1] == 1  # counted once, while it is still stuck
        assert set(timeouts_seen) <= {0, 1}
        # no probe finished while frozen, and no second one was started beside the stuck one
        assert len(set(counts_seen)) == 1, counts_seen
        assert value(s, m("targets")) == 1

        # 3. thawed: the stuck probe returns, success moves, nothing in flight
        fuse.thaw()
        s = wait_until(base, lambda s: (value(s, m("last_success_timestamp_seconds"),
                                              mountpoint=mp) or 0) > success_before)
        s = wait_until(base, lambda s: value(s, m("probe_inflight_seconds"), mountpoint=mp) < 1)
        assert value(s, m("probe_timeouts_total"), mountpoint=mp) == 1
        # the stuck probe's duration (over 1.5 s) is in the histogram
        assert value(s, m("probe_duration_seconds_bucket"), mountpoint=mp, le="1.0") < value(
            s, m("probe_duration_seconds_count"), mountpoint=mp)


def test_stress_prints_its_summary_at_the_deadline_on_a_frozen_mount(fuse, tmp_path):
    # A caller whose request the FUSE daemon holds cannot exit even on SIGKILL until the
    # reply comes: wait for the summary, then thaw, and only then wait for the process.
    out = tmp_path / "stress.out"
    fuse.freeze()
    start = time.monotonic()
    with out.open("w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "panicwatch", "stress", str(fuse.path),
                                 "--duration", "2", "--workers", "2", "--op", "stat"],
                                stdout=sink, stderr=subprocess.STDOUT, text=True)
    try:
        while "result:" not in out.read_text() and time.monotonic() - start < 15:
            time.sleep(0.05)
        took = time.monotonic() - start
    finally:
        fuse.thaw()
        proc.wait(timeout=20)
    summary = out.read_text()
    assert took < 6, f"no summary {took:.1f} s into a --duration 2 run:\n{summary}"
    # the first lstat of the mount point is already stuck: the walk, not the workers
    assert re.search(r"stuck: +the walk still in a call at the end; 0 of 2 workers", summary), summary
    assert re.search(r"result: +FAIL: walk stuck; exit 1", summary), summary
    assert proc.returncode == 1, summary  # workers stuck at the deadline: not a clean run
