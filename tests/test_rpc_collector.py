"""The rpc collector on a fake debugfs: tasks per server, ages across scrapes, stuck and
major-timeout counts, and a host without debugfs."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import names, scrape, scrape_text, value
from panicwatch.collectors.registry import build_registry
from panicwatch.exposition import render_all
from panicwatch.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "sunrpc"


def debugfs(root: Path, tasks: str) -> Path:
    sunrpc = root / "sys/kernel/debug/sunrpc"
    (sunrpc / "rpc_xprt/2").mkdir(parents=True, exist_ok=True)
    (sunrpc / "rpc_xprt/2/info").write_text((FIXTURES / "xprt_info_4.18.txt").read_text())
    client = sunrpc / "rpc_clnt/4"
    client.mkdir(parents=True, exist_ok=True)
    if not (client / "xprt").is_symlink():
        (client / "xprt").symlink_to("../../rpc_xprt/2")
    (client / "tasks").write_text(tasks)
    return root


def rpc_only(root: Path, **settings: object):
    quiet = {f"collector_{n}": False for n in ("kdump", "vmcores", "kernel", "readiness", "nfs")}
    return scrape(root, **quiet, **settings)


def test_tasks_per_server_with_ages(tmp_path):
    stuck = (FIXTURES / "tasks_6.1_nfsv3_stuck.txt").read_text()
    root = debugfs(tmp_path, stuck)
    s = rpc_only(root, collector_rpc_stuck_threshold=0.3)
    server = "192.168.122.1"
    assert value(s, "panicwatch_rpc_debugfs_available") == 1
    assert value(s, "panicwatch_rpc_tasks", server=server) == 6
    assert value(s, "panicwatch_rpc_tasks_major_timeout", server=server) == 2
    assert value(s, "panicwatch_rpc_tasks_stuck", server=server) == 0
    assert value(s, "panicwatch_collector_success", collector="rpc") == 1


def test_age_grows_while_a_task_stays_and_resets_for_a_new_xid(tmp_path):
    lines = (FIXTURES / "tasks_6.1_nfsv3_stuck.txt").read_text().splitlines(keepends=True)
    root = debugfs(tmp_path, "".join(lines[:2]))
    quiet = {f"collector_{n}": False for n in ("kdump", "vmcores", "kernel", "readiness", "nfs")}
    registry = build_registry(Settings(path_rootfs=root, collector_rpc_stuck_threshold=0.3, **quiet))

    def once():
        return scrape_text(render_all(registry).decode())

    server = "192.168.122.1"
    once()
    time.sleep(0.4)
    s = once()
    assert value(s, "panicwatch_rpc_task_oldest_age_seconds", server=server) >= 0.4
    assert value(s, "panicwatch_rpc_tasks_stuck", server=server) == 2
    # task 2271 finished; 2272 was retransmitted under a new xid: a new task, age 0 again
    debugfs(root, lines[1].replace("0x8b3b9a48", "0x8b3b9aff"))
    s = once()
    assert value(s, "panicwatch_rpc_tasks", server=server) == 1
    assert value(s, "panicwatch_rpc_task_oldest_age_seconds", server=server) < 0.2
    assert value(s, "panicwatch_rpc_tasks_stuck", server=server) == 0


def test_without_debugfs_nothing_but_the_availability(tmp_path):
    (tmp_path / "sys/kernel/debug").mkdir(parents=True)  # not mounted: an empty directory
    s = rpc_only(tmp_path)
    assert value(s, "panicwatch_rpc_debugfs_available") == 0
    assert value(s, "panicwatch_collector_success", collector="rpc") == 1
    assert not names(s, "panicwatch_rpc_tasks")


def test_transport_queues_from_sysfs(tmp_path):
    switch = tmp_path / "sys/kernel/sunrpc/xprt-switches/switch-0"
    for n, info in ((0, "sysfs_xprt_info_6.1.txt"), (1, "sysfs_xprt_info_6.1.txt")):
        xprt = switch / f"xprt-{n}-tcp"
        xprt.mkdir(parents=True)
        (xprt / "xprt_info").write_text((FIXTURES / info).read_text())
        (xprt / "dstaddr").write_text((FIXTURES / "sysfs_dstaddr.txt").read_text())
    (tmp_path / "sys/kernel/debug").mkdir(parents=True)
    s = rpc_only(tmp_path)
    server = "192.168.122.1"
    assert value(s, "panicwatch_rpc_transport_queue_tasks", server=server, queue="pending") == 252
    assert value(s, "panicwatch_rpc_transport_queue_tasks", server=server, queue="backlog") == 74
    assert value(s, "panicwatch_rpc_transport_queue_tasks", server=server, queue="sending") == 2
    assert value(s, "panicwatch_rpc_transport_tasks", server=server) == 328
    assert value(s, "panicwatch_rpc_transport_congestion_ratio", server=server) == 1.0
    assert value(s, "panicwatch_rpc_debugfs_available") == 0  # sysfs works without debugfs


def test_client_rpc_totals(tmp_path):
    (tmp_path / "proc/net/rpc").mkdir(parents=True)
    (tmp_path / "proc/net/rpc/nfs").write_text(
        "net 0 0 0 0\nrpc 7181612 31 7181590\nproc4 69 1 1281923 702214" + " 0" * 66 + "\n")
    s = rpc_only(tmp_path)
    assert value(s, "panicwatch_rpc_calls_total") == 7181612
    assert value(s, "panicwatch_rpc_retransmissions_total") == 31
    assert value(s, "panicwatch_rpc_auth_refreshes_total") == 7181590
    assert value(s, "panicwatch_collector_success", collector="rpc") == 1
    (tmp_path / "proc/net/rpc/nfs").unlink()  # no NFS client module: no totals, no failure
    s = rpc_only(tmp_path)
    assert value(s, "panicwatch_rpc_calls_total") is None
    assert value(s, "panicwatch_collector_success", collector="rpc") == 1
    # --no-collector.rpc: none of the rpc_* metrics
    s = scrape(tmp_path, collector_rpc=False)
    assert not [k for k in s if k[0].startswith("panicwatch_rpc_")]
