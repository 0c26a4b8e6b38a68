"""TCP connections to NFS servers, read from the kernel over netlink sock_diag (inet_diag).

An NFS client talks to each server over kernel sockets (net/sunrpc/xprtsock.c): they have
no owning process (uid 0; in a dump they are not tied to any pid), so they are found by their
**destination** address and port, never by pid. ``read_tcp_health(endpoints)`` asks the kernel
for every TCP socket whose destination is one of ``endpoints`` and aggregates them per server
endpoint. It never stats or opens anything on a mount, so a hung server cannot block it.

How the sockets are read
------------------------
One ``SOCK_DIAG_BY_FAMILY`` dump request (``struct inet_diag_req_v2``) per address family,
``IPPROTO_TCP``, every state except LISTEN, the ``INET_DIAG_INFO`` extension (``struct
tcp_info``), and an ``INET_DIAG_REQ_BYTECODE`` filter built here: one
``INET_DIAG_BC_D_COND`` host condition (destination address/prefix and port) per endpoint,
OR-ed with ``INET_DIAG_BC_JMP`` the way ``ss`` compiles ``dst A or dst B``. The kernel runs the
filter on every socket while it walks its hash tables (``inet_diag_bc_run``, called from the TCP
dump loop: ``tcp_diag_dump`` in net/ipv4/tcp_diag.c since 6.15, ``inet_diag_dump_icsk`` in
net/ipv4/inet_diag.c before), so only matching sockets cross into Python. The walk itself is not
free: the established hash is shared by all namespaces (262,144 buckets on the test machine),
so each of the two dumps costs ~3 ms on an idle host, and a whole read ~15 ms with 20,000
unrelated sockets present (tests/test_tcp_sockets.py measures it). Decoding a matching socket
costs ~0.1 ms (pyroute2), hence ``max_sockets``.

An AF_INET condition also matches an AF_INET6 socket whose destination is the IPv4-mapped
address (``inet_diag_bc_run``: ``entry->family == AF_INET6 && cond->family == AF_INET``), so
the AF_INET6 dump carries the IPv4 conditions too, and a dual-stack socket talking to
``::ffff:10.0.0.1`` is reported under ``10.0.0.1``. Every socket the kernel returns is checked
again here against the exact endpoint (old kernels compare the first 32 bits of an IPv6 address
against an IPv4 condition).

The wire format comes from pyroute2 (``pyroute2.netlink.diag.inet_diag_req`` and
``inet_diag_msg``) but the I/O is a plain ``AF_NETLINK`` socket with a deadline, because
pyroute2 0.9's ``DiagSocket``:

- waits on an asyncio queue with no timeout (a reply that never comes hangs the caller);
- drops errors: a request the kernel rejects (``NLMSG_ERROR``, e.g. EINVAL for a bad
  filter) comes back as one message with ``header['error'] = None``, and a protocol without
  a diag handler comes back as an empty tuple;
- has no way to attach the bytecode filter and no netns parameter (``__init__(fileno=None)``
  ignores its argument);
- decodes ``tcp_info`` with ``struct.unpack_from`` over the whole receive buffer for its
  232-byte layout, ignoring the attribute's length: on a kernel with a shorter ``tcp_info``
  it reads the next attribute's bytes (or raises at the end of the buffer). Here
  ``INET_DIAG_INFO`` is taken as raw bytes and only the first 104 bytes (the layout every
  kernel since 2.6 fills) are decoded.

What the kernel reports (verified in the sources)
-------------------------------------------------
``tcp_diag_get_info`` (net/ipv4/tcp_diag.c), for a socket that is not listening:

- ``idiag_wqueue = write_seq - snd_una``: bytes the application queued that the peer has not
  acknowledged yet, sent or not (``tcpi_notsent_bytes`` is the not-yet-sent part). For a
  listener it would be the accept backlog limit; listeners are not requested.
- ``idiag_rqueue = rcv_nxt - copied_seq``: received bytes nobody has read yet.

In SYN_SENT ``write_seq`` already counts the SYN, so such a socket reports a send queue of 1
(and ``tcpi_unacked`` 1) until the handshake completes.

TIME_WAIT and SYN_RECV entries are mini sockets (``tcp_twsk_diag_fill``, ``tcp_req_diag_fill``):
queues 0, no ``tcp_info``; a TIME_WAIT entry's state is its ``tw_substate`` (TIME_WAIT or
FIN_WAIT2).

``tcp_get_info`` (net/ipv4/tcp.c), units as the kernel gives them:

- ``tcpi_unacked = packets_out``: segments sent and not yet acknowledged;
- ``tcpi_retrans = retrans_out``: retransmitted segments still unacknowledged;
- ``tcpi_total_retrans = total_retrans``: segments retransmitted over the socket's life;
- ``tcpi_retransmits = icsk_retransmits``: retransmission timeouts in a row without an ACK
  (reset when an ACK moves ``snd_una``); for SYN_SENT the SYN retries;
- ``tcpi_rtt = srtt_us >> 3`` and ``tcpi_rttvar = mdev_us >> 2``: microseconds;
- ``tcpi_last_data_recv = now - icsk_ack.lrcvtime``, ``tcpi_last_ack_recv = now - rcv_tstamp``,
  ``tcpi_last_data_sent = now - lsndtime``: milliseconds (jiffies resolution). ``lrcvtime`` is
  set when the connection is established (``tcp_finish_connect``) and on every data segment
  received, so for a client that only writes it is the connection's age. Before the connection
  is established these stamps are 0 and the values meaningless, which is why the time and RTT
  aggregates use ESTABLISHED sockets only.

Aggregation choices (``ServerTcpHealth``)
-----------------------------------------
Counts, queues and retransmission counters are **summed** over all sockets to the endpoint
(nconnect=N gives N sockets). RTT is the **largest** smoothed RTT among ESTABLISHED sockets
(the slowest connection). The three "time since" values are the **smallest** among ESTABLISHED
sockets: the freshest connection decides, so the value only grows when *no* connection to the
server receives anything; ``None`` when there is no ESTABLISHED socket. ``retransmits_total``
sums counters of the sockets present now: when a socket is replaced it drops, so export it as a
gauge (or let ``rate()`` treat it as a reset).

Errors raise ``SockDiagError`` (an OSError: errno, strerror, and the netns path as filename):
netlink sock_diag unavailable, the kernel refusing the request, a netns that cannot be
entered, no complete answer within ``timeout`` seconds, or more than ``max_sockets`` matching
sockets.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import os
import socket
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

Endpoint = tuple[str, int]

DEFAULT_TIMEOUT = 5.0
# A client has a handful of sockets per server (nconnect <= 16, plus TIME_WAIT leftovers);
# beyond this the filter matches something that is not an NFS client, so stop. Decoding costs
# ~0.1 ms a socket (pyroute2), so the cap also keeps the worst case near 2 s.
DEFAULT_MAX_SOCKETS = 16384
# Conditions per request: each is at most 32 bytes of bytecode, so 512 keep the filter at 16 KiB
# (far below the 64 KiB netlink attribute limit); more endpoints take more requests.
ENDPOINTS_PER_REQUEST = 512

# include/net/tcp_states.h; inet_diag reports NEW_SYN_RECV request sockets as SYN_RECV.
TCP_STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "NEW_SYN_RECV",
    13: "BOUND_INACTIVE",
}
_LISTEN = 10
# Every state a socket with a destination can be in (bits 1..11) except LISTEN: leaving LISTEN
# out also skips the kernel's walk of the listening hash.
_STATES_MASK = ((1 << 12) - 2) & ~(1 << _LISTEN)

# uapi/linux/netlink.h, sock_diag.h, inet_diag.h
_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_NLM_F_REQUEST = 0x1
_NLM_F_DUMP = 0x300
_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_INET_DIAG_INFO = 2
_INET_DIAG_BC_JMP = 1
_INET_DIAG_BC_D_COND = 8
_CLONE_NEWNET = 0x40000000

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_BC_OP = struct.Struct("=BBH")  # struct inet_diag_bc_op: code, yes (u8), no (u16)
_HOSTCOND = struct.Struct("=BBxxi")  # struct inet_diag_hostcond: family, prefix_len, port; addr
# struct tcp_info up to tcpi_total_retrans: 8 u8 then 24 u32 = 104 bytes, filled by every
# kernel since 2.6 (later fields are appended, never moved).
_TCP_INFO = struct.Struct("=8B24I")
_RECV_BUFFER = 65536  # the kernel builds dump chunks of at most ~32 KiB


class SockDiagError(OSError):
    """Reading sockets over netlink sock_diag failed; errno and strerror say why."""


@dataclass(frozen=True, slots=True)
class TcpInfo:
    """The ``struct tcp_info`` fields used here (see the module docstring for their meaning)."""

    retransmits: int  # tcpi_retransmits: RTOs in a row without an ACK
    backoff: int  # tcpi_backoff: RTO exponential backoff
    rto_us: int
    unacked: int  # segments
    lost: int  # segments
    retrans: int  # segments retransmitted, not yet acknowledged
    last_data_sent_ms: int
    last_data_recv_ms: int
    last_ack_recv_ms: int
    rtt_us: int
    rttvar_us: int
    snd_cwnd: int  # segments
    total_retrans: int  # segments, over the socket's life


@dataclass(frozen=True, slots=True)
class TcpSocket:
    """One socket whose destination is a requested endpoint."""

    family: int  # the socket's own family: AF_INET, or AF_INET6 (also for IPv4-mapped peers)
    local: Endpoint
    remote: Endpoint  # normalised (IPv4-mapped shown as IPv4)
    state: str  # TCP_STATES name
    send_queue_bytes: int  # idiag_wqueue: queued, not yet acknowledged
    recv_queue_bytes: int  # idiag_rqueue: received, not yet read
    uid: int
    inode: int  # 0 for kernel (RPC transport) sockets and mini sockets
    info: TcpInfo | None  # None for TIME_WAIT / SYN_RECV mini sockets


@dataclass(frozen=True, slots=True)
class ServerTcpHealth:
    """All TCP sockets whose destination is ``server``; zeros and Nones when there are none."""

    server: Endpoint
    states: dict[str, int]  # socket count by TCP_STATES name; only states present
    send_queue_bytes: int  # sum of idiag_wqueue
    recv_queue_bytes: int  # sum of idiag_rqueue
    unacked_segments: int  # sum of tcpi_unacked
    retrans_segments: int  # sum of tcpi_retrans (retransmitted, still unacknowledged)
    retransmits_total: int  # sum of tcpi_total_retrans of the sockets present now
    consecutive_timeouts: int  # max of tcpi_retransmits
    rtt_seconds: float | None  # max tcpi_rtt over ESTABLISHED sockets
    rtt_var_seconds: float | None  # tcpi_rttvar of that same socket
    last_data_recv_seconds: float | None  # min tcpi_last_data_recv over ESTABLISHED sockets
    last_ack_recv_seconds: float | None  # min tcpi_last_ack_recv over ESTABLISHED sockets
    last_data_sent_seconds: float | None  # min tcpi_last_data_sent over ESTABLISHED sockets
    sockets: tuple[TcpSocket, ...]

    @property
    def socket_count(self) -> int:
        return len(self.sockets)

    @property
    def established(self) -> int:
        return self.states.get("ESTABLISHED", 0)


def normalize_endpoint(endpoint: tuple[str, int]) -> Endpoint:
    """``(address, port)`` with the address in canonical form, IPv4-mapped IPv6 as IPv4.

    Brackets and an IPv6 zone (``fe80::1%eth0``) are dropped. Names are not resolved (no DNS on
    the scrape path): anything but an IP literal or a port outside 1..65535 is a ValueError.
    """
    host, port = endpoint
    text = str(host).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    address = ipaddress.ip_address(text.partition("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(f"port out of range: {port!r}")
    return (str(address), number)


def read_tcp_health(
    endpoints: Iterable[tuple[str, int]],
    netns: str | os.PathLike[str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_sockets: int = DEFAULT_MAX_SOCKETS,
) -> dict[Endpoint, ServerTcpHealth]:
    """Per endpoint (normalised with ``normalize_endpoint``), the TCP sockets going there.

    Every requested endpoint is in the result, with zero sockets if none exist. ``netns`` is the
    network namespace to read (a path such as ``/proc/PID/ns/net`` or ``/run/netns/NAME``, or a
    bare name for ``/run/netns/NAME``); None reads the caller's. The whole read, including all
    requests, finishes within ``timeout`` seconds or raises ``SockDiagError(ETIMEDOUT)``.
    """
    wanted = sorted({normalize_endpoint(e) for e in endpoints})
    if not wanted:
        return {}
    found = _read_sockets(wanted, netns, timeout, max_sockets)
    return {e: _aggregate(e, found.get(e, [])) for e in wanted}


def _aggregate(server: Endpoint, sockets: list[TcpSocket]) -> ServerTcpHealth:
    sockets.sort(key=lambda s: (s.state, s.local))
    states: dict[str, int] = {}
    for s in sockets:
        states[s.state] = states.get(s.state, 0) + 1
    infos = [s.info for s in sockets if s.info is not None]
    live = [s.info for s in sockets if s.info is not None and s.state == "ESTABLISHED"]
    slowest = max(live, key=lambda i: i.rtt_us, default=None)
    return ServerTcpHealth(
        server=server,
        states=dict(sorted(states.items())),
        send_queue_bytes=sum(s.send_queue_bytes for s in sockets),
        recv_queue_bytes=sum(s.recv_queue_bytes for s in sockets),
        unacked_segments=sum(i.unacked for i in infos),
        retrans_segments=sum(i.retrans for i in infos),
        retransmits_total=sum(i.total_retrans for i in infos),
        consecutive_timeouts=max((i.retransmits for i in infos), default=0),
        rtt_seconds=None if slowest is None else slowest.rtt_us / 1e6,
        rtt_var_seconds=None if slowest is None else slowest.rttvar_us / 1e6,
        last_data_recv_seconds=_freshest(live, "last_data_recv_ms"),
        last_ack_recv_seconds=_freshest(live, "last_ack_recv_ms"),
        last_data_sent_seconds=_freshest(live, "last_data_sent_ms"),
        sockets=tuple(sockets),
    )


def _freshest(infos: list[TcpInfo], name: str) -> float | None:
    values = [getattr(i, name) for i in infos]
    return min(values) / 1000 if values else None


# --- requests ----------------------------------------------------------------------------------


def _bytecode(conditions: list[tuple[int, bytes, int]]) -> bytes:
    """``dst A:p or dst B:q or ...`` as inet_diag bytecode, laid out as ``ss`` does.

    ``C1 J C2 J ... Cn``: a condition that holds goes on (yes = its size) to the jump after it,
    which always jumps to the end (accept); one that fails skips that jump (no = size + 4) to the
    next condition; the last one failing lands 4 bytes past the end (reject). Every operation
    lies on the "yes" path, which is what ``inet_diag_bc_audit`` / ``valid_cc`` require.
    """
    ops = []
    for family, packed, port in conditions:
        size = _BC_OP.size + _HOSTCOND.size + len(packed)
        ops.append(
            _BC_OP.pack(_INET_DIAG_BC_D_COND, size, size + 4)
            + _HOSTCOND.pack(family, 8 * len(packed), port)
            + packed
        )
    # Built back to front: each jump's "no" is the length of everything after it, plus itself.
    parts: list[bytes] = []
    after = 0
    for op in reversed(ops):
        if parts:
            parts.append(_BC_OP.pack(_INET_DIAG_BC_JMP, _BC_OP.size, _BC_OP.size + after))
            after += _BC_OP.size
        parts.append(op)
        after += len(op)
    return b"".join(reversed(parts))


def _condition(endpoint: Endpoint) -> tuple[int, bytes, int]:
    address = ipaddress.ip_address(endpoint[0])
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    return (family, address.packed, endpoint[1])


def _requests(wanted: list[Endpoint]) -> list[tuple[int, bytes]]:
    """(family, bytecode) per dump: AF_INET for IPv4 endpoints, AF_INET6 for all of them."""
    conditions = [_condition(e) for e in wanted]
    v4 = [c for c in conditions if c[0] == socket.AF_INET]
    plan = []
    for family, conds in ((socket.AF_INET, v4), (socket.AF_INET6, conditions)):
        for start in range(0, len(conds), ENDPOINTS_PER_REQUEST):
            plan.append((family, _bytecode(conds[start : start + ENDPOINTS_PER_REQUEST])))
    return plan


@cache
def _codec() -> tuple[Any, Any]:
    """pyroute2's inet_diag request/message classes, with the bytecode and raw tcp_info NLAs.

    Imported on first use: pyroute2's package import takes ~0.3 s.
    """
    from pyroute2.netlink.diag import inet_diag_msg, inet_diag_req

    class DiagRequest(inet_diag_req):
        nla_map = (("INET_DIAG_REQ_NONE", "none"), ("INET_DIAG_REQ_BYTECODE", "cdata"))

    class DiagMessage(inet_diag_msg):
        # Only INET_DIAG_INFO is asked for; others the kernel adds decode as UNKNOWN.
        nla_map = (("INET_DIAG_NONE", "none"), ("INET_DIAG_MEMINFO", "hex"), ("INET_DIAG_INFO", "cdata"))

    return DiagRequest, DiagMessage


def _encode_request(family: int, bytecode: bytes, seq: int) -> bytes:
    request_class, _ = _codec()
    req = request_class()
    req["header"]["type"] = _SOCK_DIAG_BY_FAMILY
    req["header"]["flags"] = _NLM_F_REQUEST | _NLM_F_DUMP
    req["header"]["sequence_number"] = seq
    req["header"]["pid"] = 0
    req["sdiag_family"] = family
    req["sdiag_protocol"] = socket.IPPROTO_TCP
    req["idiag_ext"] = 1 << (_INET_DIAG_INFO - 1)
    req["idiag_states"] = _STATES_MASK
    req["idiag_src"] = 0
    req["idiag_dst"] = 0
    req["attrs"] = [("INET_DIAG_REQ_BYTECODE", bytecode)]
    req.encode()
    return bytes(req.data)


# --- the netlink conversation ------------------------------------------------------------------


def _read_sockets(
    wanted: list[Endpoint], netns: str | os.PathLike[str] | None, timeout: float, max_sockets: int
) -> dict[Endpoint, list[TcpSocket]]:
    deadline = time.monotonic() + timeout
    wanted_set = set(wanted)
    found: dict[Endpoint, list[TcpSocket]] = {}
    seen = 0
    sock = _open(netns, timeout)
    try:
        for seq, (family, bytecode) in enumerate(_requests(wanted), start=1):
            try:
                sock.sendto(_encode_request(family, bytecode, seq), (0, 0))
            except OSError as e:
                raise SockDiagError(e.errno or errno.EIO, f"sock_diag request: {e.strerror or e}") from e
            for entry in _dump(sock, seq, deadline, timeout):
                seen += 1
                if seen > max_sockets:
                    raise SockDiagError(
                        errno.EOVERFLOW, f"more than {max_sockets} TCP sockets to the requested servers"
                    )
                if entry.remote in wanted_set:
                    found.setdefault(entry.remote, []).append(entry)
    finally:
        sock.close()
    return found


def _dump(sock: socket.socket, seq: int, deadline: float, timeout: float) -> Iterable[TcpSocket]:
    """The decoded messages of one dump, until NLMSG_DONE."""
    _, message_class = _codec()
    buffer = bytearray(_RECV_BUFFER)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SockDiagError(errno.ETIMEDOUT, f"sock_diag dump not finished within {timeout:g} s")
        sock.settimeout(remaining)
        try:
            size = sock.recv_into(buffer)
        except TimeoutError as e:
            raise SockDiagError(errno.ETIMEDOUT, f"no answer from sock_diag within {timeout:g} s") from e
        except OSError as e:  # ENOBUFS and the like: the dump is lost
            raise SockDiagError(e.errno or errno.EIO, f"sock_diag receive: {e.strerror or e}") from e
        data = bytes(buffer[:size])
        offset = 0
        while offset + _NLMSGHDR.size <= size:
            length, kind, _flags, msg_seq, _pid = _NLMSGHDR.unpack_from(data, offset)
            if length < _NLMSGHDR.size or offset + length > size:
                raise SockDiagError(errno.EBADMSG, "truncated netlink message from sock_diag")
            if msg_seq == seq:
                if kind in (_NLMSG_DONE, _NLMSG_ERROR):
                    # Both carry an int: 0, or minus the errno of a failed request or dump.
                    code = 0
                    if length >= _NLMSGHDR.size + 4:
                        (code,) = struct.unpack_from("=i", data, offset + _NLMSGHDR.size)
                    if code < 0:
                        raise SockDiagError(-code, f"sock_diag: {os.strerror(-code)}")
                    if kind == _NLMSG_DONE:
                        return
                elif kind == _SOCK_DIAG_BY_FAMILY:
                    message = message_class(data=data, offset=offset)
                    message.decode()
                    yield _socket(message)
            offset += (length + 3) & ~3


def _socket(message: Any) -> TcpSocket:
    raw = message.get_attr("INET_DIAG_INFO")
    info = None
    if isinstance(raw, bytes | bytearray) and len(raw) >= _TCP_INFO.size:
        f = _TCP_INFO.unpack_from(raw)
        # f[0..7]: state, ca_state, retransmits, probes, backoff, options, wscale, app_limited
        # f[8..]: rto, ato, snd_mss, rcv_mss, unacked, sacked, lost, retrans, fackets,
        #   last_data_sent, last_ack_sent, last_data_recv, last_ack_recv, pmtu, rcv_ssthresh,
        #   rtt, rttvar, snd_ssthresh, snd_cwnd, advmss, reordering, rcv_rtt, rcv_space,
        #   total_retrans
        info = TcpInfo(
            retransmits=f[2],
            backoff=f[4],
            rto_us=f[8],
            unacked=f[12],
            lost=f[14],
            retrans=f[15],
            last_data_sent_ms=f[17],
            last_data_recv_ms=f[19],
            last_ack_recv_ms=f[20],
            rtt_us=f[23],
            rttvar_us=f[24],
            snd_cwnd=f[26],
            total_retrans=f[31],
        )
    state = message["idiag_state"]
    return TcpSocket(
        family=message["idiag_family"],
        local=(_address(message["idiag_src"]), message["idiag_sport"]),
        remote=(_address(message["idiag_dst"]), message["idiag_dport"]),
        state=TCP_STATES.get(state, f"UNKNOWN_{state}"),
        send_queue_bytes=message["idiag_wqueue"],
        recv_queue_bytes=message["idiag_rqueue"],
        uid=message["idiag_uid"],
        inode=message["idiag_inode"],
        info=info,
    )


@lru_cache(maxsize=4096)
def _address(text: str) -> str:
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


# --- opening the socket, possibly in another network namespace ---------------------------------


def _new_socket() -> socket.socket:
    try:
        return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, _NETLINK_SOCK_DIAG)
    except OSError as e:
        raise SockDiagError(
            e.errno or errno.EPROTONOSUPPORT, f"netlink sock_diag unavailable: {e.strerror or e}"
        ) from e


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _netns_path(netns: str | os.PathLike[str]) -> str:
    path = os.fspath(netns)
    return path if "/" in path else os.path.join("/run/netns", path)


def _open(netns: str | os.PathLike[str] | None, timeout: float) -> socket.socket:
    """A sock_diag socket in ``netns``: a netlink socket answers for the namespace it was made in.

    setns(2) changes the network namespace of the calling thread only, so a short-lived thread
    enters the namespace, creates the socket and exits; the caller's namespace never changes.
    """
    if netns is None:
        return _new_socket()
    path = _netns_path(netns)
    outcome: dict[str, Any] = {}
    lock = threading.Lock()

    def enter_and_create() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            outcome["error"] = SockDiagError(e.errno, f"network namespace: {e.strerror}", path)
            return
        try:
            if _libc().setns(fd, _CLONE_NEWNET) != 0:
                code = ctypes.get_errno()
                outcome["error"] = SockDiagError(code, f"setns: {os.strerror(code)}", path)
                return
            made = _new_socket()
            with lock:
                if outcome.get("abandoned"):
                    made.close()
                else:
                    outcome["socket"] = made
        except OSError as e:
            outcome["error"] = e
        finally:
            os.close(fd)

    worker = threading.Thread(target=enter_and_create, name="panicwatch-netns", daemon=True)
    worker.start()
    worker.join(timeout)
    with lock:
        if worker.is_alive() and not ("socket" in outcome or "error" in outcome):
            outcome["abandoned"] = True
            raise SockDiagError(errno.ETIMEDOUT, "entering the network namespace timed out", path)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["socket"]
