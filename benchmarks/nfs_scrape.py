#!/usr/bin/env python3
"""Scrape cost of NFS client statistics: panicwatch against node_exporter, same tree, same run.

Generates /proc/<pid>/mountstats with N NFSv4.2 mounts of 64 operations each (the kernel's
format, counters advancing between scrapes as on a busy client), points Debian's
prometheus-node-exporter (mountstats + nfs collectors only) and `panicwatch serve` (nfs
collector only) at it, scrapes each over HTTP in turn, as Prometheus does (gzip), and prints
samples, bytes, median scrape seconds, peak RSS and the panicwatch/node_exporter ratios, for
panicwatch's full detail (every op, per-op bytes, events) and its default.

    python3 benchmarks/nfs_scrape.py [--sizes 10,100,1000] [--scrapes 5] [--trees short,long]

Two generated trees: ``short`` (/mnt/nfs/volN on filerN.example.com, counters in the millions)
and ``long`` (mount points and exports of ~100 characters, counters near 2**50, so every
number is longer): the ratios must hold on both.

Needs: apt-get install prometheus-node-exporter; the project venv (make .venv/.installed).
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PANICWATCH = ROOT / ".venv/bin/panicwatch"
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"

# The NFSv4.2 client's operations as a 6.x kernel prints them (nfs4_procedures order).
_OPS_TEXT = (
    "NULL READ WRITE COMMIT OPEN OPEN_CONFIRM OPEN_NOATTR OPEN_DOWNGRADE CLOSE SETATTR FSINFO "
    "RENEW SETCLIENTID SETCLIENTID_CONFIRM LOCK LOCKT LOCKU ACCESS GETATTR LOOKUP LOOKUP_ROOT "
    "REMOVE RENAME LINK SYMLINK CREATE PATHCONF STATFS READLINK READDIR SERVER_CAPS DELEGRETURN "
    "GETACL SETACL FS_LOCATIONS RELEASE_LOCKOWNER SECINFO FSID_PRESENT EXCHANGE_ID "
    "CREATE_SESSION DESTROY_SESSION SEQUENCE GET_LEASE_TIME RECLAIM_COMPLETE LAYOUTGET "
    "GETDEVICEINFO LAYOUTCOMMIT LAYOUTRETURN SECINFO_NO_NAME TEST_STATEID FREE_STATEID "
    "GETDEVICELIST BIND_CONN_TO_SESSION DESTROY_CLIENTID SEEK ALLOCATE DEALLOCATE LAYOUTSTATS "
    "CLONE COPY OFFLOAD_CANCEL LOOKUPP LAYOUTERROR COPY_NOTIFY"
)
OPS_V42 = _OPS_TEXT.split()
assert len(OPS_V42) == 64
# In use on a busy client: these move between scrapes. Mount-time ops are non-zero but still.
BUSY = {"READ": 900, "WRITE": 400, "GETATTR": 5000, "LOOKUP": 3000, "ACCESS": 2000,
        "OPEN": 800, "CLOSE": 800, "COMMIT": 50, "SETATTR": 20, "READDIR": 30, "SEQUENCE": 10}
AT_MOUNT = {"NULL": 1, "EXCHANGE_ID": 2, "CREATE_SESSION": 1, "RECLAIM_COMPLETE": 1,
            "LOOKUP_ROOT": 1, "SERVER_CAPS": 3, "FSINFO": 2, "PATHCONF": 1,
            "SECINFO_NO_NAME": 1, "GET_LEASE_TIME": 1}


TREES = ("short", "long")
BIG = 2**50  # the long tree's counters start here: 16-digit numbers everywhere


def names(tree: str, i: int) -> tuple[str, str]:
    """(device, mount point) of mount i."""
    if tree == "short":
        return f"filer{i % 8}.example.com:/export/vol{i}", f"/mnt/nfs/vol{i}"
    team = f"research-computing-group-{i % 37:02d}/simulation-campaign-{i % 11}"
    return (f"storage-cluster-{i % 8}.datacenter-east.corp.example.com:/exports/{team}/vol{i:05d}",
            f"/srv/projects/{team}/scratch-volume-{i:05d}")


def op_line(name: str, count: int, base: int) -> str:
    if not count:
        return f"\t{name:>12}: 0 0 0 0 0 0 0 0 0\n"
    count += base
    return (f"\t{name:>12}: {count} {count + count // 100} 0 {count * 220} {count * 180} "
            f"{count // 10} {count * 2} {count * 3} 0\n")


def mount_block(i: int, tick: int, tree: str = "short") -> str:
    base = BIG if tree == "long" else 0
    counts = {op: AT_MOUNT.get(op, 0) + BUSY.get(op, 0) * (tick + 1) + i % 7 * (op in BUSY)
              for op in OPS_V42}
    events = " ".join(str(base + (k + 1) * (tick + 1) * 37 + i) for k in range(27))
    device, mountpoint = names(tree, i)
    return (
        f"device {device} mounted on {mountpoint} "
        "with fstype nfs4 statvers=1.1\n"
        "\topts:\trw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,acregmin=3,"
        "acregmax=60,acdirmin=30,acdirmax=60,hard,proto=tcp,timeo=600,retrans=2,sec=sys,"
        "clientaddr=10.0.0.2,local_lock=none\n"
        f"\tage:\t{86400 + tick}\n"
        "\timpl_id:\tname='',domain='',date='0,0'\n"
        "\tcaps:\tcaps=0x3ffbffff,wtmult=512,dtsize=1048576,bsize=0,namlen=255\n"
        "\tnfsv4:\tbm0=0xfdffbfff,bm1=0x40fdbe3e,bm2=0x60803,acl=0x3,sessions,"
        "pnfs=not configured,lease_time=90,lease_expired=0\n"
        "\tsec:\tflavor=1,pseudoflavor=1\n"
        f"\tevents:\t{events} \n"
        f"\tbytes:\t{(tick + 1) * 10**9 + i} {(tick + 1) * 5 * 10**8} 0 0 "
        f"{(tick + 1) * 10**9} {(tick + 1) * 5 * 10**8} {(tick + 1) * 244140} "
        f"{(tick + 1) * 122070} \n"
        "\tRPC iostats version: 1.1  p/v: 100003/4 (nfs)\n"
        f"\txprt:\ttcp 0 1 1 0 0 {(tick + 1) * 11000} {(tick + 1) * 11000} 0 "
        f"{(tick + 1) * 22000} 0 64 {(tick + 1) * 100} {(tick + 1) * 900}\n"
        "\tper-op statistics\n"
        + "".join(op_line(op, counts[op], base) for op in OPS_V42)
        + "\n"
    )


def write_tree(root: Path, mounts: int, tick: int, tree: str = "short") -> None:
    proc = root / "proc"
    (proc / "4242").mkdir(parents=True, exist_ok=True)
    if not (proc / "self").is_symlink():
        (proc / "self").symlink_to("4242")  # procfs readers resolve "self" to a PID
    (proc / "net/rpc").mkdir(parents=True, exist_ok=True)
    text = ("device sysfs mounted on /sys with fstype sysfs\n"
            "device proc mounted on /proc with fstype proc\n"
            + "".join(mount_block(i, tick, tree) for i in range(mounts)))
    tmp = proc / "4242/.mountstats.tmp"
    tmp.write_text(text)
    tmp.rename(proc / "4242/mountstats")
    # node_exporter joins mountstats with mountinfo (for the server address).
    mountinfo = "".join(
        f"{100 + i} 1 0:{60 + i} / {names(tree, i)[1]} rw,relatime shared:{i + 2} - nfs4 "
        f"{names(tree, i)[0]} rw,vers=4.2,rsize=1048576,wsize=1048576,"
        f"namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=10.0.0.2,"
        f"local_lock=none,addr=10.0.1.{i % 8 + 1}\n" for i in range(mounts))
    (proc / "4242/mountinfo").write_text(mountinfo)
    calls = (tick + 1) * 10**6
    rpc = (f"net 0 0 0 0\nrpc {calls} {tick * 3} {calls}\n"
           "proc3 22 " + " ".join(["7"] * 22) + "\nproc4 69 " + " ".join(["9"] * 69) + "\n")
    (proc / "net/rpc/nfs").write_text(rpc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} never answered")


def scrape(url: str) -> tuple[float, bytes]:
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        body = response.read()
        took = time.perf_counter() - start
        if response.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
    return took, body


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def samples(text: bytes) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))


class Exporter:
    def __init__(self, name: str, argv: list[str], port: int, ready_path: str) -> None:
        self.name = name
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(f"http://127.0.0.1:{port}{ready_path}", self.proc)
        except BaseException:
            self.proc.kill()
            raise
        self.times: list[float] = []
        self.body = b""

    def scrape(self) -> None:
        took, self.body = scrape(self.url)
        self.times.append(took)

    def stop(self) -> int:
        rss = peak_rss(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return rss


def run_size(base: Path, mounts: int, scrapes: int, tree: str) -> list[dict[str, object]]:
    root = base / f"{tree}{mounts}"
    write_tree(root, mounts, 0, tree)
    # The nfs collector alone, as node_exporter runs mountstats and nfs alone.
    common = ["serve", f"--path.rootfs={root}", "--log.level=error",
              *(f"--no-collector.{c}" for c in ("kdump", "vmcores", "kernel", "readiness", "rpc",
                                                "nfs_sockets", "blocked_tasks", "kernel_log",
                                                "canary"))]
    starts = [
        ("node_exporter", [NODE_EXPORTER, f"--path.procfs={root / 'proc'}",
                           "--collector.disable-defaults", "--collector.mountstats",
                           "--collector.nfs"], "/"),
        ("panicwatch full", [str(PANICWATCH), *common, "--collector.nfs.all-ops",
                             "--collector.nfs.op-bytes", "--collector.nfs.events"], "/healthz"),
        ("panicwatch default", [str(PANICWATCH), *common], "/healthz"),
    ]
    exporters: list[Exporter] = []
    try:
        for name, argv, ready in starts:
            port = free_port()
            exporters.append(Exporter(name, [*argv, f"--web.listen-address=127.0.0.1:{port}"],
                                      port, ready))
        for tick in range(scrapes + 1):  # the first round warms up (and seeds "in use")
            write_tree(root, mounts, tick, tree)
            for e in exporters if tick % 2 else reversed(exporters):
                e.scrape()
                if tick == 0:
                    e.times.clear()
    finally:
        rss = {e.name: e.stop() for e in exporters}
    rows = []
    for e in exporters:
        rows.append({"tree": tree, "mounts": mounts, "exporter": e.name,
                     "samples": samples(e.body),
                     "bytes": len(e.body), "median_s": statistics.median(e.times),
                     "rss": rss[e.name]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--scrapes", type=int, default=5)
    parser.add_argument("--trees", default=",".join(TREES))
    args = parser.parse_args()
    if not os.access(NODE_EXPORTER, os.X_OK):
        raise SystemExit("needs prometheus-node-exporter (apt-get install prometheus-node-exporter)")
    base = Path(tempfile.mkdtemp(prefix="panicwatch-bench-"))
    try:
        print("| tree | mounts | exporter | samples | bytes | median scrape s | peak RSS MB | "
              "samples ratio | time ratio | RSS ratio |")
        print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        sizes = [int(s) for s in args.sizes.split(",")]
        for tree, size in ((t, n) for t in args.trees.split(",") for n in sizes):
            rows = run_size(base, size, args.scrapes, tree)
            node = rows[0]
            for row in rows:
                ratio = "" if row is node else (
                    f"| {row['samples'] / node['samples']:.3f} "
                    f"| {row['median_s'] / node['median_s']:.2f} "
                    f"| {row['rss'] / node['rss']:.2f} |")
                print(f"| {row['tree']} | {row['mounts']} | {row['exporter']} | {row['samples']} "
                      f"| {row['bytes']} "
                      f"| {row['median_s']:.3f} | {row['rss'] / 2**20:.0f} "
                      + (ratio or "| | | |"), flush=True)
    finally:
        shutil.rmtree(base)


if __name__ == "__main__":
    sys.exit(main())
