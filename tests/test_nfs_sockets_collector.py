"""nfs_sockets against real kernel sockets: a stalled NFS-like server in a private network
namespace, found through a fixture mount table (addr=, port=) and read over netlink."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from conftest import names, scrape, value
from test_tcp_sockets import CHILD, UNSHARE, _child_env, netns
from trees import MOUNTINFO_ROOT

QUIET = {f"collector_{n}": False for n in ("kdump", "vmcores", "kernel", "readiness", "nfs", "rpc")}


def mount_table(root, port: int) -> None:
    (root / "proc/1").mkdir(parents=True)
    (root / "proc/1/mountinfo").write_text(
        MOUNTINFO_ROOT
        + f"40 22 0:50 / /mnt/data rw,relatime - nfs4 filer:/data rw,vers=4.2,proto=tcp,"
          f"port={port},timeo=600,retrans=2,sec=sys,clientaddr=127.0.0.1,addr=127.0.0.1\n"
        + "41 22 0:51 / /mnt/old rw,relatime - nfs oldfiler:/vol rw,vers=3,proto=tcp,"
          "mountaddr=127.0.0.2,addr=127.0.0.2\n")


@netns
def test_stalled_server_in_another_namespace(tmp_path):
    child = subprocess.Popen([UNSHARE, "-n", sys.executable, "-c", CHILD, "hold"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=_child_env())
    try:
        ready = json.loads(child.stdout.readline())
        mount_table(tmp_path, ready["port"])
        ns = f"/proc/{child.pid}/ns/net"
        first = scrape(tmp_path, collector_nfs_sockets_netns=ns, **QUIET)
        time.sleep(1.0)
        second = scrape(tmp_path, collector_nfs_sockets_netns=ns, **QUIET)
    finally:
        child.communicate("done\n", timeout=10)
    server = {"server": "127.0.0.1", "port": str(ready["port"])}
    assert value(first, "panicwatch_collector_success", collector="nfs_sockets") == 1
    assert value(first, "panicwatch_nfs_sockets", state="ESTABLISHED", **server) == 1
    queued = value(first, "panicwatch_nfs_socket_send_queue_bytes", **server)
    assert 0 < queued <= ready["written"]
    assert value(first, "panicwatch_nfs_socket_unacked_segments", **server) >= 0
    assert value(first, "panicwatch_nfs_socket_rtt_seconds", **server) > 0
    grew = (value(second, "panicwatch_nfs_socket_last_receive_age_seconds", **server)
            - value(first, "panicwatch_nfs_socket_last_receive_age_seconds", **server))
    assert 0.9 <= grew <= 2.0
    # the NFSv3 mount without port= is looked up on 2049, and has no sockets there
    assert value(first, "panicwatch_nfs_socket_send_queue_bytes", server="127.0.0.2",
                 port="2049") == 0
    assert not [k for k in names(first, "panicwatch_nfs_sockets") if ("server", "127.0.0.2") in k]


def test_no_nfs_mounts_no_series(tmp_path):
    (tmp_path / "proc/1").mkdir(parents=True)
    (tmp_path / "proc/1/mountinfo").write_text(MOUNTINFO_ROOT)
    s = scrape(tmp_path, **QUIET)
    assert value(s, "panicwatch_collector_success", collector="nfs_sockets") == 1
    assert not names(s, "panicwatch_nfs_socket_send_queue_bytes")
