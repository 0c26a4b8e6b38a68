"""The canary: one long-lived thread per NFS mount (and extra path) that keeps asking the
server a simple question (statvfs, never answered from the client's cache), so a mount
sliding toward a stall shows up before anything locks up.

All targets probe in shared rounds (jittered, at a random phase per host). A probe stuck in
the kernel keeps its thread, never replaced: a hung mount costs one thread however long it
hangs, and scrapes only read each target's last state. Details: docs/kernel-interfaces.md.
"""

from __future__ import annotations

import bisect
import errno
import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from panicwatch.host import Host
from panicwatch.parsers.mountstats import NFS_FSTYPES
from panicwatch.reader import HostReader
from panicwatch.settings import Settings
from panicwatch.snapshots.mounts import read_mounts

log = logging.getLogger("panicwatch.canary")

PROBE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                 30.0, 60.0)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Histogram:
    """Cumulative-bucket histogram state (the caller holds the lock)."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)  # the last is +Inf

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def snapshot(self) -> tuple[list[tuple[str, float]], float]:
        """Buckets as prometheus_client's HistogramMetricFamily takes them, and the sum."""
        cumulative, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            cumulative.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return cumulative, self.total


@dataclass(frozen=True)
class TargetState:
    """What a scrape sees of one target."""

    path: str
    buckets: list[tuple[str, float]]
    duration_sum: float
    timeouts: int
    errors: dict[str, int]
    inflight_seconds: float
    last_success: float | None


class Rounds:
    """A counter the targets wait on: each increment starts a probe round."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._round = 0

    @property
    def current(self) -> int:
        with self._changed:
            return self._round

    def advance(self) -> None:
        with self._changed:
            self._round += 1
            self._changed.notify_all()

    def wake_all(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def wait_after(self, seen: int, still_wanted: threading.Event) -> int:
        with self._changed:
            self._changed.wait_for(lambda: self._round != seen or not still_wanted.is_set())
            return self._round


class Target:
    """One probed path and the thread that probes it."""

    def __init__(self, path: str, local: Path, stat_file: str | None, rounds: Rounds,
                 timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path  # host-absolute: the label
        self.local = local  # where we see it (under --path.rootfs)
        self.stat_file = stat_file
        self.rounds = rounds
        self.timeout = timeout
        self.clock = clock
        self.wanted = threading.Event()  # cleared when the target should stop
        self.wanted.set()
        self._lock = threading.Lock()
        self._histogram = Histogram(PROBE_BUCKETS)
        self._timeouts = 0
        self._errors: Counter[str] = Counter()
        self._inflight_since: float | None = None
        self._timeout_counted = False
        self._last_success: float | None = None
        self.thread = threading.Thread(target=self._run, name=f"canary {path}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.wanted.clear()
        self.rounds.wake_all()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def _run(self) -> None:
        seen = self.rounds.current  # a new target probes at once, then with every round
        while self.wanted.is_set():
            self.probe()
            seen = self.rounds.wait_after(seen, self.wanted)

    def probe(self) -> None:
        start = self.clock()
        with self._lock:
            self._inflight_since, self._timeout_counted = start, False
        error = None
        try:
            os.statvfs(self.local)
            if self.stat_file:
                os.stat(self.local / self.stat_file)
        except OSError as e:
            error = _errno_name(e)
        took = self.clock() - start
        with self._lock:
            self._inflight_since = None
            self._histogram.observe(took)
            if took > self.timeout and not self._timeout_counted:
                self._timeouts += 1
            if error:
                self._errors[error] += 1
            else:
                self._last_success = time.time()

    def state(self) -> TargetState:
        now = self.clock()
        with self._lock:
            inflight = 0.0
            if self._inflight_since is not None:
                inflight = now - self._inflight_since
                if inflight > self.timeout and not self._timeout_counted:
                    self._timeouts += 1  # counted once, while it is still stuck
                    self._timeout_counted = True
            buckets, total = self._histogram.snapshot()
            return TargetState(self.path, buckets, total, self._timeouts, dict(self._errors),
                               inflight, self._last_success)


def _errno_name(error: OSError) -> str:
    return errno.errorcode.get(error.errno or 0, "other")


@dataclass(frozen=True)
class CanaryState:
    targets: list[TargetState]
    over_limit: int
    lag_buckets: list[tuple[str, float]] | None
    lag_sum: float


class SchedulerLagTicker:
    """Sleeps a fixed period and records how late it woke: CPU starvation shows up here
    before a soft lockup does. (The interpreter adds up to its 5 ms switch interval.)"""

    def __init__(self, period: float) -> None:
        self.period = period
        self._lock = threading.Lock()
        self._histogram = Histogram(LAG_BUCKETS)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="canary scheduler lag", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while True:
            start = time.monotonic()
            if self._stop.wait(self.period):
                return
            lag = max(0.0, time.monotonic() - start - self.period)
            with self._lock:
                self._histogram.observe(lag)

    def snapshot(self) -> tuple[list[tuple[str, float]], float]:
        with self._lock:
            return self._histogram.snapshot()


class Canary:
    """Finds the targets, keeps one thread per target, and hands scrapes a snapshot."""

    def __init__(self, settings: Settings, host: Host) -> None:
        self.host = host
        self.settings = settings
        self.extra = [str(p) for p in settings.collector_canary_path]
        self._lock = threading.Lock()
        self._targets: dict[str, Target] = {}
        self._over_limit = 0
        self._last_warning: tuple[int, int] | None = None
        self._stop = threading.Event()
        self.rounds = Rounds()
        self._round_thread = threading.Thread(target=self._rounds_forever, name="canary rounds",
                                              daemon=True)
        self.ticker = (SchedulerLagTicker(settings.collector_canary_scheduler_tick)
                       if settings.collector_canary_scheduler_tick else None)
        self._discovery = threading.Thread(target=self._discover_forever,
                                           name="canary discovery", daemon=True)

    def start(self) -> None:
        self.discover()
        self._discovery.start()
        self._round_thread.start()
        if self.ticker:
            self.ticker.start()

    def stop(self) -> None:
        self._stop.set()
        if self.ticker:
            self.ticker.stop()
        with self._lock:
            for target in self._targets.values():
                target.stop()

    def _rounds_forever(self) -> None:
        interval = self.settings.collector_canary_interval
        while not self._stop.wait(interval * random.uniform(0.9, 1.1)):
            self.rounds.advance()

    def _discover_forever(self) -> None:
        while not self._stop.wait(self.settings.collector_canary_discovery_interval):
            try:
                self.discover()
            except Exception:  # discovery must outlive a bad mount table
                log.exception("canary discovery failed")

    def wanted_paths(self) -> list[str]:
        """NFS mount points (from the mount table, which never blocks), then extra paths."""
        mounts = read_mounts(HostReader(self.host)) or []
        nfs = [m.mountpoint for m in mounts if m.fstype in NFS_FSTYPES]
        return list(dict.fromkeys([*nfs, *self.extra]))

    def discover(self) -> None:
        wanted = self.wanted_paths()
        limit = self.settings.collector_canary_max_targets
        kept, over = wanted[:limit], len(wanted) - limit
        with self._lock:
            self._over_limit = max(over, 0)
            for path in kept:
                target = self._targets.get(path)
                if target is not None and target.alive:
                    target.wanted.set()  # back again: the same thread, never a second one
                    continue
                target = Target(path, self.host.root(path), self.settings.collector_canary_stat_file,
                                self.rounds, self.settings.collector_canary_timeout)
                self._targets[path] = target
                target.start()
            for path, target in list(self._targets.items()):
                if path not in kept:
                    target.stop()  # it leaves once its probe returns
                if not target.alive and not target.wanted.is_set():
                    del self._targets[path]
            warning = (len(wanted), limit)
        if over > 0 and warning != self._last_warning:
            log.warning("canary: %d targets, probing the first %d (--collector.canary.max-targets)",
                        len(wanted), limit)
        self._last_warning = warning if over > 0 else None

    def snapshot(self) -> CanaryState:
        with self._lock:
            targets = list(self._targets.values())
            over = self._over_limit
        states = [t.state() for t in targets if t.alive or t.wanted.is_set()]
        lag, lag_sum = self.ticker.snapshot() if self.ticker else (None, 0.0)
        return CanaryState(states, over, lag, lag_sum)
