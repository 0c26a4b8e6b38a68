"""parsers.inet_diag: the request filter against a model of the kernel's own checks
(inet_diag_bc_audit, which refuses the request, and inet_diag_bc_run, which runs it on every
socket), tcp_info decoding, netlink framing and the per-server summary, fuzzed. The same
bytecode runs in the real kernel in test_tcp_sockets.py."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panicwatch.parsers.inet_diag import (
    BC_OP,
    ENDPOINTS_PER_REQUEST,
    HOSTCOND,
    INET_DIAG_BC_D_COND,
    INET_DIAG_BC_JMP,
    NLMSG_DONE,
    NLMSG_ERROR,
    TcpInfo,
    TcpSocket,
    TruncatedMessage,
    aggregate,
    bytecode,
    decode_tcp_info,
    messages,
    normalize_endpoint,
    requests,
)

# --- a model of net/ipv4/inet_diag.c -----------------------------------------------------------


def valid_cc(bc: bytes, length: int, cc: int) -> bool:
    """The kernel's valid_cc: is offset ``length - cc`` on the path of "yes" jumps?"""
    offset = 0
    while length > 0:
        if cc == length:
            return True
        if cc > length:
            return False
        _, yes, _ = BC_OP.unpack_from(bc, offset)
        if yes < 4 or yes & 3:
            return False
        length -= yes
        offset += yes
    return cc == 0


def audit(bc: bytes) -> bool:
    """inet_diag_bc_audit for the two operations panicwatch writes: False is EINVAL."""
    offset, length = 0, len(bc)
    while length > 0:
        if length < BC_OP.size:
            return False
        code, yes, no = BC_OP.unpack_from(bc, offset)
        min_len = BC_OP.size
        if code == INET_DIAG_BC_D_COND:
            min_len += HOSTCOND.size
            if length < min_len:
                return False
            family, prefix_len, _port = HOSTCOND.unpack_from(bc, offset + BC_OP.size)[:3]
            addr_len = {socket.AF_INET: 4, socket.AF_INET6: 16}.get(family)
            if addr_len is None:
                return False
            min_len += addr_len
            if length < min_len or prefix_len > 8 * addr_len:
                return False
        elif code != INET_DIAG_BC_JMP:
            return False
        if no < min_len or no > length + 4 or no & 3:
            return False
        if no < length and not valid_cc(bc, len(bc), length - no):
            return False
        if yes < min_len or yes > length + 4 or yes & 3:
            return False
        offset += yes
        length -= yes
    return length == 0


def run(bc: bytes, family: int, daddr: bytes, dport: int) -> bool:
    """inet_diag_bc_run on one socket: accepted when the program ends exactly at its end."""
    offset, length = 0, len(bc)
    while length > 0:
        code, yes_jump, no_jump = BC_OP.unpack_from(bc, offset)
        yes = True
        if code == INET_DIAG_BC_JMP:
            yes = False
        else:
            cond_family, prefix_len, port = HOSTCOND.unpack_from(bc, offset + BC_OP.size)
            addr = bc[offset + BC_OP.size + HOSTCOND.size:offset + yes_jump]
            if port != -1 and port != dport:
                yes = False
            elif cond_family != family:
                # an AF_INET condition on an AF_INET6 socket: the IPv4-mapped address
                mapped = (family == socket.AF_INET6 and cond_family == socket.AF_INET
                          and daddr[:12] == b"\0" * 10 + b"\xff\xff")
                yes = mapped and bits_match(daddr[12:], addr, prefix_len)
            elif prefix_len:
                yes = bits_match(daddr, addr, prefix_len)
        jump = yes_jump if yes else no_jump
        offset += jump
        length -= jump
    return length == 0


def bits_match(a: bytes, b: bytes, bits: int) -> bool:
    return int.from_bytes(a, "big") >> (8 * len(a) - bits) == int.from_bytes(b, "big") >> (
        8 * len(b) - bits)


# --- strategies ---------------------------------------------------------------------------------

ipv4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
ipv6 = st.integers(0, 2**128 - 1).map(lambda n: ipaddress.IPv6Address(n)).filter(
    lambda a: a.ipv4_mapped is None).map(str)
near = st.sampled_from(["10.0.0.1", "10.0.0.2", "::1", "fd00::1", "127.0.0.1"])
endpoint = st.tuples(st.one_of(near, ipv4, ipv6), st.sampled_from([2049, 2050, 1, 65535]))


def as_socket(address: str, port: int, mapped: bool) -> tuple[int, bytes, int]:
    """(socket family, destination address as the kernel holds it, port)."""
    ip = ipaddress.ip_address(address)
    if ip.version == 4 and mapped:
        return socket.AF_INET6, b"\0" * 10 + b"\xff\xff" + ip.packed, port
    return (socket.AF_INET if ip.version == 4 else socket.AF_INET6), ip.packed, port


@settings(max_examples=400, deadline=None)
@given(st.lists(endpoint, min_size=1, max_size=30, unique=True),
       st.lists(st.tuples(endpoint, st.booleans()), max_size=20))
def test_the_filter_passes_the_audit_and_matches_exactly_the_endpoints(wanted, sockets):
    wanted = sorted({normalize_endpoint(e) for e in wanted})
    plan = requests(wanted)
    for _, bc in plan:
        assert audit(bc)
    candidates = [(e, m) for e, m in sockets] + [(e, m) for e in wanted for m in (False, True)]
    for (address, port), mapped in candidates:
        family, daddr, dport = as_socket(address, port, mapped)
        # the dump of the socket's own family carries it; an IPv4-mapped one is AF_INET6
        accepted = any(run(bc, family, daddr, dport) for plan_family, bc in plan
                       if plan_family == family)
        assert accepted == ((address, port) in wanted), (address, port, mapped)


def test_many_endpoints_take_several_requests_of_bounded_size():
    wanted = [(str(ipaddress.IPv4Address(0x0A000000 + i)), 2049) for i in range(1200)]
    plan = requests(wanted)
    assert [f for f, _ in plan] == [socket.AF_INET] * 3 + [socket.AF_INET6] * 3
    assert all(len(bc) <= ENDPOINTS_PER_REQUEST * 24 for _, bc in plan)
    assert all(audit(bc) for _, bc in plan)


def test_one_endpoint_is_one_condition():
    bc = bytecode([("10.0.0.1", 2049)])
    assert bc == BC_OP.pack(INET_DIAG_BC_D_COND, 16, 20) + HOSTCOND.pack(socket.AF_INET, 32, 2049) + \
        bytes([10, 0, 0, 1])


def test_a_broken_program_fails_the_model_audit():
    """The model refuses what the kernel refuses: it is a check that can fail."""
    good = bytecode([("10.0.0.1", 2049), ("10.0.0.2", 2049)])
    assert audit(good)
    assert not audit(good[:-4])  # cut short
    assert not audit(BC_OP.pack(INET_DIAG_BC_JMP, 4, 6))  # a jump off the 4-byte grid
    assert not audit(BC_OP.pack(99, 4, 8))  # an operation panicwatch never writes


# --- tcp_info, framing, summary -----------------------------------------------------------------

TCP_INFO = struct.Struct("=8B24I")


@given(st.binary(max_size=300))
def test_tcp_info_decodes_any_bytes(raw):
    info = decode_tcp_info(raw)
    assert (info is None) == (len(raw) < TCP_INFO.size)


@given(st.lists(st.integers(0, 2**32 - 1), min_size=24, max_size=24), st.binary(max_size=128))
def test_tcp_info_fields_come_from_their_offsets(u32, tail):
    raw = TCP_INFO.pack(*range(8), *u32) + tail  # longer on newer kernels: the rest is ignored
    assert decode_tcp_info(raw) == TcpInfo(unacked=u32[4], last_data_recv_ms=u32[11],
                                           rtt_us=u32[15], total_retrans=u32[23])


def nlmsg(kind: int, seq: int, payload: bytes) -> bytes:
    data = struct.pack("=IHHII", 16 + len(payload), kind, 0, seq, 0) + payload
    return data + b"\0" * (-len(data) % 4)


def test_framing_of_a_dump_and_its_end():
    data = nlmsg(20, 7, b"x" * 5) + nlmsg(NLMSG_DONE, 7, struct.pack("=i", 0)) + \
        nlmsg(NLMSG_ERROR, 8, struct.pack("=i", -22))
    assert [(m.kind, m.seq, m.offset, m.length, m.code) for m in messages(data)] == [
        (20, 7, 0, 21, 0), (NLMSG_DONE, 7, 24, 20, 0), (NLMSG_ERROR, 8, 44, 20, -22)]


@given(st.binary(max_size=200))
def test_framing_of_any_bytes_stays_inside_the_buffer(data):
    try:
        for m in messages(data):
            assert m.length >= 16 and m.offset + m.length <= len(data)
    except TruncatedMessage:
        pass


sock = st.builds(
    TcpSocket, family=st.sampled_from([socket.AF_INET, socket.AF_INET6]),
    local=st.just(("10.0.0.9", 700)), remote=st.just(("10.0.0.1", 2049)),
    state=st.sampled_from(["ESTABLISHED", "SYN_SENT", "TIME_WAIT", "CLOSE_WAIT"]),
    send_queue_bytes=st.integers(0, 2**31),
    info=st.one_of(st.none(), st.builds(TcpInfo, *[st.integers(0, 2**32 - 1)] * 4)))


@given(st.lists(sock, max_size=12))
def test_the_summary_of_any_sockets(sockets):
    h = aggregate(("10.0.0.1", 2049), sockets)
    assert sum(h.states.values()) == len(sockets)
    assert h.send_queue_bytes == sum(s.send_queue_bytes for s in sockets)
    infos = [s.info for s in sockets if s.info]
    assert h.unacked_segments == sum(i.unacked for i in infos)
    assert h.retransmits_total == sum(i.total_retrans for i in infos)
    live = [s.info for s in sockets if s.info and s.state == "ESTABLISHED"]
    assert h.rtt_seconds == (max(i.rtt_us for i in live) / 1e6 if live else None)
    assert h.last_data_recv_seconds == (
        min(i.last_data_recv_ms for i in live) / 1000 if live else None)


@pytest.mark.parametrize(("given", "normal"), [
    (("10.0.0.1", 2049), ("10.0.0.1", 2049)),
    (("::ffff:10.0.0.1", "2049"), ("10.0.0.1", 2049)),
    (("[fd00::0001]", 2049), ("fd00::1", 2049)),
    (("fe80::1%eth0", 2049), ("fe80::1", 2049)),
])
def test_endpoints_are_normalised(given, normal):
    assert normalize_endpoint(given) == normal


@pytest.mark.parametrize("bad", [("nfs.example.com", 2049), ("10.0.0.1", 0), ("10.0.0.1", 70000)])
def test_names_and_bad_ports_are_refused(bad):
    with pytest.raises(ValueError):
        normalize_endpoint(bad)
