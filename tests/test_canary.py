"""The canary without a hanging mount: discovery, churn, the target cap, the ticker and the
histogram arithmetic. (test_canary_freeze.py makes a mount hang for real.)"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from panicwatch.background.canary import PROBE_BUCKETS, Canary, Histogram, SchedulerLagTicker
from panicwatch.collectors.registry import host_of
from panicwatch.settings import Settings

ROOT_LINE = "22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"


def nfs_line(i: int, mountpoint: str, fstype: str = "nfs4") -> str:
    return (f"{100 + i} 22 0:{50 + i} / {mountpoint} rw,relatime shared:{i + 2} - {fstype} "
            f"filer:/export{i} rw,vers=4.2,addr=10.0.0.1\n")


def make_root(tmp_path: Path, mountpoints: list[str], extra: str = "") -> Path:
    (tmp_path / "proc/1").mkdir(parents=True, exist_ok=True)
    for mp in mountpoints:
        (tmp_path / mp.lstrip("/")).mkdir(parents=True, exist_ok=True)
    text = ROOT_LINE + "".join(nfs_line(i, mp) for i, mp in enumerate(mountpoints)) + extra
    (tmp_path / "proc/1/mountinfo").write_text(text)
    return tmp_path


def canary_for(root: Path, **settings: object) -> Canary:
    s = Settings(path_rootfs=root, collector_canary_interval=0.05, collector_canary_scheduler_tick=0,
                 **settings)
    return Canary(s, host_of(s))


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_discovers_nfs_mounts_and_extra_paths(tmp_path):
    root = make_root(tmp_path, ["/mnt/a", "/mnt/b"],
                     extra="60 22 0:30 / /home rw - ext4 /dev/vdb rw\n"
                           "61 22 0:31 / /mnt/c rw - cifs //srv/c rw\n")
    (root / "srv/extra").mkdir(parents=True)
    canary = canary_for(root, collector_canary_path=[Path("/srv/extra")])
    assert canary.wanted_paths() == ["/mnt/a", "/mnt/b", "/srv/extra"]
    canary.start()
    try:
        wait_for(lambda: all(t.buckets[-1][1] >= 2 for t in canary.snapshot().targets))
        states = {t.path: t for t in canary.snapshot().targets}
        assert set(states) == {"/mnt/a", "/mnt/b", "/srv/extra"}
        a = states["/mnt/a"]
        assert a.timeouts == 0 and a.errors == {} and a.last_success is not None
        assert a.inflight_seconds < 1
    finally:
        canary.stop()


def test_mount_churn(tmp_path):
    root = make_root(tmp_path, ["/mnt/a", "/mnt/b"])
    canary = canary_for(root)
    canary.start()
    try:
        wait_for(lambda: len(canary.snapshot().targets) == 2)
        first_thread = canary._targets["/mnt/a"].thread
        make_root(tmp_path, ["/mnt/a", "/mnt/new"])  # /mnt/b unmounted, /mnt/new mounted
        canary.discover()
        wait_for(lambda: {t.path for t in canary.snapshot().targets} == {"/mnt/a", "/mnt/new"})
        assert canary._targets["/mnt/a"].thread is first_thread  # the same thread goes on
        canary.discover()  # the finished thread of /mnt/b is forgotten
        assert set(canary._targets) == {"/mnt/a", "/mnt/new"}
        # a failing probe is an error by errno, not a crash
        (root / "mnt/new").rmdir()
        wait_for(lambda: any(t.errors for t in canary.snapshot().targets))
        [new] = [t for t in canary.snapshot().targets if t.path == "/mnt/new"]
        assert set(new.errors) == {"ENOENT"}
    finally:
        canary.stop()


def test_target_cap_is_logged_once(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="panicwatch.canary")
    root = make_root(tmp_path, [f"/mnt/m{i}" for i in range(5)])
    canary = canary_for(root, collector_canary_max_targets=3)
    canary.start()
    try:
        canary.discover()
        canary.discover()
        state = canary.snapshot()
        assert [t.path for t in state.targets] == ["/mnt/m0", "/mnt/m1", "/mnt/m2"]
        assert state.over_limit == 2
        assert [r.getMessage() for r in caplog.records] == [
            "canary: 5 targets, probing the first 3 (--collector.canary.max-targets)"]
        assert sum(t.name.startswith("canary /") for t in threading.enumerate()) == 3
    finally:
        canary.stop()


def test_histogram_buckets_are_cumulative():
    h = Histogram(PROBE_BUCKETS)
    for v in (0.0005, 0.001, 0.003, 0.7, 45.0, 300.0):
        h.observe(v)
    buckets, total = h.snapshot()
    as_dict = dict(buckets)
    assert as_dict["0.001"] == 2  # le is inclusive
    assert as_dict["0.005"] == 3
    assert as_dict["1.0"] == 4
    assert as_dict["60.0"] == 5
    assert as_dict["+Inf"] == 6
    assert total == 0.0005 + 0.001 + 0.003 + 0.7 + 45.0 + 300.0


def test_scheduler_lag_ticker_records_each_wake_up():
    ticker = SchedulerLagTicker(0.01)
    ticker.start()
    time.sleep(0.3)
    ticker.stop()
    buckets, total = ticker.snapshot()
    count = dict(buckets)["+Inf"]
    assert 10 <= count <= 30
    assert 0 <= total < count * 0.05  # an idle machine wakes within a few ms
