"""TCP connections to NFS servers, read from the kernel over netlink sock_diag (inet_diag).

RPC transport sockets belong to no process, so they are found by destination: one dump per
address family with a kernel-side filter (parsers/inet_diag.py), on a plain netlink socket
with a deadline (pyroute2 encodes and decodes the messages; why not its DiagSocket:
docs/kernel-interfaces.md). Nothing here touches a mount. Errors raise SockDiagError.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import threading
import time
from collections.abc import Iterable
from functools import cache
from typing import Any

from panicwatch.parsers.inet_diag import (
    NLMSG_DONE,
    NLMSG_ERROR,
    STATES_MASK,
    TCP_STATES,
    Endpoint,
    ServerTcpHealth,
    TcpSocket,
    TruncatedMessage,
    aggregate,
    decode_tcp_info,
    messages,
    normalize_address,
    normalize_endpoint,
    requests,
)

DEFAULT_TIMEOUT = 5.0
# A client has a handful of sockets per server (nconnect <= 16, plus TIME_WAIT leftovers);
# beyond this the filter matches something that is not an NFS client, so stop. Decoding costs
# ~0.1 ms a socket (pyroute2), so the cap also keeps the worst case near 2 s.
DEFAULT_MAX_SOCKETS = 16384

_NLM_F_REQUEST = 0x1
_NLM_F_DUMP = 0x300
_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_INET_DIAG_INFO = 2
_CLONE_NEWNET = 0x40000000
_RECV_BUFFER = 65536  # the kernel builds dump chunks of at most ~32 KiB


class SockDiagError(OSError):
    """Reading sockets over netlink sock_diag failed; errno and strerror say why."""


def read_tcp_sockets(
    endpoints: Iterable[tuple[str, int]],
    netns: str | os.PathLike[str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_sockets: int = DEFAULT_MAX_SOCKETS,
) -> dict[Endpoint, list[TcpSocket]]:
    """Every endpoint (normalised), with the TCP sockets whose destination it is (maybe none).

    ``netns``: the network namespace to read (a path such as ``/proc/PID/ns/net``, or a bare
    name for ``/run/netns/NAME``); None reads ours. The whole read finishes within
    ``timeout`` seconds or raises ``SockDiagError(ETIMEDOUT)``.
    """
    wanted = sorted({normalize_endpoint(e) for e in endpoints})
    if not wanted:
        return {}
    found = _read_sockets(wanted, netns, timeout, max_sockets)
    return {e: found.get(e, []) for e in wanted}


def read_tcp_health(
    endpoints: Iterable[tuple[str, int]],
    netns: str | os.PathLike[str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_sockets: int = DEFAULT_MAX_SOCKETS,
) -> dict[Endpoint, ServerTcpHealth]:
    """Per endpoint, its sockets summed up (``parsers.inet_diag.aggregate``)."""
    found = read_tcp_sockets(endpoints, netns, timeout=timeout, max_sockets=max_sockets)
    return {e: aggregate(e, sockets) for e, sockets in found.items()}


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
    req["idiag_states"] = STATES_MASK
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
        for seq, (family, bytecode) in enumerate(requests(wanted), start=1):
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
        try:
            for m in messages(data):
                if m.seq != seq:
                    continue
                if m.kind in (NLMSG_DONE, NLMSG_ERROR):
                    if m.code < 0:
                        raise SockDiagError(-m.code, f"sock_diag: {os.strerror(-m.code)}")
                    if m.kind == NLMSG_DONE:
                        return
                elif m.kind == _SOCK_DIAG_BY_FAMILY:
                    message = message_class(data=data, offset=m.offset)
                    message.decode()
                    yield _socket(message)
        except TruncatedMessage as e:
            raise SockDiagError(errno.EBADMSG, f"sock_diag: {e}") from e


def _socket(message: Any) -> TcpSocket:
    raw = message.get_attr("INET_DIAG_INFO")
    state = message["idiag_state"]
    return TcpSocket(
        family=message["idiag_family"],
        local=(normalize_address(message["idiag_src"]), message["idiag_sport"]),
        remote=(normalize_address(message["idiag_dst"]), message["idiag_dport"]),
        state=TCP_STATES.get(state, f"UNKNOWN_{state}"),
        send_queue_bytes=message["idiag_wqueue"],
        info=decode_tcp_info(bytes(raw)) if isinstance(raw, bytes | bytearray) else None,
    )


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
