"""`panicwatch check`'s NFS section: a real FUSE mount that freezes (the command must still
return on time), the fixture NFS client tree read twice with counters moving in between, the
kernel log's "not responding", and the pure verdict rules."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from freezefs import FreezeFS
from panicwatch.host import Host
from panicwatch.readiness.nfs import (
    OK,
    STALLED,
    WARNING,
    Counters,
    MountHealth,
    assess_nfs,
    judge,
)
from panicwatch.readiness.probe import ProbeResult, ProbeRun, probe_all
from panicwatch.readiness.report import nfs_text
from test_cli import run

# NFSv4.1 GETATTR of the fixture (ops, transmissions, major timeouts, ...), and the same op
# 3 s later with 2 calls more, both retransmitted twice and one given up (a major timeout).
GETATTR = "GETATTR: 4411270 4411270 0 "
GETATTR_LATER = "GETATTR: 4411272 4411276 1 "
NOT_RESPONDING = "4,1201,5123456,-;nfs: server files.lab.example not responding, still trying\n"


@pytest.fixture
def fuse(tmp_path):
    (tmp_path / "mnt").mkdir()
    with FreezeFS(tmp_path / "mnt", files=3) as fs:
        yield fs


def check(*args: str) -> tuple[int, dict, float]:
    start = time.monotonic()
    r = run("check", "--format", "json", *args)
    took = time.monotonic() - start
    assert r.returncode in (0, 1, 3), r.stderr
    return r.returncode, json.loads(r.stdout), took


def test_check_returns_on_time_and_exits_3_while_the_mount_is_frozen(fuse):
    mp = str(fuse.path)
    code, report, _ = check("--collector.canary.path", mp)
    mount = report["nfs"]["mounts"][-1]
    assert (mount["path"], mount["status"], mount["findings"]) == (mp, OK, [])
    assert mount["probe"]["timed_out"] is False and mount["probe"]["seconds"] < 1
    assert code in (0, 1)  # this host's readiness, whatever it is: no stall

    fuse.freeze()
    code, report, took = check("--collector.canary.path", mp, "--check.timeout", "2")
    # the probe is stuck in the kernel (FUSE holds the request, SIGKILL cannot end it): the
    # command still answered, exited and let its caller go within the timeout and a second
    assert took < 2 + 1, f"check took {took:.2f} s on a frozen mount with --check.timeout 2"
    assert fuse.state()["held"] == 1  # the probe's child, left behind in the mount
    assert code == 3
    nfs = report["nfs"]
    mount = nfs["mounts"][-1]
    assert mount["status"] == STALLED
    assert mount["findings"] == ["statvfs got no answer in 2 s"]
    assert mount["probe"] == {"timed_out": True, "seconds": None, "error": None}
    assert mount["fstype"] == "fuse.freezefs"
    assert nfs["stalled"] is True and nfs["verdict"] == f"NFS STALLED: 1 of 1 mount(s): {mp}"

    fuse.thaw()  # the child gets its answer, then dies of the SIGKILL it was sent
    deadline = time.monotonic() + 5
    while fuse.state()["held"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fuse.state()["held"] == 0


def test_check_text_names_the_stalled_mount(fuse):
    mp = str(fuse.path)
    with fuse.frozen():
        r = run("check", "--collector.canary.path", mp, "--check.timeout", "1")
    assert r.returncode == 3, r.stderr
    assert re.search(rf"^  STALLED  {re.escape(mp)}  fuse.freezefs  no answer$", r.stdout, re.M), r.stdout
    assert "         ! statvfs got no answer in 1 s\n" in r.stdout
    assert r.stdout.endswith(f"NFS STALLED: 1 of 1 mount(s): {mp}\n")


def test_probe_all_reports_times_and_errno_names(tmp_path):
    results = probe_all([tmp_path, tmp_path / "missing"], timeout=2.0)
    assert results[0].error is None and results[0].seconds is not None and results[0].seconds < 1
    assert results[1].error == "ENOENT"
    assert probe_all([], timeout=1.0) == []


def test_answers_in_before_a_late_wait_still_count(tmp_path):
    run = ProbeRun([tmp_path], timeout=0.05)
    time.sleep(0.3)  # the caller was busy (the readiness checks) past the deadline
    [result] = run.wait()
    assert not result.timed_out and result.error is None


def reading_of(root: Path, **kwargs) -> object:
    return assess_nfs(Host.from_paths(root), pid="self", extra=[], timeout=1.0, **kwargs)


def test_the_fixture_client_read_twice_with_counters_moving(tree):
    root = tree("nfs_client")
    stats = root / "proc/self/mountstats"
    assert GETATTR in stats.read_text()

    now = [100.0]

    def traffic_during_the_window(seconds: float) -> None:
        assert seconds == 1.0  # the window is the timeout, when shorter than 3 s
        stats.write_text(stats.read_text().replace(GETATTR, GETATTR_LATER))
        now[0] += seconds

    report = reading_of(root, sleep=traffic_during_the_window, clock=lambda: now[0])
    [m] = report.mounts
    assert (m.path, m.fstype, m.device, m.version) == ("/srv/projects", "nfs4",
                                                       "files.lab.example:/srv/projects", "4.2")
    assert m.address == ("192.168.122.1", 2049)
    assert m.change == Counters(operations=2, transmissions=6, major_timeouts=1)
    assert m.change.retransmissions == 4
    # the five tasks of tasks_4.18_nfsv41.txt are in both reads: in flight across the window
    assert (m.rpc_in_flight, m.rpc_stuck) == (5, 5)
    assert m.not_responding_since is None
    assert m.tcp_states == {}  # no connection to 192.168.122.1 from this machine
    assert m.status == STALLED
    assert m.findings == ("1 major timeout(s) in 1 s", "5 RPC task(s) in flight for over 1 s",
                          "4 retransmission(s) in 1 s")
    assert report.rpc_error is None and report.tcp_error is None
    assert report.kernel_log_error == (
        f"cannot open {root}/dev/kmsg: No such file or directory (ENOENT): no such device here "
        "(in a container, bind-mount the host's /dev/kmsg)")


def test_the_kernel_log_says_the_server_is_not_responding(tree):
    root = tree("nfs_client")
    (root / "dev").mkdir()
    (root / "dev/kmsg").write_text(NOT_RESPONDING)
    before = time.time()
    [m] = reading_of(root).mounts
    assert m.not_responding_since is not None and m.not_responding_since <= before
    assert m.status == STALLED
    assert m.findings[0] == "the kernel logged the server not responding, and no OK since"

    (root / "dev/kmsg").write_text(NOT_RESPONDING + "6,1202,9123456,-;nfs: server files.lab."
                                   "example OK\n")
    [m] = reading_of(root).mounts
    assert m.not_responding_since is None
    assert m.status == WARNING  # only the five tasks in flight remain


def test_check_exit_code_and_json_of_the_fixture_client(tree):
    root = tree("nfs_client")
    (root / "dev").mkdir()
    (root / "dev/kmsg").write_text(NOT_RESPONDING)
    code, report, took = check("--path.rootfs", str(root), "--collector.kdump.min-free-ratio", "0",
                               "--check.timeout", "1")
    assert report["ready"] is True  # a ready host whose NFS is stalled: 3, not 0
    assert code == 3
    [mount] = report["nfs"]["mounts"]
    assert mount["server"] == "files.lab.example"
    assert mount["address"] == {"host": "192.168.122.1", "port": 2049}
    assert mount["rpc_tasks_in_flight"] == 5 and mount["rpc_tasks_stuck"] == 5
    assert mount["window"] == {"operations": 0, "retransmissions": 0, "major_timeouts": 0}
    assert report["nfs"]["window_seconds"] >= 1.0 and took < 1 + 1 + 1


def test_check_without_nfs_mounts_takes_no_window(tree):
    code, report, _ = check("--path.rootfs", str(tree("rhel9_armed")),
                               "--collector.kdump.min-free-ratio", "0")
    assert code == 0
    assert report["nfs"]["mounts"] == [] and report["nfs"]["verdict"] == "NFS: no NFS mounts"
    assert report["nfs"]["window_seconds"] == 0


HEALTHY = MountHealth("/srv/a", "nfs4", "srv:/a", "4.2", ("10.0.0.1", 2049),
                      probe=ProbeResult(0.002), rpc_in_flight=1, rpc_stuck=0,
                      change=Counters(10, 10, 0), tcp_states={"ESTABLISHED": 1})


@pytest.mark.parametrize(("changes", "status", "findings"), [
    ({}, OK, ()),
    ({"probe": ProbeResult(None)}, STALLED, ("statvfs got no answer in 5 s",)),
    ({"probe": ProbeResult(0.01, "ESTALE")}, WARNING, ("statvfs failed: ESTALE",)),
    ({"not_responding_since": 1.0}, STALLED,
     ("the kernel logged the server not responding, and no OK since",)),
    ({"change": Counters(3, 5, 0)}, WARNING, ("2 retransmission(s) in 3 s",)),
    ({"change": Counters(3, 3, 1)}, STALLED, ("1 major timeout(s) in 3 s",)),
    ({"rpc_stuck": 2}, WARNING, ("2 RPC task(s) in flight for over 3 s",)),
    ({"tcp_states": {"SYN_SENT": 1}}, WARNING,
     ("no established TCP connection to the server: 1 SYN_SENT",)),
    ({"tcp_states": {}}, OK, ()),  # idle: the client closes the connection after 5 minutes
    ({"tcp_states": None, "rpc_stuck": None, "change": None}, OK, ()),  # nothing readable
    ({"probe": ProbeResult(None), "rpc_stuck": 4}, STALLED,
     ("statvfs got no answer in 5 s", "4 RPC task(s) in flight for over 3 s")),
])
def test_judge(changes, status, findings):
    from dataclasses import replace

    judged = judge(replace(HEALTHY, **changes), timeout=5.0, window=3.0)
    assert (judged.status, judged.findings) == (status, findings)


def test_nfs_text_of_a_healthy_mount():
    from panicwatch.readiness.nfs import NfsReport

    report = NfsReport([judge(HEALTHY, 5.0, 3.0)], 5.0, 3.02, None, None, None)
    assert nfs_text(report) == [
        "NFS mounts (statvfs with a 5 s deadline; counters read 3.0 s apart)",
        "  OK       /srv/a  srv:/a  nfs4  vers=4.2  statvfs 2.0 ms",
        "           rpc tasks 1 in flight, 0 across the window",
        "           in 3.0 s: ops +10, retransmissions +0, major timeouts +0",
        "           tcp to 10.0.0.1:2049: 1 ESTABLISHED",
    ]
