"""netlink sock_diag (inet_diag) for TCP sockets to given endpoints: the request's bytecode
filter, the framing of the kernel's answer, ``struct tcp_info``, and the per-server summary.

Pure: snapshots/tcp.py does the netlink conversation. What the kernel fills in and why the
summary is built this way: docs/kernel-interfaces.md, "nfs_sockets".
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

Endpoint = tuple[str, int]

# include/net/tcp_states.h; inet_diag reports NEW_SYN_RECV request sockets as SYN_RECV.
TCP_STATES = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
    6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
    12: "NEW_SYN_RECV", 13: "BOUND_INACTIVE",
}
_LISTEN = 10
# Every state a socket with a destination can be in (bits 1..11) except LISTEN: leaving LISTEN
# out also skips the kernel's walk of the listening hash.
STATES_MASK = ((1 << 12) - 2) & ~(1 << _LISTEN)
# Conditions per request: each is at most 32 bytes of bytecode, so 512 keep the filter at 16 KiB
# (far below the 64 KiB netlink attribute limit); more endpoints take more requests.
ENDPOINTS_PER_REQUEST = 512

# uapi/linux/netlink.h, inet_diag.h
NLMSG_ERROR = 2
NLMSG_DONE = 3
INET_DIAG_BC_JMP = 1
INET_DIAG_BC_D_COND = 8
BC_OP = struct.Struct("=BBH")  # struct inet_diag_bc_op: code, yes (u8), no (u16)
HOSTCOND = struct.Struct("=BBxxi")  # struct inet_diag_hostcond: family, prefix_len, port; addr
_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
# struct tcp_info up to tcpi_total_retrans: 8 u8 then 24 u32 = 104 bytes, filled by every
# kernel since 2.6 (later fields are appended, never moved).
_TCP_INFO = struct.Struct("=8B24I")


@lru_cache(maxsize=4096)
def normalize_address(text: str) -> str:
    """An IP address in canonical form, IPv4-mapped IPv6 as IPv4; brackets and an IPv6 zone
    (``fe80::1%eth0``) dropped. Names are not resolved (no DNS on the scrape path): anything
    but an IP literal is a ValueError."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    address = ipaddress.ip_address(text.partition("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def normalize_endpoint(endpoint: tuple[str, int | str]) -> Endpoint:
    """``(address, port)``, the address by ``normalize_address``; a port outside 1..65535 is a
    ValueError."""
    host, port = endpoint
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(f"port out of range: {port!r}")
    return (normalize_address(str(host)), number)


# --- the request's filter ----------------------------------------------------------------------


def bytecode(endpoints: Iterable[Endpoint]) -> bytes:
    """``dst A:p or dst B:q or ...`` as inet_diag bytecode, laid out as ``ss`` does.

    ``C1 J C2 J ... Cn``: a condition that holds goes on (yes = its size) to the jump after it,
    which always jumps to the end (accept); one that fails skips that jump (no = size + 4) to the
    next condition; the last one failing lands 4 bytes past the end (reject). Every operation
    lies on the "yes" path, which is what ``inet_diag_bc_audit`` / ``valid_cc`` require.
    """
    ops = []
    for address, port in endpoints:
        ip = ipaddress.ip_address(address)
        family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        size = BC_OP.size + HOSTCOND.size + len(ip.packed)
        ops.append(BC_OP.pack(INET_DIAG_BC_D_COND, size, size + 4)
                   + HOSTCOND.pack(family, 8 * len(ip.packed), port) + ip.packed)
    # Built back to front: each jump's "no" is the length of everything after it, plus itself.
    parts: list[bytes] = []
    after = 0
    for op in reversed(ops):
        if parts:
            parts.append(BC_OP.pack(INET_DIAG_BC_JMP, BC_OP.size, BC_OP.size + after))
            after += BC_OP.size
        parts.append(op)
        after += len(op)
    return b"".join(reversed(parts))


def requests(endpoints: list[Endpoint]) -> list[tuple[int, bytes]]:
    """(family, bytecode) per dump: AF_INET for the IPv4 endpoints; AF_INET6 for all of them,
    since an IPv4 condition also matches a dual-stack socket talking to ``::ffff:a.b.c.d``."""
    v4 = [e for e in endpoints if ipaddress.ip_address(e[0]).version == 4]
    plan = []
    for family, group in ((socket.AF_INET, v4), (socket.AF_INET6, endpoints)):
        for start in range(0, len(group), ENDPOINTS_PER_REQUEST):
            plan.append((family, bytecode(group[start:start + ENDPOINTS_PER_REQUEST])))
    return plan


# --- the answer ---------------------------------------------------------------------------------


class NetlinkMessage(NamedTuple):
    kind: int  # nlmsg_type
    seq: int
    offset: int  # of the header in the buffer; the message's bytes are [offset, offset + length)
    length: int
    code: int  # NLMSG_DONE / NLMSG_ERROR: 0 or minus an errno; else 0


class TruncatedMessage(ValueError):
    """The buffer ends inside a message, or a header gives an impossible length."""


def messages(data: bytes) -> Iterator[NetlinkMessage]:
    """The netlink messages in one received buffer, in order."""
    offset = 0
    size = len(data)
    while offset + _NLMSGHDR.size <= size:
        length, kind, _flags, seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > size:
            raise TruncatedMessage(f"netlink message of {length} bytes at {offset} in {size}")
        code = 0
        # NLMSG_DONE and NLMSG_ERROR carry an int: 0, or minus the errno of a failed dump.
        if kind in (NLMSG_DONE, NLMSG_ERROR) and length >= _NLMSGHDR.size + 4:
            (code,) = struct.unpack_from("=i", data, offset + _NLMSGHDR.size)
        yield NetlinkMessage(kind, seq, offset, length, code)
        offset += (length + 3) & ~3


class TcpInfo(NamedTuple):
    """The ``struct tcp_info`` fields panicwatch exports."""

    unacked: int  # tcpi_unacked: segments sent, not yet acknowledged
    last_data_recv_ms: int  # tcpi_last_data_recv
    rtt_us: int  # tcpi_rtt: smoothed
    total_retrans: int  # tcpi_total_retrans: over the socket's life


def decode_tcp_info(raw: bytes) -> TcpInfo | None:
    """The INET_DIAG_INFO attribute; None when shorter than every kernel writes it."""
    if len(raw) < _TCP_INFO.size:
        return None
    f = _TCP_INFO.unpack_from(raw)
    # f[8..]: rto, ato, snd_mss, rcv_mss, unacked, sacked, lost, retrans, fackets,
    #   last_data_sent, last_ack_sent, last_data_recv, last_ack_recv, pmtu, rcv_ssthresh,
    #   rtt, rttvar, snd_ssthresh, snd_cwnd, advmss, reordering, rcv_rtt, rcv_space, total_retrans
    return TcpInfo(unacked=f[12], last_data_recv_ms=f[19], rtt_us=f[23], total_retrans=f[31])


@dataclass(frozen=True, slots=True)
class TcpSocket:
    """One socket whose destination is a requested endpoint."""

    family: int  # the socket's own: AF_INET, or AF_INET6 (also for IPv4-mapped peers)
    local: Endpoint
    remote: Endpoint  # normalised (IPv4-mapped shown as IPv4)
    state: str  # a TCP_STATES name
    send_queue_bytes: int  # idiag_wqueue: queued, not yet acknowledged
    info: TcpInfo | None  # None for TIME_WAIT / SYN_RECV mini sockets


@dataclass(frozen=True, slots=True)
class ServerTcpHealth:
    """All TCP sockets to one server endpoint, as ``nfs_socket_*`` exports them."""

    server: Endpoint
    states: dict[str, int]  # socket count by state; only states present
    send_queue_bytes: int  # sum
    unacked_segments: int  # sum
    retransmits_total: int  # sum over the sockets open now (drops when one is replaced)
    rtt_seconds: float | None  # the slowest ESTABLISHED socket's
    last_data_recv_seconds: float | None  # the freshest ESTABLISHED socket's


def aggregate(server: Endpoint, sockets: Iterable[TcpSocket]) -> ServerTcpHealth:
    """Counts and queues summed; RTT the largest and "time since the last receive" the
    smallest over ESTABLISHED sockets (before the handshake completes the kernel's stamps
    are 0 and the times meaningless), so it grows only when no connection hears anything."""
    states: dict[str, int] = {}
    infos, live = [], []
    send_queue = 0
    for s in sockets:
        states[s.state] = states.get(s.state, 0) + 1
        send_queue += s.send_queue_bytes
        if s.info is not None:
            infos.append(s.info)
            if s.state == "ESTABLISHED":
                live.append(s.info)
    return ServerTcpHealth(
        server=server,
        states=dict(sorted(states.items())),
        send_queue_bytes=send_queue,
        unacked_segments=sum(i.unacked for i in infos),
        retransmits_total=sum(i.total_retrans for i in infos),
        rtt_seconds=max(i.rtt_us for i in live) / 1e6 if live else None,
        last_data_recv_seconds=min(i.last_data_recv_ms for i in live) / 1000 if live else None,
    )
