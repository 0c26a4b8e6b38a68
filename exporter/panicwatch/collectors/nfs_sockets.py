"""nfs_sockets: the health of the TCP connections to each NFS server, from netlink inet_diag.

The servers come from the mount table (``addr=``/``port=`` of nfs and nfs4 mounts; port
2049 when not given). RPC transport sockets are kernel sockets with no owning process, so
they are found by destination, never by pid. Reading them is a netlink dump: it never
touches a mount.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily, Metric

from panicwatch.collectors.base import PREFIX
from panicwatch.reader import HostReader
from panicwatch.snapshots.nfs import nfs_mount_servers
from panicwatch.snapshots.tcp import SockDiagError, read_tcp_health


class NfsSocketsCollector:
    name = "nfs_sockets"

    def __init__(self, netns: Path | None) -> None:
        self.netns = netns

    def collect(self, reader: HostReader) -> Iterator[Metric]:
        endpoints = {server for _, server in nfs_mount_servers(reader)}
        if not endpoints:
            return
        try:
            health = read_tcp_health(endpoints, self.netns)
        except SockDiagError as e:
            reader.problem(f"inet_diag: {e}")
            return
        labels = ["server", "port"]

        def family(name: str, doc: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(PREFIX + name, doc, labels=labels)

        send_queue = family("nfs_socket_send_queue_bytes",
                            "Bytes written to the server's sockets and not yet acknowledged.")
        unacked = family("nfs_socket_unacked_segments", "Segments sent and not yet acknowledged.")
        retransmits = family("nfs_socket_retransmits",
                             "Retransmitted segments over the life of the sockets open now (drops "
                             "when a socket is replaced: a gauge, not a counter).")
        rtt = family("nfs_socket_rtt_seconds",
                     "Smoothed round-trip time (the largest over established sockets).")
        last_receive = family("nfs_socket_last_receive_age_seconds",
                              "Seconds since any established socket to the server received data: "
                              "grows while the server does not answer.")
        states = GaugeMetricFamily(PREFIX + "nfs_sockets", "Sockets to the server, by TCP state.",
                                   labels=[*labels, "state"])
        for (address, port), h in sorted(health.items()):
            key = [address, str(port)]
            send_queue.add_metric(key, h.send_queue_bytes)
            unacked.add_metric(key, h.unacked_segments)
            retransmits.add_metric(key, h.retransmits_total)
            if h.rtt_seconds is not None:
                rtt.add_metric(key, h.rtt_seconds)
            if h.last_data_recv_seconds is not None:
                last_receive.add_metric(key, h.last_data_recv_seconds)
            for state, count in sorted(h.states.items()):
                states.add_metric([*key, state], count)
        yield from (send_queue, unacked, retransmits, rtt, last_receive, states)
