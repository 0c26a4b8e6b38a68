"""NFS health for `panicwatch check`: each NFS mount (and --collector.canary.path) probed
with a deadline, its counters read twice a few seconds apart, the kernel log's "server not
responding" and the TCP connection to the server.

``judge`` is pure; ``assess_nfs`` does the reading. Nothing here touches a mount except the
probes, which run in child processes (``probe``), so the command returns on time even when
a mount hangs: within ``timeout`` plus the reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from panicwatch.background.kernel_log import KmsgWatcher
from panicwatch.host import KMSG, Host
from panicwatch.parsers.inet_diag import Endpoint
from panicwatch.parsers.mountinfo import Mount, nfs_server
from panicwatch.parsers.mountstats import NFS_FSTYPES, NfsMount, split_device
from panicwatch.parsers.sunrpc import RpcTask
from panicwatch.reader import HostReader
from panicwatch.readiness.probe import ProbeResult, ProbeRun
from panicwatch.snapshots.mounts import read_mounts
from panicwatch.snapshots.nfs import read_mountstats
from panicwatch.snapshots.rpc import DebugfsUnavailable, read_rpc_clients
from panicwatch.snapshots.tcp import SockDiagError, read_tcp_health
from panicwatch.tracking.rpc_task_ages import TaskTracker

OK, WARNING, STALLED = "ok", "warning", "stalled"
WINDOW = 3.0  # seconds between the two reads of the counters (the timeout, if shorter)
TCP_TIMEOUT = 0.5  # a netlink dump takes milliseconds


@dataclass(frozen=True)
class Counters:
    """One mount's totals from mountstats, summed over its operations."""

    operations: int
    transmissions: int
    major_timeouts: int

    @classmethod
    def of(cls, mount: NfsMount) -> Counters:
        ops = mount.ops.values()
        return cls(sum(o.ops for o in ops), sum(o.transmissions for o in ops),
                   sum(o.major_timeouts for o in ops))

    def __sub__(self, other: Counters) -> Counters:
        return Counters(self.operations - other.operations,
                        self.transmissions - other.transmissions,
                        self.major_timeouts - other.major_timeouts)

    @property
    def retransmissions(self) -> int:
        return max(self.transmissions - self.operations, 0)


@dataclass(frozen=True)
class MountHealth:
    path: str
    fstype: str  # "" when the path is no mount point of its own
    device: str = ""  # NFS: server:/export as mounted
    version: str = ""  # NFS: vers= of the mount options
    address: Endpoint | None = None  # NFS: addr=/port=, the address the kernel connected to
    probe: ProbeResult | None = None  # None: not probed yet
    rpc_in_flight: int | None = None  # tasks to the server now; None: debugfs not readable
    rpc_stuck: int | None = None  # of those, in flight at both reads
    change: Counters | None = None  # over the window; None: not in mountstats (or not NFS)
    not_responding_since: float | None = None  # unix time; the kernel logged no OK since
    tcp_states: dict[str, int] | None = None  # sockets to the server by state; None: not read
    status: str = OK
    findings: tuple[str, ...] = ()

    @property
    def server(self) -> str:
        return split_device(self.device)[0]


@dataclass(frozen=True)
class NfsReport:
    mounts: list[MountHealth]
    timeout: float
    window: float  # seconds between the two reads
    rpc_error: str | None  # why RPC tasks could not be read
    kernel_log_error: str | None  # why "not responding" could not be looked for
    tcp_error: str | None
    problems: list[str] = field(default_factory=list)

    @property
    def stalled(self) -> list[MountHealth]:
        return [m for m in self.mounts if m.status == STALLED]


def judge(m: MountHealth, timeout: float, window: float) -> MountHealth:
    """The mount's status and what led to it. Stalled: the probe got no answer, the kernel
    says the server is not responding, or major timeouts rose (an RPC gave up a whole
    timeo/retrans cycle). A warning: the probe failed, tasks in flight across the window,
    retransmissions, or connections to the server none of which is established."""
    stalled: list[str] = []
    warnings: list[str] = []
    if m.probe is None or m.probe.timed_out:
        stalled.append(f"statvfs got no answer in {timeout:g} s")
    elif m.probe.error:
        warnings.append(f"statvfs failed: {m.probe.error}")
    if m.not_responding_since is not None:
        stalled.append("the kernel logged the server not responding, and no OK since")
    if m.change is not None and m.change.major_timeouts > 0:
        stalled.append(f"{m.change.major_timeouts} major timeout(s) in {window:g} s")
    if m.rpc_stuck:
        warnings.append(f"{m.rpc_stuck} RPC task(s) in flight for over {window:g} s")
    if m.change is not None and m.change.retransmissions > 0:
        warnings.append(f"{m.change.retransmissions} retransmission(s) in {window:g} s")
    if m.tcp_states and "ESTABLISHED" not in m.tcp_states:
        warnings.append("no established TCP connection to the server: "
                        + ", ".join(f"{n} {s}" for s, n in sorted(m.tcp_states.items())))
    status = STALLED if stalled else WARNING if warnings else OK
    return replace(m, status=status, findings=(*stalled, *warnings))


def targets(mounts: Sequence[Mount], extra: Sequence[str]) -> list[MountHealth]:
    """NFS mount points of the mount table, then the extra paths: the canary's targets."""
    by_point = {m.mountpoint: m for m in mounts}
    nfs = [m.mountpoint for m in mounts if m.fstype in NFS_FSTYPES]
    found = []
    for path in dict.fromkeys([*nfs, *extra]):
        mount = by_point.get(path)
        if mount is not None and mount.fstype in NFS_FSTYPES:
            found.append(MountHealth(path, mount.fstype, mount.source,
                                     _option(mount.super_options, "vers"),
                                     nfs_server(mount.super_options)))
        else:
            found.append(MountHealth(path, mount.fstype if mount else ""))
    return found


def _option(options: str, name: str) -> str:
    for option in options.split(","):
        key, _, value = option.partition("=")
        if key == name:
            return value
    return ""


@dataclass
class _Read:
    """One read of the counters that move."""

    counters: dict[str, Counters]  # mount point -> totals
    tasks: list[RpcTask]
    servers: dict[int, str]  # rpc client id -> server address
    unreadable: list[int]
    rpc_error: str | None


def _read_counters(host: Host, pid: str, problems: list[str]) -> _Read:
    reader = HostReader(host)
    stats = read_mountstats(reader, pid)
    counters = {m.mountpoint: Counters.of(m) for m in (stats.mounts if stats else [])}
    try:
        clients = read_rpc_clients(reader)
        read = _Read(counters, clients.tasks, clients.servers, clients.unreadable, None)
    except DebugfsUnavailable as e:
        read = _Read(counters, [], {}, [], f"debugfs sunrpc: {e}")
    problems.extend(p for p in reader.problems if p not in problems)
    return read


class NfsCheck:
    """Started before the readiness checks and finished after them, so the probes' deadline
    runs while everything else is read: the command ends about ``timeout`` after it began."""

    def __init__(self, host: Host, *, pid: str, extra: Sequence[str], timeout: float,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.host, self.pid, self.timeout = host, pid, timeout
        self.clock, self.sleep = clock, sleep
        self.problems: list[str] = []
        self.mounts = targets(HostReader(host).snapshot(read_mounts) or [], extra)
        self.start = clock()
        self.first = _read_counters(host, pid, self.problems)
        self.probes = ProbeRun([host.root(m.path) for m in self.mounts], timeout)

    def cancel(self) -> None:
        """Kill the probes still out (the command is leaving without a report)."""
        self.probes.cancel()

    def finish(self) -> NfsReport:
        if not self.mounts:
            return NfsReport([], self.timeout, 0.0, None, None, None)
        watcher = KmsgWatcher(self.host.root(KMSG), retry_interval=None)
        kernel_log_error = watcher.replay_buffer()
        not_responding = watcher.snapshot().not_responding
        watcher.stop()  # never started: this closes its wake-up pipe
        tcp, tcp_error = _tcp_states({m.address for m in self.mounts if m.address is not None})

        self.sleep(max(0.0, self.start + min(WINDOW, self.timeout) - self.clock()))
        second = _read_counters(self.host, self.pid, self.problems)
        elapsed = self.clock() - self.start
        probes = self.probes.wait()
        tracker = TaskTracker()
        tracker.update(self.start, self.first.tasks)
        aged = tracker.update(self.start + elapsed, second.tasks, retain_clients=second.unreadable)

        judged = []
        for m, probe in zip(self.mounts, probes, strict=True):
            m = replace(m, probe=probe)
            if m.address is not None:
                clients = {c for c, a in second.servers.items() if a == m.address[0]}
                in_flight = [t for t in aged if t.task.client_id in clients]
                before, after = self.first.counters.get(m.path), second.counters.get(m.path)
                m = replace(
                    m,
                    rpc_in_flight=None if second.rpc_error else len(in_flight),
                    rpc_stuck=None if second.rpc_error else sum(
                        1 for t in in_flight if t.age_seconds >= elapsed),
                    change=after - before if before is not None and after is not None else None,
                    not_responding_since=not_responding.get(m.server),
                    tcp_states=None if tcp_error else tcp.get(m.address, {}))
            judged.append(judge(m, self.timeout, round(elapsed)))
        return NfsReport(judged, self.timeout, elapsed, second.rpc_error, kernel_log_error,
                         tcp_error, self.problems)


def _tcp_states(endpoints: set[Endpoint]) -> tuple[dict[Endpoint, dict[str, int]], str | None]:
    if not endpoints:
        return {}, None
    try:
        return {e: h.states for e, h in read_tcp_health(endpoints, timeout=TCP_TIMEOUT).items()}, None
    except SockDiagError as e:
        return {}, f"inet_diag: {e}"


def assess_nfs(host: Host, **kwargs: Any) -> NfsReport:
    """Start and finish at once (NfsCheck's arguments)."""
    return NfsCheck(host, **kwargs).finish()
