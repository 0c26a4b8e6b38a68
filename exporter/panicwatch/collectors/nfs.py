"""nfs: per-mount NFS client statistics from mountstats, and which server each mount uses.

A host may have hundreds of NFS mounts and each prints 60-odd operations, so the per-op
families are the bulk of a scrape: they are rendered straight to text (see exposition.py)
and, by default, limited to the operations that matter (``select_ops``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from panicwatch.collectors.base import PREFIX
from panicwatch.exposition import RenderedFamily, label_sets, render_family
from panicwatch.parsers.mountstats import (
    BYTES_NAMES,
    EVENT_NAMES,
    MS_PER_SECOND,
    NfsMount,
    OpStats,
)
from panicwatch.reader import HostReader
from panicwatch.settings import Settings
from panicwatch.snapshots.nfs import nfs_mount_servers, read_mountstats

# Exported on every mount even while idle, so that dashboards and alerts always find them.
ALWAYS_ON_OPS = frozenset({
    "READ", "WRITE", "GETATTR", "LOOKUP", "ACCESS", "OPEN", "CLOSE", "COMMIT", "SETATTR",
    "READDIR", "READDIRPLUS",
})

# (metric name, help, OpStats field index, is milliseconds); bytes only with op_bytes.
_OP_FAMILIES: tuple[tuple[str, str, int, bool], ...] = (
    ("nfs_operations", "NFS operations (RPC requests) completed, per mount and operation.", 0,
     False),
    ("nfs_operation_transmissions", "RPC transmissions of the operation, retransmissions "
     "included (transmissions - operations = retransmissions).", 1, False),
    ("nfs_operation_major_timeouts", "Times the operation hit a major timeout ('server not "
     "responding').", 2, False),
    ("nfs_operation_sent_bytes", "Bytes sent for the operation, RPC headers included.", 3, False),
    ("nfs_operation_received_bytes", "Bytes received for the operation, RPC headers included.",
     4, False),
    ("nfs_operation_queue_seconds", "Time requests of the operation waited to be sent "
     "(in the RPC layer's queues).", 5, True),
    ("nfs_operation_rtt_seconds", "Time between sending requests of the operation and "
     "receiving the reply (round trips).", 6, True),
    ("nfs_operation_execute_seconds", "Time from the operation's first queueing to its "
     "completion: queue + RTT + client work.", 7, True),
    ("nfs_operation_errors", "Operations that completed with an error status (kernel 5.3+).",
     8, False),
)
_BYTE_FAMILIES = {3, 4}

# Transport counters summed over a mount's connections; (name, help, field, how to combine).
# connect_time is left out: kernels print it in jiffies or in seconds, and the text does not
# say which.
_TRANSPORT_FAMILIES: tuple[tuple[str, str, str, str], ...] = (
    ("nfs_transport_binds_total", "Times the transport bound a source port.", "bind_count",
     "counter"),
    ("nfs_transport_connects_total", "Times the transport connected (reconnects included).",
     "connect_count", "counter"),
    ("nfs_transport_idle_seconds", "Seconds since the transport was last used (least over "
     "the mount's connections).", "idle_time", "min"),
    ("nfs_transport_sends_total", "RPC requests sent.", "sends", "counter"),
    ("nfs_transport_receives_total", "RPC replies received.", "recvs", "counter"),
    ("nfs_transport_bad_xids_total", "Replies that matched no request (late or duplicate "
     "replies: a sign of retransmission).", "bad_xids", "counter"),
    ("nfs_transport_requests_in_flight_sum_total", "Sum of the requests in flight seen at "
     "each send: / sends = average in flight.", "req_u", "counter"),
    ("nfs_transport_backlog_sum_total", "Sum of the backlog queue length seen at each send: "
     "/ sends = average requests waiting for a slot.", "bklog_u", "counter"),
    ("nfs_transport_max_slots", "Most request slots ever in use at once.", "max_slots", "max"),
    ("nfs_transport_sending_queue_sum_total", "Sum of the sending queue length seen at each "
     "send.", "sending_u", "counter"),
    ("nfs_transport_pending_queue_sum_total", "Sum of the pending (awaiting reply) queue "
     "length seen at each send.", "pending_u", "counter"),
)
_COMBINE: dict[str, Callable[[list[int]], int]] = {"counter": sum, "min": min, "max": max}
_BYTE_KINDS = ("normal", "direct", "server")


@dataclass
class _MountHistory:
    """What the collector remembers of one mount between scrapes, for the op selection."""

    age: int
    first_seen: dict[str, int] = field(default_factory=dict)  # op -> its count when first seen
    in_use: set[str] = field(default_factory=set)


class NfsCollector:
    name = "nfs"

    def __init__(self, settings: Settings) -> None:
        self.pid = settings.collector_nfs_mountstats_pid
        self.mount_include = settings.collector_nfs_mount_include
        self.mount_exclude = settings.collector_nfs_mount_exclude
        self.op_include = settings.collector_nfs_op_include
        self.op_exclude = settings.collector_nfs_op_exclude
        self.all_ops = settings.collector_nfs_all_ops
        self.op_bytes = settings.collector_nfs_op_bytes
        self.events = settings.collector_nfs_events
        self.per_transport = settings.collector_nfs_per_transport
        self._lock = threading.Lock()
        self._history: dict[tuple[str, str], _MountHistory] = {}
        self._op_allowed: dict[str, bool] = {}
        self._parse_errors = 0

    def collect(self, reader: HostReader) -> Iterator[Metric]:
        yield self.mount_servers(reader)
        result = read_mountstats(reader, self.pid)
        if result is None:
            return
        mounts = self.mounts_to_export(result.mounts)
        with self._lock:
            self._parse_errors += len(result.skipped)
            parse_errors = self._parse_errors
            selected = [(m, self.select_ops(m)) for m in mounts]
            self._forget_unmounted(mounts)
        yield CounterMetricFamily(PREFIX + "nfs_parse_errors", "NFS mounts left out of a scrape "
                                  "because their mountstats block was malformed or truncated.",
                                  value=parse_errors)
        yield from self.mount_families(mounts)
        yield from self.op_families(selected)
        yield from self.transport_families(mounts)

    def mount_servers(self, reader: HostReader) -> Metric:
        """Which mount points use each server address (the mount table's addr=, port=): joins
        the per-server RPC and socket metrics to the mounts (``* on(server)
        group_left(mountpoint)``). The same mount points as the other families: the include
        and exclude patterns apply, and an over-mounted one is its visible, last mount."""
        info = GaugeMetricFamily(PREFIX + "nfs_mount_server_info",
                                 "An NFS mount and the server address and port it is connected "
                                 "to (from the mount table's addr=, port=).",
                                 labels=["mountpoint", "server", "port"])
        visible = dict(nfs_mount_servers(reader))
        for mountpoint, (address, port) in sorted(visible.items()):
            if self.mount_wanted(mountpoint):
                info.add_metric([mountpoint, address, str(port)], 1.0)
        return info

    # --- which mounts and ops ------------------------------------------------------------

    def mount_wanted(self, mountpoint: str) -> bool:
        return not ((self.mount_include and not self.mount_include.search(mountpoint))
                    or (self.mount_exclude and self.mount_exclude.search(mountpoint)))

    def mounts_to_export(self, mounts: list[NfsMount]) -> list[NfsMount]:
        # An over-mounted mount point appears twice; the last is the visible one, and the
        # mountpoint label must be unique.
        by_mountpoint: dict[str, NfsMount] = {}
        for m in mounts:
            if not self.mount_wanted(m.mountpoint):
                continue
            by_mountpoint.pop(m.mountpoint, None)
            by_mountpoint[m.mountpoint] = m
        return list(by_mountpoint.values())

    def op_allowed(self, op: str) -> bool:
        allowed = self._op_allowed.get(op)
        if allowed is None:
            allowed = not ((self.op_include and not self.op_include.search(op))
                           or (self.op_exclude and self.op_exclude.search(op)))
            self._op_allowed[op] = allowed
        return allowed

    def select_ops(self, mount: NfsMount) -> list[str]:
        """The ops to export for this mount (caller holds the lock).

        By default: the always-on set, plus every op whose count has changed while we were
        watching, kept from then on so its series does not flap. An op counted only at
        mount time (EXCHANGE_ID, CREATE_SESSION, FSINFO, SERVER_CAPS, ...) never changes
        again and is left out.
        """
        if self.all_ops:
            return [op for op in mount.ops if self.op_allowed(op)]
        key = (mount.device, mount.mountpoint)
        history = self._history.get(key)
        ops = mount.ops
        if history is None or mount.age < history.age:  # new, or unmounted and mounted again
            history = self._history[key] = _MountHistory(mount.age)
            history.first_seen = {op: stats[0] for op, stats in ops.items()}
        history.age = mount.age
        first_seen = history.first_seen
        if len(first_seen) != len(ops):  # ops this kernel added since (never on a live mount)
            for op, stats in ops.items():
                first_seen.setdefault(op, stats[0])
        history.in_use.update(
            [op for op, stats in ops.items() if stats[0] != first_seen[op]])
        keep = ALWAYS_ON_OPS | history.in_use
        return [op for op in ops if op in keep and self.op_allowed(op)]

    def _forget_unmounted(self, mounts: list[NfsMount]) -> None:
        present = {(m.device, m.mountpoint) for m in mounts}
        for key in self._history.keys() - present:
            del self._history[key]

    # --- families ---------------------------------------------------------------------------

    def mount_families(self, mounts: list[NfsMount]) -> Iterator[Metric]:
        mountpoints = label_sets(("mountpoint",), [(m.mountpoint,) for m in mounts])
        info = label_sets(("mountpoint", "export", "server", "version", "proto"),
                          [(m.mountpoint, m.export, m.server, m.version or "", m.proto or "")
                           for m in mounts])
        yield family("nfs_mount_info", "An NFS mount (always 1).", "gauge", info, [1] * len(info))
        yield family("nfs_mount_age_seconds", "Seconds since the mount.", "gauge", mountpoints,
                     [m.age for m in mounts])
        by_kind = label_sets(("mountpoint", "kind"),
                             [(m.mountpoint, kind) for m in mounts for kind in _BYTE_KINDS])
        counts = [dict(zip(BYTES_NAMES, m.bytes, strict=True)) for m in mounts]
        yield family("nfs_read_bytes", "Bytes read: by applications through the page cache "
                     "(normal), with O_DIRECT (direct), and from the server (server).", "counter",
                     by_kind, [b[kind + "readbytes"] for b in counts for kind in _BYTE_KINDS])
        yield family("nfs_write_bytes", "Bytes written: by applications through the page "
                     "cache (normal), with O_DIRECT (direct), and to the server (server).",
                     "counter", by_kind,
                     [b[kind + "writebytes"] for b in counts for kind in _BYTE_KINDS])
        by_direction = label_sets(("mountpoint", "direction"),
                                  [(m.mountpoint, d) for m in mounts for d in ("read", "write")])
        yield family("nfs_pages", "Pages read and written.", "counter", by_direction,
                     [b[d + "pages"] for b in counts for d in ("read", "write")])
        if self.events:
            rows = [(m, name, count) for m in mounts
                    for name, count in zip(EVENT_NAMES, m.events, strict=False)]
            yield family("nfs_events", "NFS client events (VFS calls, cache invalidations, "
                         "short reads/writes, delays).", "counter",
                         label_sets(("mountpoint", "event"), [(m.mountpoint, n) for m, n, _ in rows]),
                         [count for _, _, count in rows])

    def op_families(self, selected: list[tuple[NfsMount, list[str]]]) -> Iterator[Metric]:
        # Label sets once per (mount, op), shared by every family.
        series = label_sets(("mountpoint", "op"),
                            [(mount.mountpoint, op) for mount, ops in selected for op in ops])
        stats: list[OpStats] = [mount.ops[op] for mount, ops in selected for op in ops]
        for name, doc, index, milliseconds in _OP_FAMILIES:
            if index in _BYTE_FAMILIES and not self.op_bytes:
                continue
            if milliseconds:
                values: list[int | float | None] = [s[index] / MS_PER_SECOND for s in stats]
            else:
                values = [s[index] for s in stats]
            yield family(name, doc, "counter", series, values)

    def transport_families(self, mounts: list[NfsMount]) -> Iterator[Metric]:
        if self.per_transport:
            groups = [((m.mountpoint, str(i)), [x]) for m in mounts
                      for i, x in enumerate(m.transports)]
            series = label_sets(("mountpoint", "transport"), [labels for labels, _ in groups])
        else:
            groups = [((m.mountpoint,), list(m.transports)) for m in mounts]
            series = label_sets(("mountpoint",), [labels for labels, _ in groups])
        for name, doc, attr, how in _TRANSPORT_FAMILIES:
            combine = _COMBINE[how]
            values = []
            for _, xprts in groups:
                present = [v for x in xprts if (v := getattr(x, attr)) is not None]
                values.append(combine(present) if present else None)
            yield family(name, doc, "gauge" if how != "counter" else "counter", series, values)


def family(name: str, doc: str, typ: str, series: list[str],
           values: list[int | float | None]) -> RenderedFamily:
    """A family of the nfs bulk (``name`` without the prefix; counters may end in _total)."""
    return render_family(PREFIX + name.removesuffix("_total"), doc, typ, series, values)
