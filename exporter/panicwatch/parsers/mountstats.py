"""/proc/<pid>/mountstats (the NFS client's per-mount statistics) and /proc/net/rpc/nfs.

A mount is returned only when its block is complete; anything malformed loses that mount
only, with a reason in ``skipped``. Per-op times stay in milliseconds, as printed; counters
are exact. Pure. The format and its versions: docs/kernel-interfaces.md, "nfs".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

from panicwatch.parsers.mountinfo import unescape
from panicwatch.parsers.procfs import ParseError

NFS_FSTYPES = frozenset({"nfs", "nfs4"})
MS_PER_SECOND = 1000

# include/linux/nfs_iostat.h enum nfs_stat_eventcounters, in print order. Kernels before the
# pNFS counters print the first 25.
EVENT_NAMES: tuple[str, ...] = (
    "inodevalidate", "dentryrevalidate", "datainvalidate", "attrinvalidate", "vfsopen",
    "vfslookup", "vfsaccess", "vfsupdatepage", "vfsreadpage", "vfsreadpages", "vfswritepage",
    "vfswritepages", "vfsgetdents", "vfssetattr", "vfsflush", "vfsfsync", "vfslock",
    "vfsrelease", "congestionwait", "setattrtrunc", "extendwrite", "sillyrename", "shortread",
    "shortwrite", "delay", "pnfsread", "pnfswrite",
)
EVENT_COUNTS = frozenset({25, 27})

# include/linux/nfs_iostat.h enum nfs_stat_bytecounters, in print order.
BYTES_NAMES: tuple[str, ...] = (
    "normalreadbytes", "normalwritebytes", "directreadbytes", "directwritebytes",
    "serverreadbytes", "serverwritebytes", "readpages", "writepages",
)

# Transport fields in print order. xs_tcp_print_stats: srcport, bind_count, connect_count,
# connect_time, idle_time, sends, recvs, bad_xids, req_u, bklog_u, and on all but the oldest
# kernels max_slots, sending_u, pending_u (not tied to the RPC iostats version: 3.10 prints them
# under "1.0"). xs_udp_print_stats has no connect_count/connect_time/idle_time;
# xs_local_print_stats has no port.
_GENERIC = ("port", "bind_count", "connect_count", "connect_time", "idle_time", "sends", "recvs",
            "bad_xids", "req_u", "bklog_u")
_SLOTS = ("max_slots", "sending_u", "pending_u")
_UDP = ("port", "bind_count", "sends", "recvs", "bad_xids", "req_u", "bklog_u")
_XPRT_LAYOUTS: dict[str, dict[int, tuple[str, ...]]] = {
    "tcp": {10: _GENERIC, 13: _GENERIC + _SLOTS},
    "udp": {7: _UDP, 10: _UDP + _SLOTS},
    "local": {9: _GENERIC[1:], 12: _GENERIC[1:] + _SLOTS},
}
# xprt_rdma_print_stats (torvalds/linux net/sunrpc/xprtrdma/transport.c at 11db24b6): the 10
# generic tcp-like values (no slot fields; the port always prints 0), then these, in print order.
# The list only ever grew at the end: 3.x kernels print the first 10 (20 values in all), 4.9 the
# first 15 (25), current kernels all 17 (27); older sources call mrs_recycled mrs_recovered. Any
# count from 20 up is accepted; values past the 17th are kept only in Transport.values.
RDMA_NAMES: tuple[str, ...] = (
    "read_chunk_count", "write_chunk_count", "reply_chunk_count", "total_rdma_request",
    "total_rdma_reply", "pullup_copy_count", "fixup_copy_count", "hardway_register_count",
    "failed_marshal_count", "bad_reply_count", "nomsg_call_count", "mrs_recycled", "mrs_orphaned",
    "mrs_allocated", "local_inv_needed", "empty_sendctx_q", "reply_waits_for_send",
)
_RDMA_MIN = len(_GENERIC) + 10

# Lines a mount has at most once.
_ONCE = frozenset({"opts", "age", "events", "bytes", "RPC iostats version"})

# show_implementation_id prints name='%s',domain='%s',date='%llu,%u'; the server chooses the
# name and domain, and they may hold newlines.
_IMPL_ID_END = re.compile(r"',date='[0-9]+,[0-9]+'\s*$")
_IMPL_ID_LINE_END = re.compile(r"',date='[0-9]+,[0-9]+'[ \t]*$", re.MULTILINE)


class OpStats(NamedTuple):
    """One ``per-op statistics`` line. Times are cumulative milliseconds, as printed.

    A NamedTuple rather than a frozen dataclass: a big client has 64,000 of these per scrape and
    a tuple is several times cheaper to build.
    """

    ops: int
    transmissions: int
    major_timeouts: int
    bytes_sent: int
    bytes_received: int
    queue_ms: int
    rtt_ms: int
    execute_ms: int
    errors: int | None = None  # printed since kernel 5.3

    @property
    def queue_seconds(self) -> float:
        return self.queue_ms / MS_PER_SECOND

    @property
    def rtt_seconds(self) -> float:
        return self.rtt_ms / MS_PER_SECOND

    @property
    def execute_seconds(self) -> float:
        return self.execute_ms / MS_PER_SECOND


@dataclass(frozen=True, slots=True)
class Transport:
    """One ``xprt:`` line. Fields the kernel did not print for this protocol/version are None.

    idle_time is seconds. connect_time is jiffies on older kernels and seconds on newer ones
    (the kernel changed it to ``connect_time / HZ``); it cannot be told from the text. req_u,
    bklog_u, sending_u and pending_u are running sums of queue lengths, one term per send.
    """

    proto: str  # as printed: tcp, udp, local, rdma (tcp6 shows as tcp; see NfsMount.proto)
    values: tuple[int, ...]  # every value after the protocol name, in print order
    port: int | None = None  # local (source) port
    bind_count: int | None = None
    connect_count: int | None = None
    connect_time: int | None = None
    idle_time: int | None = None
    sends: int | None = None
    recvs: int | None = None
    bad_xids: int | None = None
    req_u: int | None = None
    bklog_u: int | None = None
    max_slots: int | None = None
    sending_u: int | None = None
    pending_u: int | None = None
    rdma: dict[str, int] = field(default_factory=dict)  # RDMA_NAMES -> value, as printed


@dataclass(frozen=True, slots=True)
class NfsMount:
    """One complete NFS block. Counters are exactly as printed (ints, possibly wrapped near 2**64);
    see OpStats and Transport for their units."""

    device: str  # decoded, e.g. "server:/export" or "[fd00::1]:/export"
    mountpoint: str  # decoded
    fstype: str  # nfs or nfs4
    statvers: str  # "1.0", "1.1"
    opts: dict[str, str]  # "opts:" line; flags map to ""
    age: int  # seconds since mount
    events: tuple[int, ...]  # EVENT_NAMES order; 25 or 27 values
    bytes: tuple[int, ...]  # BYTES_NAMES order
    rpc_iostats_version: str  # "1.0", "1.1"
    rpc_program: int  # 100003 for NFS
    rpc_program_version: int  # 2, 3 or 4
    transports: tuple[Transport, ...]  # one per xprt: line (nconnect)
    ops: dict[str, OpStats]  # op name as printed (a nameless procedure prints its number) -> stats

    @property
    def server(self) -> str:
        return split_device(self.device)[0]

    @property
    def export(self) -> str:
        return split_device(self.device)[1]

    @property
    def version(self) -> str | None:
        """``vers=`` from the options, e.g. "3", "4.2"."""
        return self.opts.get("vers")

    @property
    def proto(self) -> str | None:
        """``proto=`` from the options, e.g. "tcp", "tcp6", "udp", "rdma"."""
        return self.opts.get("proto")

    @property
    def server_address(self) -> str | None:
        """``addr=`` from the options. Upstream kernels print addr= only in /proc/mounts and
        mountinfo (nfs_show_options), not here, so this is usually None: use ``server`` or join
        with mountinfo on the mount point. (NFSv3 mounts show the mountd address as
        ``mountaddr=``, which need not be the NFS server's.)"""
        return self.opts.get("addr")

    @property
    def port(self) -> int | None:
        """``port=`` from the options; the kernel leaves it out when it is the default (2049 for
        NFSv4, rpcbind's answer for v2/v3), and then this is None."""
        value = self.opts.get("port", "")
        return int(value) if value.isdecimal() else None

    def event_counts(self) -> dict[str, int]:
        return dict(zip(EVENT_NAMES, self.events, strict=False))

    def byte_counts(self) -> dict[str, int]:
        return dict(zip(BYTES_NAMES, self.bytes, strict=False))


@dataclass(frozen=True, slots=True)
class MountstatsResult:
    mounts: list[NfsMount]
    skipped: list[str]  # one human-readable reason per NFS mount (or device line) left out


def split_device(device: str) -> tuple[str, str]:
    """``host:/path`` -> (host, /path); ``[fd00::1]:/path`` -> (fd00::1, /path)."""
    if device.startswith("["):
        close = device.find("]:")
        if close > 0:
            return device[1:close], device[close + 2:]
    server, sep, path = device.partition(":/")
    if sep:
        return server, "/" + path
    server, sep, path = device.partition(":")
    return (server, path) if sep else ("", device)


def _decode(field_text: str) -> str:
    return unescape(field_text) if "\\" in field_text else field_text


def _what(rest: str, values: tuple[int, ...] | None) -> str:
    """How many values a line had, or what it had instead of integers."""
    return repr(rest.strip()[:60]) if values is None else str(len(values))


def _ints(tokens: list[str]) -> tuple[int, ...] | None:
    """Non-negative decimal integers, or None if any token is something else."""
    if not tokens or not "".join(tokens).isdecimal():
        return None
    return tuple(map(int, tokens))


class _LineNumbers:
    """Line numbers for error messages, counted on from the last one asked for: the parser asks
    in increasing order, so a file full of bad blocks still costs one pass."""

    __slots__ = ("line", "offset", "text")

    def __init__(self, text: str) -> None:
        self.text, self.offset, self.line = text, 0, 1

    def __call__(self, offset: int) -> int:
        if offset < self.offset:
            self.offset, self.line = 0, 1
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


def parse_mountstats(text: str) -> MountstatsResult:
    """Every complete NFS mount in a mountstats file, and why the others were left out."""
    mounts: list[NfsMount] = []
    skipped: list[str] = []
    line_of = _LineNumbers(text)
    end_of_text = len(text)
    if text.startswith("device "):
        start = 0
    else:
        start = text.find("\ndevice ")
        if start < 0:
            return MountstatsResult(mounts, skipped)
        start += 1
    while True:
        header_end = text.find("\n", start)
        if header_end < 0:
            header_end = end_of_text
        following = text.find("\ndevice ", header_end)
        # Split on single spaces: an empty device name ("device  mounted on") keeps its place.
        words = text[start + 7:header_end].split(" ")
        if (len(words) < 7 or words[1] != "mounted" or words[2] != "on" or words[4] != "with"
                or words[5] != "fstype"):
            skipped.append(f"line {line_of(start)}: not a mountstats device line: "
                           f"{text[start:header_end][:80]!r}")
        elif words[6] in NFS_FSTYPES:
            block_end = end_of_text if following < 0 else following + 1
            outcome = _parse_nfs(text, start, header_end, block_end, words, line_of)
            if isinstance(outcome, NfsMount):
                mounts.append(outcome)
            else:
                skipped.append(outcome)
        if following < 0:
            break
        start = following + 1
    return MountstatsResult(mounts, skipped)


def _parse_nfs(text: str, start: int, header_end: int, block_end: int, words: list[str],
               line_of: Callable[[int], int]) -> NfsMount | str:
    """One NFS block (text[header_end + 1:block_end]): the mount, or why it was left out."""
    mountpoint = _decode(words[3])

    def at(offset: int, what: str) -> str:
        return f"{mountpoint}: line {line_of(offset)}: {what}"

    extra = [w for w in words[7:] if w]
    if not extra or not extra[0].startswith("statvers="):
        return f"{mountpoint}: {words[6]} mount without statistics (no statvers=)"
    if len(extra) > 1 or extra[0] == "statvers=":
        return at(start, "malformed device line")

    opts: dict[str, str] | None = None
    age: int | None = None
    events: tuple[int, ...] | None = None
    counters: tuple[int, ...] | None = None
    rpc: tuple[str, int, int] | None = None
    transports: list[Transport] = []
    seen: set[str] = set()
    pos = header_end + 1
    while True:  # the lines before "per-op statistics": a dozen or so
        line_start = pos
        newline = text.find("\n", pos, block_end)
        if newline < 0:
            return f"{mountpoint}: truncated before per-op statistics"
        stripped = text[pos:newline].strip()
        pos = newline + 1
        if not stripped:
            return f"{mountpoint}: block ended before per-op statistics"
        if stripped == "per-op statistics":
            break
        key, _, rest = stripped.partition(":")
        if key == "xprt":
            tokens = rest.split()
            values = _ints(tokens[1:])
            if values is None:
                return at(line_start, f"xprt: expected a protocol and integers, got {rest.strip()[:60]!r}")
            transport = _transport(tokens[0], values)
            if transport is None:
                return at(line_start, f"xprt: unexpected number of values for {tokens[0]}: {len(values)}")
            transports.append(transport)
        elif key in _ONCE and key in seen:
            return at(line_start, f"a second {key}: line")
        elif key == "opts":
            seen.add(key)
            opts = {}
            for item in rest.strip().split(","):
                if item:
                    name, _, value = item.partition("=")
                    opts[name] = value
        elif key == "age":
            seen.add(key)
            values = _ints(rest.split())
            if values is None or len(values) != 1:
                return at(line_start, f"age: expected one integer, got {rest.strip()[:60]!r}")
            age = values[0]
        elif key == "events":
            seen.add(key)
            values = _ints(rest.split())
            if values is None or len(values) not in EVENT_COUNTS:
                return at(line_start, f"events: expected 25 or 27 values, got {_what(rest, values)}")
            events = values
        elif key == "bytes":
            seen.add(key)
            values = _ints(rest.split())
            if values is None or len(values) != len(BYTES_NAMES):
                return at(line_start, f"bytes: expected 8 values, got {_what(rest, values)}")
            counters = values
        elif key == "RPC iostats version":
            seen.add(key)
            rpc = _rpc_header(rest)
            if rpc is None:
                return at(line_start, f"malformed RPC iostats line {stripped[:80]!r}")
        elif key == "impl_id" and not _IMPL_ID_END.search(stripped):
            # The server-chosen name or domain holds a newline: the impl_id goes on to the line
            # that ends it, when this block has one (else it is taken as a single line).
            end = _IMPL_ID_LINE_END.search(text, pos, block_end)
            if end is not None:
                pos = end.end() + 1
        # caps, nfsv4, sec, fsc, impl_id and unknown lines carry nothing the exporter needs.

    if opts is None or age is None or events is None or counters is None or rpc is None:
        missing = [name for name, value in (("opts", opts), ("age", age), ("events", events),
                                            ("bytes", counters), ("RPC iostats version", rpc))
                   if value is None]
        return f"{mountpoint}: no {', '.join(missing)} line before per-op statistics"

    ops = _fast_ops(text, pos, block_end)
    if ops is None:
        ops = _slow_ops(text, pos, block_end, mountpoint, at)
        if isinstance(ops, str):
            return ops

    return NfsMount(
        device=_decode(words[0]),
        mountpoint=mountpoint,
        fstype=words[6],
        statvers=extra[0][9:],
        opts=opts,
        age=age,
        events=events,
        bytes=counters,
        rpc_iostats_version=rpc[0],
        rpc_program=rpc[1],
        rpc_program_version=rpc[2],
        transports=tuple(transports),
        ops=ops,
    )


# Every line of a per-op section starts with optional indentation, the op name and ": ".
_OP_LINE_START = re.compile(r"\n[ \t]*[^\s:]+: ")
_new_op = partial(tuple.__new__, OpStats)


def _fast_ops(text: str, pos: int, block_end: int) -> dict[str, OpStats] | None:
    """The ops from pos up to the blank line, if every line is ``name: v1 ... v9`` (or eight
    values) as the kernel prints it; None for anything else (the slow path then parses it, or
    says what is wrong). Checking the section at once and converting all its numbers in one go
    is 2-3 times faster than going line by line.

    Why the checks below are enough: every line starts with a ``name:`` token, the section has
    no other colon, the other tokens are decimal, and there are exactly lines * (width + 1)
    tokens; so the colon tokens sit exactly at every (width + 1)-th place, one per line.
    """
    blank = text.find("\n\n", pos - 1, block_end)
    if blank < 0:
        return None
    lines = text.count("\n", pos, blank + 1)
    if not lines:
        return {}
    section = text[pos:blank + 1]
    tokens = section.split()
    if len(tokens) == 10 * lines:
        width = 9
    elif len(tokens) == 9 * lines:
        width = 8
    else:
        return None
    if (section.count(":") != lines
            or len(_OP_LINE_START.findall(text, pos - 1, blank + 1)) != lines):
        return None
    names = "".join(tokens[::width + 1])[:-1].split(":")
    del tokens[::width + 1]
    if not "".join(tokens).isdecimal():
        return None
    numbers = [map(int, tokens)] * width
    if width == 9:
        ops = dict(zip(names, map(_new_op, zip(*numbers, strict=True)), strict=True))
    else:
        ops = {name: _new_op((*values, None))
               for name, values in zip(names, zip(*numbers, strict=True), strict=True)}
    return ops if len(ops) == lines else None


def _slow_ops(text: str, pos: int, block_end: int, mountpoint: str,
              at: Callable[[int, str], str]) -> dict[str, OpStats] | str:
    """The ops line by line: tolerates trailing whitespace and blank lines made of spaces,
    mixes of 8 and 9 values; otherwise says which line is wrong."""
    ops: dict[str, OpStats] = {}
    lines = text[pos:block_end].split("\n")
    for line in lines[:-1]:  # the last piece has no newline after it
        tokens = line.split()
        if not tokens:
            return ops
        name = tokens.pop(0)
        if (name[-1] != ":" or len(name) < 2 or ":" in name[:-1] or not 8 <= len(tokens) <= 9
                or not "".join(tokens).isdecimal()):
            return at(pos, f"malformed per-op line {line.strip()[:80]!r}")
        if name[:-1] in ops:
            return at(pos, f"op {name[:-1]} appears twice")
        values = map(int, tokens)
        ops[name[:-1]] = _new_op(values) if len(tokens) == 9 else _new_op((*values, None))
        pos += len(line) + 1
    return f"{mountpoint}: truncated per-op statistics (no blank line after the last op)"


def _rpc_header(rest: str) -> tuple[str, int, int] | None:
    """`` 1.1  p/v: 100003/4 (nfs)`` -> ("1.1", 100003, 4)."""
    tokens = rest.split()
    if len(tokens) < 3 or tokens[1] != "p/v:":
        return None
    program, sep, version = tokens[2].partition("/")
    if not sep or not program.isdecimal() or not version.isdecimal():
        return None
    return tokens[0], int(program), int(version)


def _transport(proto: str, values: tuple[int, ...]) -> Transport | None:
    """Name the values of one xprt: line; None if the count fits no kernel's layout."""
    if proto == "rdma":
        if len(values) < _RDMA_MIN:
            return None
        generic = dict(zip(_GENERIC, values, strict=False))
        rdma = dict(zip(RDMA_NAMES, values[len(_GENERIC):], strict=False))
        return Transport(proto, values, **generic, rdma=rdma)
    layouts = _XPRT_LAYOUTS.get(proto)
    if layouts is None:  # a transport this parser does not know: keep the raw values
        return Transport(proto, values)
    names = layouts.get(len(values))
    if names is None:
        return None
    return Transport(proto, values, **dict(zip(names, values, strict=True)))


@dataclass(frozen=True, slots=True)
class RpcNfsStats:
    """/proc/net/rpc/nfs (net/sunrpc/stats.c rpc_proc_show). The kernel keeps these in
    ``unsigned int``: they wrap at 2**32."""

    net_packets: int
    net_udp: int
    net_tcp: int
    net_tcp_connections: int
    calls: int
    retransmissions: int
    auth_refreshes: int
    procs: dict[int, tuple[int, ...]]  # NFS version -> calls per procedure


def parse_rpc_nfs(text: str) -> RpcNfsStats:
    """``net``/``rpc``/``procN`` lines. Raises ParseError unless ``net`` and ``rpc`` are there
    and every line it knows is well formed; lines with another first word are ignored."""
    net: tuple[int, ...] | None = None
    rpc: tuple[int, ...] | None = None
    procs: dict[int, tuple[int, ...]] = {}
    for line in text.split("\n"):
        tokens = line.split()
        if not tokens:
            continue
        key, values = tokens[0], _ints(tokens[1:])
        if key == "net":
            if values is None or len(values) != 4 or net is not None:
                raise ParseError(f"malformed net line {line[:80]!r}")
            net = values
        elif key == "rpc":
            if values is None or len(values) != 3 or rpc is not None:
                raise ParseError(f"malformed rpc line {line[:80]!r}")
            rpc = values
        elif key.startswith("proc") and key[4:].isdecimal():
            version = int(key[4:])
            if values is None or values[0] != len(values) - 1 or version in procs:
                raise ParseError(f"malformed {key} line {line[:80]!r}")
            procs[version] = values[1:]
    if net is None or rpc is None:
        raise ParseError("no net and rpc lines")
    return RpcNfsStats(*net, *rpc, procs=procs)
