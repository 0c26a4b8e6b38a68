#!/usr/bin/env python3
"""The fleet dashboard and the rules at 1,000 hosts: a day of panicwatch series in a real Prometheus.

1. The page: `panicwatch serve` (default mode, every collector, a /dev/kmsg stand-in) on a
   fixture root with 10 NFSv4.2 mounts on 2 servers (tests/trees.py ``nfs_client``, its
   mountstats repeated per mount, a transport per server), scraped once healthy and once with
   a crash dump waiting and a server "not responding" in the kernel log. Its series are the
   template of every simulated host; the series per host in default mode are counted from it.
2. --hosts (default 1,000) hosts, each the page with `instance` and `job`, scraped every 30 s
   (deploy/prometheus/scrape.yml) for --hours (default 24) ending now: counters advance
   (4 load profiles, mounts busier or quieter), a few hosts stall on one server (canary probe
   in flight, RPC tasks stuck, major timeouts, blocked tasks, "not responding"; 2 of them
   still stalled at the end), some hold a dump, some panic, reboot and come back with a dump
   (a 4-minute scrape gap, stale markers, counters reset), some have kdump disarmed.
3. Backfill. promtool's OpenMetrics import parses about 0.7 million samples a second on one
   core, and a day of 1,000 hosts is 3.6 billion samples (some 450 GB of text), so the
   samples are written as TSDB blocks directly (tsdb_blocks.py: Prometheus' chunk and index
   format, 6-hour blocks that Prometheus then compacts itself). ``--check`` proves that
   writer on a small fleet: the same samples through `promtool tsdb create-blocks-from
   openmetrics` into a second Prometheus must answer every query identically.
4. A real Prometheus (Debian's) on the blocks, alerts/panicwatch.rules.yml loaded (30 s
   evaluation), scraping the same simulated hosts live from here so the rules run on current
   data. The recording rules that a range panel reads get their history backfilled with
   `promtool tsdb create-blocks-from rules` (a rule that reads another one in a second pass);
   the others, read by instant queries only, run live (--backfill-rules all backfills them
   too: promtool moves a rule's history as JSON, some 2 minutes per 2 h of the 100,000-series
   RTT rule at 1,000 hosts). Then Prometheus compacts.
5. Timing, once compaction is done: every query of every panel of the fleet dashboard
   (variables: job and instance "All", $__range 24 h, $__rate_interval from a 30 s scrape)
   as Grafana sends it over the last 24 h: a range query with a 60 s step (24 h over a
   ~1,500 px panel is 57.6 s, which Grafana rounds to 1m) or, for table panels, an instant
   query; the variable queries; every rule expression as an instant query (what an
   evaluation costs); the rule groups' own evaluation times from /api/v1/rules; the whole
   dashboard loaded with 6 queries in flight, as a browser does. Each --runs times: median
   and max.

    .venv/bin/python benchmarks/fleet_1000_hosts.py [--hosts 1000] [--hours 24] [--runs 5]
    .venv/bin/python benchmarks/fleet_1000_hosts.py --check --hosts 20 --hours 6
    .venv/bin/python benchmarks/fleet_1000_hosts.py --rules /tmp/new.rules.yml --dashboard /tmp/fleet.json

Needs: Debian's prometheus (prometheus and promtool) and the project venv (make
.venv/.installed: numpy and psutil are in its bench extra). At 1,000 hosts on 2 cores: about 13 minutes,
10 GB of blocks (more while Prometheus compacts them) under $TMPDIR (--keep leaves the workdir),
12 GB of memory for Prometheus at its peak.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import itertools
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tsdb_blocks as tb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import trees  # noqa: E402  (the fixture builders live with the tests)

VENV_PYTHON = ROOT / ".venv/bin/python"
RULES = ROOT / "alerts/panicwatch.rules.yml"
FLEET = ROOT / "dashboards/panicwatch-fleet.json"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

MOUNTS = 10
SERVERS = ("filer0.example.com", "filer1.example.com")
ADDRS = ("192.168.122.1", "192.168.122.2")
JOB = "panicwatch"
PROFILES = (0.5, 0.8, 1.2, 2.0)  # load factors: a host's counters advance at one of these
MOUNTSTATS_AGE = 3605.0  # the fixture's mount age: its counters are this many seconds' worth
DOWN_S = 240  # a panicking host's scrape gap (panic, kdump capture, reboot)
STALL_S = 1800  # a stall episode
CHUNK_S = 3600  # 120 samples at 30 s: Prometheus cuts a chunk at 120 samples
SCRAPE_SERIES = ("up", "scrape_duration_seconds", "scrape_samples_scraped",
                 "scrape_samples_post_metric_relabeling", "scrape_series_added")
MAX_SECONDS = 1.0  # the target for every fleet panel

# ---------------------------------------------------------------------------------------------
# 1. The page of one host, from the real exporter
# ---------------------------------------------------------------------------------------------

# `panicwatch serve` with /dev/kmsg replaced by a socket holding these records (the watcher's
# device is an opener default), so the kernel_log families are there as on a real host.
SERVE_WITH_KMSG = r"""
import socket, sys
from pathlib import Path
from panicwatch.background import kernel_log
from panicwatch.cli import main

RECORDS = Path(sys.argv[1]).read_text().splitlines()

class Device:
    def __init__(self, live):
        self.sock, self.keep = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.setblocking(False)
        if live:
            for record in RECORDS:
                self.keep.send(record.encode() + b"\n")
    def fileno(self):
        return self.sock.fileno()
    def read(self):
        return self.sock.recv(16384)
    def close(self):
        self.sock.close()
        self.keep.close()

kernel_log.KmsgWatcher.__init__.__kwdefaults__["opener"] = lambda path, at_end: Device(at_end)
sys.exit(main(["serve", *sys.argv[2:]]))
"""

KMSG_BOOT = ["6,1,0,-;Linux version 5.14.0-427.13.1.el9_4.x86_64",
             "6,2,1000,-;Command line: ro crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M",
             "6,3,2000000,-;systemd[1]: Started panicwatch.service."]
KMSG_STALL = [f"5,4,3000000,-;nfs: server {SERVERS[0]} not responding, still trying"]
DUMP_DIR = "var/crash/127.0.0.1-2026-05-02-10:00:00"
REAL_CRASH = ROOT / "tests/fixtures/real/6.12.118+deb12-amd64/crashes/hung_task_nfs.dmesg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fixture_root(root: Path, incident: bool) -> None:
    """nfs_client with 10 mounts of its mountstats on 2 servers, a transport each; with
    `incident`, a dump (with a real kernel's hung-task log) waiting in /var/crash."""
    trees.build("nfs_client", root)
    t = trees.Tree(root)
    stats = (trees.FIXTURES / "mountstats/debian12_v42.txt").read_text()
    head, sep, block = stats.partition("device files.lab.example:/srv/projects")
    mountstats, mountinfo = head, trees.MOUNTINFO_ROOT
    for i in range(MOUNTS):
        server, addr = SERVERS[i % 2], ADDRS[i % 2]
        mountstats += (sep + block).replace("files.lab.example:/srv/projects",
                                            f"{server}:/export/vol{i}").replace(
                                                "/srv/projects", f"/mnt/nfs/vol{i}")
        mountinfo += (f"{40 + i} 22 0:{45 + i} / /mnt/nfs/vol{i} rw,relatime shared:{80 + i} - "
                      f"nfs4 {server}:/export/vol{i} rw,vers=4.2,rsize=1048576,wsize=1048576,"
                      f"proto=tcp,timeo=600,retrans=2,sec=sys,addr={addr}\n")
        t.mkdir(f"mnt/nfs/vol{i}")
    t.write("proc/self/mountstats", mountstats)
    t.write("proc/1/mountinfo", mountinfo)
    sunrpc = trees.FIXTURES / "sunrpc"
    t.write("sys/kernel/debug/sunrpc/rpc_xprt/3/info",
            (sunrpc / "xprt_info_6.15.txt").read_text().replace(ADDRS[0], ADDRS[1]))
    t.write("sys/kernel/debug/sunrpc/rpc_clnt/10/tasks", "")
    t.link("sys/kernel/debug/sunrpc/rpc_clnt/10/xprt", "../../rpc_xprt/3")
    xprt = "sys/kernel/sunrpc/xprt-switches/switch-1/xprt-1-tcp"
    t.write(f"{xprt}/xprt_info", (sunrpc / "sysfs_xprt_info_6.1.txt").read_text())
    t.write(f"{xprt}/dstaddr", ADDRS[1] + "\n")
    if incident:
        t.sized(f"{DUMP_DIR}/vmcore", 48 * trees.MiB)
        t.write(f"{DUMP_DIR}/vmcore-dmesg.txt", REAL_CRASH.read_text())


def http_get(url: str, timeout: float = 10) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def capture_page(workdir: Path, incident: bool) -> str:
    """One scrape of `panicwatch serve` on the fixture root, once every mount was probed."""
    name = "incident" if incident else "healthy"
    root = workdir / f"root-{name}"
    fixture_root(root, incident)
    records = workdir / f"kmsg-{name}.txt"
    records.write_text("\n".join(KMSG_BOOT + (KMSG_STALL if incident else [])) + "\n")
    port = free_port()
    log = open(workdir / f"serve-{name}.log", "wb")  # noqa: SIM115 (closed in finally)
    proc = subprocess.Popen(
        [str(VENV_PYTHON), "-c", SERVE_WITH_KMSG, str(records), "--web.listen-address",
         f"127.0.0.1:{port}", "--path.rootfs", str(root)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT / "exporter")})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                page = http_get(f"http://127.0.0.1:{port}/metrics").decode()
            except OSError:
                page = ""
            probed = len(re.findall(r"^panicwatch_canary_probe_duration_seconds_count\{.*\} [1-9]",
                                    page, re.M))
            ready = probed == MOUNTS and "panicwatch_kernel_log_events_total" in page and (
                not incident or "panicwatch_vmcore_crash_info{" in page)
            if ready:
                time.sleep(1)
                return http_get(f"http://127.0.0.1:{port}/metrics").decode()
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"panicwatch serve ({name}) gave no complete page: "
                                   + (workdir / f"serve-{name}.log").read_text()[-2000:])
            time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


# ---------------------------------------------------------------------------------------------
# 2. Templates, hosts and the value model
# ---------------------------------------------------------------------------------------------

Labels = tuple[tuple[str, str], ...]
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _unescape(v: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def parse_page(text: str) -> tuple[dict[Labels, float], dict[str, str]]:
    """{labels (with __name__, sorted): value}, {family: type}."""
    samples: dict[Labels, float] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            raise ValueError(f"unparsable line: {line!r}")
        # an empty label is no label (the scrape drops it, as the query engine ignores it)
        pairs = [("__name__", m.group(1))] + [(k, _unescape(v))
                                             for k, v in _LABEL.findall(m.group(2) or "") if v]
        samples[tuple(sorted(pairs))] = float(m.group(3))
    return samples, types


def family_of(name: str, types: dict[str, str]) -> tuple[str, str]:
    """(family, type) of a series name: histogram suffixes and counters' _total resolved."""
    for suffix in ("_bucket", "_sum", "_count", "_total", ""):
        if name.endswith(suffix) and name[:len(name) - len(suffix)] in types:
            base = name[:len(name) - len(suffix)]
            return base, types[base]
    return name, "untyped"


@dataclass
class Template:
    labels: Labels
    name: str
    family: str
    counter: bool
    value: float  # healthy page (incident page for incident-only series)
    incident: float | None  # incident page's value, if there
    only_incident: bool
    synthetic: bool = False  # added by the scrape, not in the page

    def label(self, key: str) -> str:
        return dict(self.labels).get(key, "")


def templates(healthy: str, incident: str) -> list[Template]:
    h, types = parse_page(healthy)
    i, itypes = parse_page(incident)
    types = {**itypes, **types}
    out = []
    for labels, value in [*h.items(), *((k, v) for k, v in i.items() if k not in h)]:
        name = labels[0][1]
        family, kind = family_of(name, types)
        out.append(Template(labels, name, family, kind in ("counter", "histogram", "summary"),
                            value, i.get(labels), labels not in h))
    for name in SCRAPE_SERIES:
        out.append(Template((("__name__", name),), name, name, False, 0.0, None, False, True))
    return out


@dataclass
class Host:
    index: int
    instance: str
    profile: int
    kind: str  # normal, disarmed, dumps, crash, stall
    boot: float
    crash_at: float | None = None
    stalls: list[tuple[float, float]] = field(default_factory=list)
    dump_name: str | None = None  # a crashed host's dump directory, named after its crash

    @property
    def behaviour(self) -> tuple[object, ...]:
        """Hosts with the same behaviour have the same samples (so their chunks are encoded
        once); they are written once per host all the same."""
        if self.kind in ("normal", "disarmed", "dumps"):
            return (self.kind, self.profile)
        return ("host", self.index)


def make_hosts(n: int, t0: float, t_end: float, scrape: int) -> list[Host]:
    rng = random.Random(16)
    special = max(1, round(n * 0.005))
    kinds = ["stall"] * special + ["crash"] * special + ["dumps"] * special + \
        ["disarmed"] * max(1, round(n * 0.01))
    chosen = rng.sample(range(n), min(n, len(kinds)))
    kind_of = dict(zip(chosen, kinds, strict=False))
    boot = math.floor((t0 - 10 * 86400) / scrape) * scrape
    hosts = []
    counters = {"stall": 0, "crash": 0}
    for i in range(n):
        kind = kind_of.get(i, "normal")
        host = Host(i, f"host{i:04d}.example.com:10110", i % len(PROFILES), kind, boot)
        span = t_end - t0
        if kind == "crash":
            k = counters["crash"] = counters["crash"] + 1
            at = t0 + span * k / (special + 1)
            host.crash_at = math.floor(at / scrape) * scrape + scrape / 2  # between two scrapes
            host.dump_name = "127.0.0.1-" + time.strftime("%Y-%m-%d-%H:%M:%S",
                                                           time.gmtime(host.crash_at + 60))
        elif kind == "stall":
            k = counters["stall"] = counters["stall"] + 1
            if k <= 2:  # still stalled at the end, and live
                start = t_end - 900 - 300 * k
                host.stalls = [(start, math.inf)]
            else:
                start = t0 + span * (k - 2) / (special + 1)
                host.stalls = [(start, start + STALL_S)]
        hosts.append(host)
    return hosts


def _noise(t: np.ndarray, seed: int) -> np.ndarray:
    """A deterministic number in [0, 1) per (time, seed)."""
    x = np.sin(t * 12.9898 + seed * 78.233) * 43758.5453
    return x - np.floor(x)


class Model:
    """Every series' value at any time, for a host: the same function feeds the backfill and
    the live scrape, so the two join up."""

    def __init__(self, tpls: list[Template]) -> None:
        self.tpls = tpls
        n = len(tpls)
        self.counter = np.array([t.counter for t in tpls])
        self.value = np.array([t.value for t in tpls])
        self.integer = np.array([t.value == math.floor(t.value) and not t.name.endswith(
            "seconds_total") and not t.name.endswith("_sum") for t in tpls])
        rate = np.zeros(n)
        counts: dict[tuple[str, str], float] = {}
        for t in tpls:
            if t.name.endswith("_count"):
                counts[(t.family, t.label("mountpoint"))] = t.value
        for k, t in enumerate(tpls):
            if not t.counter or t.value == 0:
                continue
            if t.family == "panicwatch_canary_probe_duration_seconds":
                rate[k] = 0.1 * t.value / max(counts.get((t.family, t.label("mountpoint")), 1), 1)
            elif t.family == "panicwatch_canary_scheduler_lag_seconds":
                rate[k] = 10 * t.value / max(counts.get((t.family, ""), 1), 1)
            elif t.family == "panicwatch_kernel_log_records":
                rate[k] = 0.002
            elif t.family == "panicwatch_pressure_io_stalled_seconds":
                rate[k] = 0.01 if t.label("kind") == "some" else 0.002
            else:
                rate[k] = t.value / MOUNTSTATS_AGE
            mount = t.label("mountpoint")
            if mount and t.family != "panicwatch_canary_probe_duration_seconds":
                rate[k] *= (int(mount.rsplit("vol", 1)[1]) + 1) / 5.5
        self.rate = rate
        stalled_mounts = {f"/mnt/nfs/vol{i}" for i in range(0, MOUNTS, 2)}

        def idx(pred: Callable[[Template], bool]) -> np.ndarray:
            return np.array([k for k, t in enumerate(tpls) if pred(t)], dtype=np.int64)

        self.i_stall_progress = idx(lambda t: t.counter and t.label("mountpoint") in stalled_mounts
                                    and t.family != "panicwatch_nfs_operation_major_timeouts")
        self.i_major = idx(lambda t: t.family == "panicwatch_nfs_operation_major_timeouts"
                           and t.label("mountpoint") in stalled_mounts
                           and t.label("op") in ("READ", "WRITE", "GETATTR", "COMMIT"))
        self.i_inflight = idx(lambda t: t.name == "panicwatch_canary_probe_inflight_seconds"
                              and t.label("mountpoint") in stalled_mounts)
        self.i_timeouts = idx(lambda t: t.name == "panicwatch_canary_probe_timeouts_total"
                              and t.label("mountpoint") in stalled_mounts)
        self.i_last_ok = idx(lambda t: t.name == "panicwatch_canary_last_success_timestamp_seconds")
        self.i_last_ok_stalled = idx(
            lambda t: t.name == "panicwatch_canary_last_success_timestamp_seconds"
            and t.label("mountpoint") in stalled_mounts)
        self.i_rpc_stuck = idx(lambda t: t.name in ("panicwatch_rpc_tasks_stuck",
                                                    "panicwatch_rpc_tasks_major_timeout")
                               and t.label("server") == ADDRS[0])
        self.i_rpc_tasks = idx(lambda t: t.name == "panicwatch_rpc_tasks"
                               and t.label("server") == ADDRS[0])
        self.i_rpc_age = idx(lambda t: t.name == "panicwatch_rpc_task_oldest_age_seconds"
                             and t.label("server") == ADDRS[0])
        self.i_blocked = idx(lambda t: t.name == "panicwatch_blocked_tasks" and t.label("wait") == "nfs")
        self.i_blocked_age = idx(lambda t: t.name == "panicwatch_blocked_task_longest_seconds"
                                 and t.label("wait") == "nfs")
        self.i_not_responding = idx(lambda t: t.only_incident
                                    and t.name == "panicwatch_nfs_servers_not_responding")
        self.i_stall_events = idx(lambda t: t.only_incident
                                  and t.name == "panicwatch_kernel_log_events_total")
        dump_families = ("panicwatch_vmcore", "panicwatch_last_panic_info")
        self.i_dump_only = idx(lambda t: t.only_incident and t.name.startswith(dump_families))
        self.i_dump_values = idx(lambda t: not t.only_incident and t.incident is not None
                                 and t.incident != t.value and (
                                     t.name.startswith("panicwatch_vmcore")
                                     or t.name in ("panicwatch_readiness_check",
                                                   "panicwatch_panic_ready")))
        self.dump_value = np.array([t.incident if t.incident is not None else t.value for t in tpls])
        self.i_dump_stamp = idx(lambda t: t.name in ("panicwatch_vmcore_timestamp_seconds",
                                                     "panicwatch_vmcore_newest_timestamp_seconds"))
        self.i_disarmed = idx(lambda t: t.name in ("panicwatch_kdump_loaded", "panicwatch_panic_ready")
                              or (t.name == "panicwatch_readiness_check"
                                  and t.label("check") == "crash_kernel_loaded"))
        self.i_duration = idx(lambda t: t.name == "panicwatch_collector_duration_seconds")
        self.i_idle = idx(lambda t: t.name == "panicwatch_nfs_transport_idle_seconds")
        self.i_age = idx(lambda t: t.name == "panicwatch_nfs_mount_age_seconds")
        unexplained = [t.name for k, t in enumerate(tpls) if t.only_incident and k not in set(
            self.i_not_responding) | set(self.i_stall_events) | set(self.i_dump_only)]
        self.i_never = idx(lambda t: t.name in unexplained and t.only_incident)
        self.page = ~np.array([t.synthetic for t in tpls])
        self.i_up = idx(lambda t: t.name == "up")
        self.i_scrape_duration = idx(lambda t: t.name == "scrape_duration_seconds")
        self.i_scraped = idx(lambda t: t.name in ("scrape_samples_scraped",
                                                  "scrape_samples_post_metric_relabeling"))

    def evaluate(self, host: Host, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(present[S, T], value[S, T]) of every template for this host at times t (s)."""
        n, tn = len(self.tpls), len(t)
        up = np.ones(tn, dtype=bool)
        boot = np.full(tn, host.boot)
        dump = np.full(tn, host.kind == "dumps")
        if host.crash_at is not None:
            back = host.crash_at + DOWN_S
            up &= ~((t >= host.crash_at) & (t < back))
            boot = np.where(t >= back, back, boot)
            dump = t >= back
        elapsed = t - boot
        rate = self.rate * PROFILES[host.profile]
        vals = np.where(self.counter[:, None], rate[:, None] * elapsed[None, :], self.value[:, None])
        present = np.empty((n, tn), dtype=bool)
        present[:] = up[None, :]
        present[self.i_dump_only] &= dump[None, :]
        present[self.i_never] = False
        present[self.i_not_responding] = False
        present[self.i_stall_events] = False

        vals[self.i_last_ok] = (t - 10 * _noise(t, 1))[None, :]
        vals[self.i_duration] = self.value[self.i_duration, None] * (
            0.5 + _noise(t[None, :], self.i_duration[:, None]))
        vals[self.i_idle] = np.floor(3 * _noise(t[None, :], self.i_idle[:, None]))
        vals[self.i_age] = (elapsed - 60)[None, :]
        if len(self.i_dump_values):
            vals[self.i_dump_values] = np.where(dump[None, :], self.dump_value[self.i_dump_values, None],
                                                vals[self.i_dump_values])
        if host.crash_at is not None:
            vals[self.i_dump_stamp] = math.floor(host.crash_at + 60)
        if host.kind == "disarmed":
            vals[self.i_disarmed] = 0.0

        events = np.zeros(tn)
        for start, end in host.stalls:
            since = np.clip(t - start, 0, end - start)  # time stalled so far
            active = (t >= start) & (t < end)
            after_boot = start >= boot
            vals[self.i_stall_progress] -= rate[self.i_stall_progress, None] * (since * after_boot)[None, :]
            vals[self.i_major] += np.floor(since / 60)[None, :] * after_boot
            vals[self.i_inflight] = np.where(active, t - start, vals[self.i_inflight])
            vals[self.i_timeouts] += ((t >= start + 5) & after_boot)[None, :]
            vals[self.i_last_ok_stalled] = np.where(active, start, vals[self.i_last_ok_stalled])
            vals[self.i_rpc_stuck] = np.where(active, 3.0, vals[self.i_rpc_stuck])
            vals[self.i_rpc_tasks] = np.where(active, vals[self.i_rpc_tasks] + 3, vals[self.i_rpc_tasks])
            vals[self.i_rpc_age] = np.where(active, t - start, vals[self.i_rpc_age])
            vals[self.i_blocked] = np.where(active, 4.0, vals[self.i_blocked])
            vals[self.i_blocked_age] = np.where(active, t - start, vals[self.i_blocked_age])
            present[self.i_not_responding] |= (active & up)[None, :]
            events += (t >= start) & after_boot
        if host.stalls:
            present[self.i_stall_events] = ((events > 0) & up)[None, :]
            vals[self.i_stall_events] = events[None, :]
            vals[self.i_not_responding] = 1.0

        integer = self.integer & self.counter
        vals[integer] = np.floor(vals[integer])
        floats = self.counter & ~self.integer
        vals[floats] = np.round(vals[floats], 6)
        # what the scrape adds
        present[~self.page] = True
        vals[self.i_up] = up[None, :].astype(float)
        vals[self.i_scrape_duration] = np.where(up, 0.02 + 0.05 * _noise(t, 7), 0.001)[None, :]
        vals[self.i_scraped] = np.where(up, present[self.page].sum(axis=0), 0)[None, :]
        return present, vals


def host_labels(tpl: Template, host: Host) -> Labels:
    pairs = list(tpl.labels)
    if host.dump_name and tpl.label("dump"):
        pairs = [(k, host.dump_name if k == "dump" else v) for k, v in pairs]
    pairs += [("instance", host.instance), ("job", JOB)]
    return tuple(sorted(pairs))


# ---------------------------------------------------------------------------------------------
# 3. Backfill: TSDB blocks (or OpenMetrics for promtool)
# ---------------------------------------------------------------------------------------------


def block_ranges(t0: int, t_end: int, hours: int) -> list[tuple[int, int]]:
    """[start, end) windows aligned to `hours`, covering [t0, t_end]."""
    size = hours * 3600
    out = []
    start = t0
    while start <= t_end:
        end = min((start // size + 1) * size, t_end + 1)
        out.append((start, end))
        start = end
    return out


def series_samples(present: np.ndarray, vals: np.ndarray, stale: bool
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The samples to store from a (present, value) row whose first column is the previous
    scrape: present ones, plus a stale marker where a series disappears (as the scrape loop
    writes one)."""
    emit = present[1:].copy()
    out = vals[1:].copy()
    if stale:
        gone = present[:-1] & ~present[1:]
        emit |= gone
        out[gone] = tb.STALE_NAN
    return emit, out


@dataclass
class Dataset:
    tpls: list[Template]
    hosts: list[Host]
    model: Model
    t0: int
    t_end: int
    scrape: int
    order: list[tuple[int, int]]  # (host, template) in label order
    labels: list[Labels]  # of each entry of order

    @property
    def samples_per_series(self) -> int:
        return (self.t_end - self.t0) // self.scrape + 1


def make_dataset(tpls: list[Template], hosts: list[Host], t0: int, t_end: int, scrape: int
                 ) -> Dataset:
    entries = []
    for h in hosts:
        for k, tpl in enumerate(tpls):
            entries.append((host_labels(tpl, h), h.index, k))
    entries.sort()
    return Dataset(tpls, hosts, Model(tpls), t0, t_end, scrape,
                   [(h, k) for _l, h, k in entries], [lab for lab, _h, _k in entries])


def write_blocks(ds: Dataset, out: Path, block_hours: int, stale: bool,
                 progress: Callable[[str], None]) -> list[dict[str, object]]:
    symbols = tb.Symbols(ds.labels)
    metas = []
    reps: dict[tuple[object, ...], Host] = {}
    for h in ds.hosts:
        reps.setdefault(h.behaviour, h)
    for start, end in block_ranges(ds.t0, ds.t_end, block_hours):
        began = time.monotonic()
        first = start + (-(start - ds.t0)) % ds.scrape
        t = np.arange(first - ds.scrape, end, ds.scrape, dtype=np.float64)
        t_ms = (t[1:] * 1000).astype(np.int64)
        cuts = [i for i in range(len(t_ms)) if i == 0 or
                (t_ms[i] // 1000 - start) // CHUNK_S != (t_ms[i - 1] // 1000 - start) // CHUNK_S]
        cuts.append(len(t_ms))
        cache: dict[tuple[int, bytes, bytes], tuple[int, int, bytes]] = {}
        chunks: dict[tuple[object, ...], list[list[tuple[int, int, bytes]]]] = {}
        for key, host in reps.items():
            present, vals = ds.model.evaluate(host, t)
            per_tpl = []
            for k in range(len(ds.tpls)):
                emit, out_vals = series_samples(present[k], vals[k], stale)
                lst = []
                for a, b in itertools.pairwise(cuts):
                    mask = emit[a:b]
                    if not mask.any():
                        continue
                    ts = t_ms[a:b][mask]
                    vs = out_vals[a:b][mask]
                    ck = (int(ts[0]), ts.tobytes() if not mask.all() else b"", vs.tobytes())
                    rec = cache.get(ck)
                    if rec is None:
                        tsl = ts.tolist()
                        rec = cache[ck] = (tsl[0], tsl[-1],
                                           tb.chunk_record(tb.xor_chunk(tsl, vs.tolist())))
                    lst.append(rec)
                per_tpl.append(lst)
            chunks[key] = per_tpl
        encoded = time.monotonic() - began
        behaviour = [h.behaviour for h in ds.hosts]
        series = []
        for (h, k), labels in zip(ds.order, ds.labels, strict=True):
            c = chunks[behaviour[h]][k]
            if c:
                series.append(tb.Series(labels, c))
        meta = tb.write_block(out, series, symbols)
        metas.append(meta)
        stats = meta["stats"]
        assert isinstance(stats, dict)
        progress(f"block {time.strftime('%H:%M', time.gmtime(start))}-"
                 f"{time.strftime('%H:%M', time.gmtime(end))} UTC: {stats['numSeries']:,} series, "
                 f"{stats['numSamples']:,} samples, {len(cache):,} distinct chunks encoded in "
                 f"{encoded:.1f} s, written in {time.monotonic() - began:.1f} s")
    return metas


def _om_value(v: float) -> str:
    return "NaN" if math.isnan(v) else repr(v)


def _om_labels(labels: Labels) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return ",".join(f'{k}="{esc(v)}"' for k, v in labels if k != "__name__")


def write_openmetrics(ds: Dataset, path: Path) -> int:
    """Every sample (no stale markers: OpenMetrics has none) as promtool's input."""
    t = np.arange(ds.t0 - ds.scrape, ds.t_end + 1, ds.scrape, dtype=np.float64)
    evaluated: dict[tuple[object, ...], tuple[np.ndarray, np.ndarray]] = {}
    n = 0
    with open(path, "w") as f:
        for (h, k), labels in zip(ds.order, ds.labels, strict=True):
            host = ds.hosts[h]
            if host.behaviour not in evaluated:
                evaluated[host.behaviour] = ds.model.evaluate(host, t)
            present, vals = evaluated[host.behaviour]
            emit, out = series_samples(present[k], vals[k], stale=False)
            prefix = f"{labels[0][1]}{{{_om_labels(labels)}}} "
            lines = [f"{prefix}{_om_value(v)} {ts:.3f}\n"
                     for ts, v, e in zip(t[1:].tolist(), out.tolist(), emit.tolist(), strict=True) if e]
            f.write("".join(lines))
            n += len(lines)
        f.write("# EOF\n")
    return n


# ---------------------------------------------------------------------------------------------
# 4. Prometheus, the live targets, the rules' history
# ---------------------------------------------------------------------------------------------


def exposition_prefix(tpl: Template, host: Host) -> str:
    """`name{labels} ` of a series on the host's own page (no instance, no job)."""
    labels = _om_labels(tuple(p for p in host_labels(tpl, host) if p[0] not in ("instance", "job")))
    return f"{tpl.name}{{{labels}}} " if labels else f"{tpl.name} "


class LiveTargets:
    """Every simulated host's page at the current time, on one port (?target=instance)."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        by_instance = {h.instance: h for h in ds.hosts}
        page_k = [k for k, t in enumerate(ds.tpls) if not t.synthetic]
        prefixes: dict[int, list[str]] = {}
        for h in ds.hosts:
            prefixes[h.index] = [exposition_prefix(ds.tpls[k], h) for k in page_k]
        self.page_k = np.array(page_k)
        self.prefixes = prefixes
        self.by_instance = by_instance
        self.requests = 0
        self.seconds = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                began = time.perf_counter()
                query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                host = outer.by_instance.get(query.get("target", [""])[0])
                if host is None:
                    self.send_error(404)
                    return
                body = outer.page(host, time.time()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                outer.requests += 1
                outer.seconds += time.perf_counter() - began

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def page(self, host: Host, now: float) -> str:
        present, vals = self.ds.model.evaluate(host, np.array([now]))
        p = present[self.page_k, 0].tolist()
        v = vals[self.page_k, 0].tolist()
        return "".join(f"{prefix}{_om_value(x)}\n" for prefix, x, e in zip(
            self.prefixes[host.index], v, p, strict=True) if e)

    def __enter__(self) -> LiveTargets:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def prometheus_config(targets: list[str] | None, live_port: int, scrape: int, evaluation: int,
                      rules: bool) -> str:
    config: dict[str, Any] = {"global": {"scrape_interval": f"{scrape}s", "scrape_timeout": "10s",
                                         "evaluation_interval": f"{evaluation}s"}}
    if rules:
        config["rule_files"] = ["rules.yml"]
    if targets:
        config["scrape_configs"] = [{
            "job_name": JOB,
            "static_configs": [{"targets": targets}],
            "relabel_configs": [
                {"source_labels": ["__address__"], "target_label": "__param_target"},
                {"source_labels": ["__address__"], "target_label": "instance"},
                {"target_label": "__address__", "replacement": f"127.0.0.1:{live_port}"}],
        }]
    return yaml.safe_dump(config, sort_keys=False)


@dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    started_s: float

    def api(self, path: str, timeout: float = 120, **params: str) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            return json.loads(http_get(url, timeout))["data"]
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{path} {params}: {e.read().decode()[:500]}") from None

    def metric(self, name: str) -> float:
        text = http_get(f"{self.url}/metrics").decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and line[len(name)] in " {":
                total += float(line.rsplit(" ", 1)[1])
        return total

    def rss_mb(self) -> tuple[float, float]:
        """(current, peak) resident memory."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        get = {k: v.split()[0] for k, _, v in (line.partition(":") for line in status.splitlines())
               if v.split()}
        return int(get.get("VmRSS", 0)) / 1024, int(get.get("VmHWM", 0)) / 1024

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def prometheus(workdir: Path, data: Path, name: str = "prometheus", *flags: str) -> Iterator[Prometheus]:
    port = free_port()
    log = workdir / f"{name}.log"
    began = time.monotonic()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={data}", f"--web.listen-address=127.0.0.1:{port}",
             "--storage.tsdb.retention.time=15d", *flags],
            stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    prom = Prometheus(f"http://127.0.0.1:{port}", proc, log, 0.0)
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                if http_get(f"{prom.url}/-/ready", 2):
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not start:\n{prom.tail()}")
            time.sleep(0.5)
        prom.started_s = time.monotonic() - began
        yield prom
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def reads(expr: str, name: str) -> bool:
    return re.search(rf"(?<![\w:]){re.escape(name)}(?![\w:])", expr) is not None


def rule_passes(rules_text: str, wanted: set[str]) -> list[list[dict[str, Any]]]:
    """The recording rules in `wanted` and those they read, in passes: a rule that reads
    another recorded series comes in a pass after it (promtool backfills a rule from the data
    already in Prometheus)."""
    groups = yaml.safe_load(rules_text)["groups"]
    records = [(g["name"], r) for g in groups for r in g["rules"] if "record" in r]
    for _ in records:
        wanted |= {n for _g, r in records if r["record"] in wanted
                   for n in (r2["record"] for _g2, r2 in records) if reads(r["expr"], n)}
    records = [(g, r) for g, r in records if r["record"] in wanted]
    level: dict[str, int] = {}
    for _ in records:
        for _g, r in records:
            deps = [n for n in level if reads(r["expr"], n)]
            level[r["record"]] = 1 + max((level[d] for d in deps if d != r["record"]), default=-1)
    passes: list[list[dict[str, Any]]] = []
    for k in range(max(level.values(), default=-1) + 1):
        by_group: dict[str, list[dict[str, Any]]] = {}
        for g, r in records:
            if level[r["record"]] == k:
                by_group.setdefault(g, []).append({"record": r["record"], "expr": r["expr"]})
        passes.append([{"name": g, "rules": rs} for g, rs in by_group.items()])
    return passes


def wait_compaction(prom: Prometheus, progress: Callable[[str], None], limit_s: float = 3600) -> float:
    """Until the compaction loop (every minute) has run twice with nothing left to compact;
    returns the seconds compactions took. A running compaction holds the loop, so the trigger
    count stands still while one runs."""
    began = time.monotonic()
    done = prom.metric("prometheus_tsdb_compactions_total")
    triggered = prom.metric("prometheus_tsdb_compactions_triggered_total")
    idle = 0
    while idle < 2 and time.monotonic() - began < limit_s:
        time.sleep(10)
        now_done = prom.metric("prometheus_tsdb_compactions_total")
        now_triggered = prom.metric("prometheus_tsdb_compactions_triggered_total")
        if now_done != done:
            progress(f"compactions: {now_done:.0f} "
                     f"({prom.metric('prometheus_tsdb_blocks_loaded'):.0f} blocks loaded)")
            idle = 0
        elif now_triggered != triggered:
            idle += 1
        done, triggered = now_done, now_triggered
    return prom.metric("prometheus_tsdb_compaction_duration_seconds_sum")


# ---------------------------------------------------------------------------------------------
# 5. The queries
# ---------------------------------------------------------------------------------------------


@dataclass
class Query:
    kind: str  # panel, variable, rule
    title: str
    expr: str
    instant: bool
    label: str = ""  # variables: the label whose values are asked for


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in dashboard.get("panels", []):
        yield p
        yield from panels(p)


def grafana_duration(seconds: int) -> str:
    return f"{seconds}s"


def substitute(expr: str, values: dict[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name.isdigit():
            return m.group(0)  # label_replace's $1
        if name not in values:
            raise KeyError(f"unknown variable ${name} in {expr!r}")
        return values[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", repl, expr)


def dashboard_queries(dashboard: dict[str, Any], step: int, range_s: int, scrape: int,
                      job_values: list[str]) -> tuple[list[Query], dict[str, str]]:
    """Every panel query with Grafana's variables resolved; the variable queries first."""
    values: dict[str, str] = {
        "__interval": grafana_duration(step), "__interval_ms": str(step * 1000),
        "__rate_interval": grafana_duration(max(step + scrape, 4 * scrape)),
        "__range": grafana_duration(range_s), "__range_s": str(range_s),
        "__range_ms": str(range_s * 1000), "datasource": "prometheus"}
    queries = []
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", var["query"].strip())
        if m is None:
            raise ValueError(f"variable {var['name']}: unsupported query {var['query']!r}")
        queries.append(Query("variable", f"${var['name']}", substitute(m.group(1), values), False,
                             m.group(2)))
        if var.get("includeAll") and var.get("allValue"):
            values[var["name"]] = var["allValue"]
        elif var["name"] == "job":
            values["job"] = job_values[0] if len(job_values) == 1 else "(" + "|".join(job_values) + ")"
        else:
            raise ValueError(f"variable {var['name']}: no All value to substitute")
    for p in panels(dashboard):
        for target in p.get("targets", []):
            if not target.get("expr"):
                continue
            title = p.get("title", "?") + (f" [{target.get('refId')}]" if len(p["targets"]) > 1 else "")
            instant = bool(target.get("instant")) and not target.get("range")
            queries.append(Query("panel", title, substitute(target["expr"], values), instant))
    return queries, values


def rule_queries(rules_text: str) -> list[Query]:
    out = []
    for g in yaml.safe_load(rules_text)["groups"]:
        for r in g["rules"]:
            name = r.get("record") or r.get("alert")
            out.append(Query("rule", f"{g['name']}: {name}", r["expr"], True))
    return out


@dataclass
class Timing:
    query: Query
    seconds: list[float]
    result_series: int
    bytes: int
    samples: int | None
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else math.nan

    @property
    def worst(self) -> float:
        return max(self.seconds) if self.seconds else math.nan


def run_query(prom: Prometheus, q: Query, end: int, range_s: int, step: int
              ) -> tuple[float, int, int, int | None, Any]:
    """(seconds, result series, response bytes, samples Prometheus loaded, result)."""
    if q.kind == "variable":
        path = f"/api/v1/label/{q.label}/values"
        params = {"match[]": q.expr, "start": str(end - range_s), "end": str(end)}
    elif q.instant:
        path = "/api/v1/query"
        params = {"query": q.expr, "time": str(end), "stats": "all"}
    else:
        path = "/api/v1/query_range"
        params = {"query": q.expr, "start": str(end - range_s), "end": str(end), "step": str(step),
                  "stats": "all"}
    url = f"{prom.url}{path}?{urllib.parse.urlencode(params)}"
    began = time.perf_counter()
    body = http_get(url, timeout=300)
    seconds = time.perf_counter() - began
    data = json.loads(body)["data"]
    if q.kind == "variable":
        return seconds, len(data), len(body), None, data
    samples = data.get("stats", {}).get("samples", {}).get("totalQueryableSamples")
    return seconds, len(data["result"]), len(body), samples, data["result"]


def time_queries(prom: Prometheus, queries: list[Query], end: int, range_s: int, step: int,
                 runs: int, progress: Callable[[str], None]) -> list[Timing]:
    out = []
    for q in queries:
        t = Timing(q, [], 0, 0, None)
        try:
            for _ in range(runs):
                seconds, t.result_series, t.bytes, t.samples, _ = run_query(prom, q, end, range_s, step)
                t.seconds.append(seconds)
        except (urllib.error.HTTPError, OSError) as e:
            detail = e.read().decode()[:300] if isinstance(e, urllib.error.HTTPError) else str(e)
            t.error = detail
        out.append(t)
        progress(f"{q.kind} {q.title}: median {t.median:.3f} s"
                 + (f" ERROR {t.error}" if t.error else ""))
    return out


def rule_rounds(prom: Prometheus, rounds: int, interval: int) -> list[dict[str, Any]]:
    """The rule groups of /api/v1/rules over `rounds` evaluations: every round's
    evaluationTime of each group and rule (lists, in the fields of the last round's answer)."""
    seen: dict[str, list[dict[str, Any]]] = {}
    last: list[dict[str, Any]] = []
    for k in range(rounds):
        if k:
            time.sleep(interval)
        last = prom.api("/api/v1/rules")["groups"]
        for g in last:
            seen.setdefault(g["name"], []).append(g)
    for g in last:
        g["evaluationTimes"] = [r["evaluationTime"] for r in seen[g["name"]]]
        for i, rule in enumerate(g["rules"]):
            rule["evaluationTimes"] = [r["rules"][i]["evaluationTime"] for r in seen[g["name"]]]
    return last


def dashboard_load(prom: Prometheus, queries: list[Query], end: int, range_s: int, step: int,
                   runs: int) -> list[float]:
    """The whole dashboard: the variables first, then every panel query, 6 in flight."""
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        for q in queries:
            if q.kind == "variable":
                run_query(prom, q, end, range_s, step)
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda q: run_query(prom, q, end, range_s, step),
                          [q for q in queries if q.kind == "panel"]))
        times.append(time.perf_counter() - began)
    return times


# ---------------------------------------------------------------------------------------------
# Series per host
# ---------------------------------------------------------------------------------------------


def series_breakdown(healthy: str) -> dict[str, Any]:
    samples, types = parse_page(healthy)
    per_mount = per_op = per_server = 0
    families: dict[str, int] = {}
    for labels in samples:
        d = dict(labels)
        families[family_of(d["__name__"], types)[0]] = families.get(
            family_of(d["__name__"], types)[0], 0) + 1
        if "op" in d:
            per_op += 1
        elif "mountpoint" in d:
            per_mount += 1
        elif "server" in d:
            per_server += 1
    total = len(samples)
    return {"page": total, "with_scrape": total + len(SCRAPE_SERIES), "per_op": per_op,
            "per_mount_other": per_mount, "per_server": per_server,
            "host": total - per_op - per_mount - per_server, "families": families}


def du(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fmt_s(s: float) -> str:
    return "-" if math.isnan(s) else f"{s:.3f}"


def check(args: argparse.Namespace, ds: Dataset, workdir: Path, queries: list[Query]) -> int:
    """The same samples through tsdb_blocks.py and through promtool: every answer must match."""
    direct, om_data = workdir / "direct", workdir / "promtool"
    direct.mkdir()
    om_data.mkdir()
    write_blocks(ds, direct, args.block_hours, stale=False, progress=log)
    om = workdir / "samples.om"
    began = time.monotonic()
    n = write_openmetrics(ds, om)
    log(f"OpenMetrics: {n:,} samples, {om.stat().st_size / 1e6:.0f} MB in "
        f"{time.monotonic() - began:.0f} s")
    began = time.monotonic()
    subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(om), str(om_data)],
                   check=True, stdout=subprocess.DEVNULL)
    log(f"promtool openmetrics import: {time.monotonic() - began:.0f} s "
        f"({n / (time.monotonic() - began) / 1e6:.2f} M samples/s)")
    (workdir / "prometheus.yml").write_text(prometheus_config(None, 0, ds.scrape, 30, False))
    range_s = ds.t_end - ds.t0
    times = [ds.t_end, ds.t_end - range_s // 3, ds.t0 + 3600]
    mismatches = 0
    with prometheus(workdir, direct, "prometheus-direct") as a, \
            prometheus(workdir, om_data, "prometheus-promtool") as b:
        for q in [*queries, Query("panel", "every series", 'count({__name__=~".+"})', True),
                  Query("panel", "samples of up", f'sum(count_over_time(up[{range_s}s]))', True)]:
            for end in times if q.instant else times[:1]:
                ra = run_query(a, q, end, range_s, args.step)[4]
                rb = run_query(b, q, end, range_s, args.step)[4]
                norm = (lambda r: sorted(json.dumps(x, sort_keys=True) for x in r)) if isinstance(
                    ra, list) else (lambda r: r)
                same = norm(ra) == norm(rb)
                mismatches += not same
                print(f"| {q.kind} | {q.title} | {end} | {len(ra)} | {'same' if same else 'DIFFERENT'} |")
    stored = [sum(json.loads(m.read_text())["stats"]["numSamples"] for m in d.glob("*/meta.json"))
              for d in (direct, om_data)]
    mismatches += stored[0] != stored[1]
    print(f"\nsamples stored: {stored[0]:,} (tsdb_blocks.py), {stored[1]:,} (promtool)")
    print(f"{mismatches} mismatches")
    return 1 if mismatches else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--scrape-interval", type=int, default=30, help="seconds (deploy/prometheus)")
    parser.add_argument("--evaluation-interval", type=int, default=30, help="seconds")
    parser.add_argument("--step", type=int, default=60, help="range query step, seconds")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--block-hours", type=int, default=6)
    parser.add_argument("--rule-rounds", type=int, default=5,
                        help="rule evaluations whose times /api/v1/rules is read for")
    parser.add_argument("--rules", type=Path, default=RULES)
    parser.add_argument("--dashboard", type=Path, default=FLEET)
    parser.add_argument("--backfill-rules", choices=("ranged", "all"), default="ranged",
                        help="the recording rules whose 24 h history is backfilled: those a range "
                        "panel reads (and what they read), or all (promtool moves a rule's history "
                        "as JSON: some 2 minutes per 2 h of the 100,000-series RTT rule)")
    parser.add_argument("--check", action="store_true",
                        help="compare the block writer with promtool's import instead")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="leave the workdir")
    args = parser.parse_args()
    for tool in (PROMETHEUS, PROMTOOL):
        if not os.access(tool, os.X_OK):
            raise SystemExit("needs Debian's prometheus (apt-get install prometheus)")
    if not VENV_PYTHON.exists():
        raise SystemExit("needs the project venv: make .venv/.installed")
    began_all = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="panicwatch-fleet-"))
    log(f"workdir {workdir}")
    scrape, range_s = args.scrape_interval, args.hours * 3600
    results: dict[str, Any] = {"hosts": args.hosts, "hours": args.hours, "scrape_interval": scrape,
                               "evaluation_interval": args.evaluation_interval, "step": args.step,
                               "cpus": os.cpu_count()}
    try:
        healthy = capture_page(workdir, incident=False)
        incident = capture_page(workdir, incident=True)
        (workdir / "page-healthy.txt").write_text(healthy)
        (workdir / "page-incident.txt").write_text(incident)
        breakdown = series_breakdown(healthy)
        results["series_per_host"] = breakdown
        log(f"page: {breakdown['page']} series ({breakdown['per_op']} per op, "
            f"{breakdown['per_mount_other']} other per mount, {breakdown['per_server']} per server, "
            f"{breakdown['host']} per host), {breakdown['with_scrape']} with the scrape's own")
        tpls = templates(healthy, incident)
        t_end = int(time.time()) // scrape * scrape
        t0 = t_end - range_s
        hosts = make_hosts(args.hosts, t0, t_end, scrape)
        began = time.monotonic()
        ds = make_dataset(tpls, hosts, t0, t_end, scrape)
        log(f"{len(ds.order):,} series ({len(tpls)} templates x {len(hosts)} hosts) sorted in "
            f"{time.monotonic() - began:.0f} s")
        rules_text = args.rules.read_text()
        (workdir / "rules.yml").write_text(rules_text)
        dashboard = json.loads(args.dashboard.read_text())
        queries, variables = dashboard_queries(dashboard, args.step, range_s, scrape, [JOB])
        queries += rule_queries(rules_text)
        if args.check:
            return check(args, ds, workdir, queries)

        data = workdir / "data"
        data.mkdir()
        began = time.monotonic()
        metas = write_blocks(ds, data, args.block_hours, stale=True, progress=log)
        gen_s = time.monotonic() - began
        samples = sum(int(m["stats"]["numSamples"]) for m in metas)  # type: ignore[index]
        results["backfill"] = {"seconds": gen_s, "samples": samples, "series": len(ds.order),
                               "blocks": len(metas), "bytes": du(data)}
        log(f"backfill: {samples:,} samples in {len(metas)} blocks, {du(data) / 1e9:.1f} GB, "
            f"{gen_s:.0f} s")

        (workdir / "prometheus.yml").write_text(prometheus_config(
            [h.instance for h in hosts], 0, scrape, args.evaluation_interval, True))
        with ExitStack() as stack:
            live = stack.enter_context(LiveTargets(ds))
            (workdir / "prometheus.yml").write_text(prometheus_config(
                [h.instance for h in hosts], live.port, scrape, args.evaluation_interval, True))
            rules_s = 0.0
            records = [r["record"] for g in yaml.safe_load(rules_text)["groups"] for r in g["rules"]
                       if "record" in r]
            ranged = {n for n in records for q in queries
                      if q.kind == "panel" and not q.instant and reads(q.expr, n)}
            passes = rule_passes(rules_text, set(records) if args.backfill_rules == "all" else ranged)
            backfilled = {r["record"] for p in passes for g in p for r in g["rules"]}
            results["rules_backfilled"] = sorted(backfilled)
            results["rules_live_only"] = [n for n in records if n not in backfilled]
            for k, rule_pass in enumerate(passes):
                # promtool asks for each rule over 2 h at a time: more samples than the
                # default limit of a query (50 million) at 1,000 hosts
                with prometheus(workdir, data, "prometheus", "--query.max-samples=500000000") as prom:
                    log(f"prometheus up in {prom.started_s:.0f} s; rules backfill pass {k + 1}: "
                        + ", ".join(r["record"] for g in rule_pass for r in g["rules"]))
                    pass_file = workdir / f"rules-pass{k + 1}.yml"
                    pass_file.write_text(yaml.safe_dump({"groups": rule_pass}, sort_keys=False))
                    out = workdir / f"rules-blocks{k + 1}"
                    began = time.monotonic()
                    subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "rules", f"--url={prom.url}",
                                    f"--start={t0}", f"--end={t_end}",
                                    f"--eval-interval={args.evaluation_interval}s", f"--output-dir={out}",
                                    str(pass_file)], check=True, stdout=subprocess.DEVNULL)
                    rules_s += time.monotonic() - began
                for block in out.iterdir():
                    if re.fullmatch(r"[0-9A-Z]{26}", block.name):
                        shutil.move(str(block), data / block.name)
            results["rules_backfill_seconds"] = rules_s
            log(f"rules backfilled in {rules_s:.0f} s")
            prom = stack.enter_context(prometheus(workdir, data))
            log(f"prometheus up in {prom.started_s:.0f} s; waiting for compaction")
            compaction_s = wait_compaction(prom, log)
            results["compaction_seconds"] = compaction_s
            results["disk_bytes"] = du(data)
            log(f"compaction done ({compaction_s:.0f} s of compaction), {du(data) / 1e9:.1f} GB")
            wait_until = time.monotonic() + 2.5 * args.evaluation_interval
            while time.monotonic() < wait_until:
                time.sleep(5)
            end = int(time.time()) // args.step * args.step
            results["query_end"] = end
            timings = time_queries(prom, queries, end, range_s, args.step, args.runs, log)
            load = dashboard_load(prom, [q for q in queries if q.kind != "rule"], end, range_s,
                                  args.step, args.runs)
            groups = rule_rounds(prom, args.rule_rounds, args.evaluation_interval)
            rss, peak = prom.rss_mb()
            results["prometheus_rss_mb"] = {"now": rss, "peak": peak}
            results["head_series"] = prom.metric("prometheus_tsdb_head_series")
            results["live_scrape"] = {"requests": live.requests, "seconds": live.seconds}
        results["total_seconds"] = time.monotonic() - began_all
        report(results, timings, load, groups, variables)
        if args.json:
            results["queries"] = [{"kind": t.query.kind, "title": t.query.title, "expr": t.query.expr,
                                   "instant": t.query.instant, "seconds": t.seconds,
                                   "series": t.result_series, "bytes": t.bytes, "samples": t.samples,
                                   "error": t.error} for t in timings]
            results["dashboard_load_seconds"] = load
            results["rule_groups"] = [{"name": g["name"], "evaluationTimes": g["evaluationTimes"],
                                       "rules": [{"name": r["name"], "evaluationTimes": r["evaluationTimes"],
                                                  "health": r["health"]} for r in g["rules"]]}
                                      for g in groups]
            args.json.write_text(json.dumps(results, indent=1))
        return 0
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def report(results: dict[str, Any], timings: list[Timing], load: list[float],
           groups: list[dict[str, Any]], variables: dict[str, str]) -> None:
    b = results["series_per_host"]
    print(f"\n## Fleet dashboard at {results['hosts']:,} hosts, {results['hours']} h, "
          f"{os.cpu_count()} cores\n")
    print(f"Series per host (default mode, {MOUNTS} NFS mounts on 2 servers): {b['page']} on the page "
          f"+ {len(SCRAPE_SERIES)} from the scrape = {b['with_scrape']}: {b['per_op']} per operation "
          f"({b['per_op'] // MOUNTS} per mount), {b['per_mount_other']} other per-mount "
          f"({b['per_mount_other'] // MOUNTS} per mount), {b['per_server']} per server, "
          f"{b['host']} per host.\n")
    bf = results["backfill"]
    print(f"Backfill: {bf['series']:,} series, {bf['samples']:,} samples in {bf['blocks']} blocks, "
          f"{bf['bytes'] / 1e9:.1f} GB, written in {bf['seconds']:.0f} s; recording rules' history "
          f"(promtool) {results['rules_backfill_seconds']:.0f} s; Prometheus compaction "
          f"{results['compaction_seconds']:.0f} s; {results['disk_bytes'] / 1e9:.1f} GB on disk after. "
          f"Prometheus RSS {results['prometheus_rss_mb']['now']:.0f} MB "
          f"(peak {results['prometheus_rss_mb']['peak']:.0f} MB), "
          f"{results['head_series']:,.0f} series in the head. Whole run "
          f"{results['total_seconds'] / 60:.0f} min.\n")
    print(f"Recording rules with their {results['hours']} h history backfilled (promtool): "
          f"{', '.join(results['rules_backfilled']) or 'none'}; evaluated live only (since Prometheus "
          f"started, what an instant query reads): {', '.join(results['rules_live_only']) or 'none'}.\n")
    print(f"Range queries: last {results['hours']} h, step {results['step']} s; table panels: instant "
          f"queries with $__range = {variables['__range']}; $__rate_interval = "
          f"{variables['__rate_interval']}; {len(next(iter(timings)).seconds)} runs each.\n")
    print("| kind | panel / rule | query | median s | max s | < 1 s | series | samples | bytes |")
    print("|---|---|---|---:|---:|---|---:|---:|---:|")
    for t in timings:
        ok = "" if t.query.kind == "rule" else ("yes" if t.worst < MAX_SECONDS else "**NO**")
        if t.error:
            ok = "**ERROR** " + t.error.replace("|", "/")[:120]
        kind = t.query.kind if t.query.kind != "panel" else ("instant" if t.query.instant else "range")
        print(f"| {kind} | {t.query.title} | `{' '.join(t.query.expr.split())[:90].replace('|', '/')}` "
              f"| {fmt_s(t.median)} | {fmt_s(t.worst)} | {ok} | {t.result_series} | "
              f"{t.samples if t.samples is not None else ''} | {t.bytes} |")
    print(f"\nWhole dashboard (variables, then every panel, 6 in flight): median "
          f"{statistics.median(load):.2f} s, max {max(load):.2f} s\n")
    rounds = len(groups[0]["evaluationTimes"]) if groups else 0
    print(f"Rule groups, from /api/v1/rules over {rounds} evaluations (every "
          f"{results['evaluation_interval']} s):\n")
    print("| rule group | evaluationTime median s | max s | slowest rule (median) | its median s |")
    print("|---|---:|---:|---|---:|")
    for g in groups:
        slow = max(g["rules"], key=lambda r: statistics.median(r["evaluationTimes"]))
        print(f"| {g['name']} | {statistics.median(g['evaluationTimes']):.3f} | "
              f"{max(g['evaluationTimes']):.3f} | {slow['name']} | "
              f"{statistics.median(slow['evaluationTimes']):.3f} |")
    bad = [r["name"] for g in groups for r in g["rules"] if r["health"] != "ok"]
    if bad:
        print(f"\nRules not ok: {', '.join(bad)}")


if __name__ == "__main__":
    sys.exit(main())
