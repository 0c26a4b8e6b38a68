r"""The kernel's sunrpc debugfs and sysfs files: RPC tasks in flight and the transports they use.

Pure functions from text to frozen dataclasses. They never raise on malformed input: what they
cannot read is left out, with a reason in ``skipped``. Nothing here opens a file (the collector
reads through the Host; debugfs is usually root-only and sysfs ``xprt_info`` fails with ENOTCONN
while a transport is down, both of which are the collector's business).

Files, and what the kernel prints in them (checked against net/sunrpc/debugfs.c and
net/sunrpc/sysfs.c from 3.19, when the debugfs files appeared, through 6.x and 2025 mainline):

``<debugfs>/sunrpc/rpc_clnt/<clid>/tasks`` (``parse_tasks``)
    One line per task on the client's ``cl_tasks`` list, from ``tasks_show``::

        "%5u %04x %6d 0x%x 0x%x %8ld %ps %sv%u %s a:%ps q:%s\n"
        tk_pid, tk_flags, tk_status, cl_clid, xid, timeout, tk_ops,
        cl_program->name, cl_vers, rpc_proc_name(task), tk_action, wait queue name

    for example (one line)::

          412 08a1   -110 0x3 0x5e2c1a7b    14523 nfs_pgio_common_ops [nfs] nfsv3 READ
          a:call_status [sunrpc] q:xprt_pending

    The format string is the same in every mainline release since 3.19. What changed:

    * the timeout column: up to about 5.2 it is ``tk_timeout``, the *relative* timeout in jiffies
      the task last slept with (0 if none); from about 5.2 (``rpc_task_timeout()``) it is the
      jiffies *remaining* until the task's timer fires, 0 when no timer is armed. Jiffies either
      way; HZ is not in the text, so it is not converted to seconds.
    * since early 2025 (about 6.14) ``tasks_stop`` appends one trailer line per read,
      ``clnt[%pISpc] RPC tasks[%d]``: the client's transport address with port
      (``10.0.0.1:2049``, ``[fd00::1]:2049``) and ``cl_task_count``. It is parsed into
      ``TasksFile.client_address`` / ``TasksFile.task_count``.
    * a 2022 patch series widened ``tk_flags`` to 32 bits and printed it ``%08x``; any number of
      hex digits is accepted. A vendor fork (VAST's NFS client) prints ``tk_pid`` with ``%llx``:
      such ids are read as decimal when they are all digits and skipped otherwise (their lines
      are reported in ``skipped``).

    ``%ps`` prints a symbol name, followed by `` [module]`` when the symbol lives in a module
    (``call_status [sunrpc]``, nothing when sunrpc is built in), or ``0x<address>`` when kallsyms
    cannot name it (``tk_ops`` points to data: named only with CONFIG_KALLSYMS_ALL). Kept as
    printed in ``RpcTask.ops`` / ``RpcTask.action``; ``ops_name`` / ``action_name`` drop the module.
    ``rpc_proc_name()`` prints ``no proc`` (two words) for a task without a procedure, ``NULL``
    for a procedure without a name. The queue name is the rest of the line and may hold spaces
    (``ForeChannel Slot table``, ``NFSv4.0 transport Slot table``); ``none`` means not queued,
    ``unknown`` a queue without a name. The xid is 0 while the task has no request slot (waiting
    in ``xprt_backlog``, for an NFSv4.1 session slot, or after a slot was released for a restart).

``<debugfs>/sunrpc/rpc_xprt/<n>/info`` (``parse_xprt_info``)
    ``xprt_info_show``: ``"netid: %s\n" "addr:  %s\n" "port:  %s\n" "state: 0x%lx\n"`` since 3.19;
    since early 2025 (about 6.15) also ``"netns: %u\n"`` and, for transports with a source
    address (tcp, udp), ``"saddr: %.*s\n"`` (the address, no port, or ``<closed>``). Other
    ``key: value`` lines are kept in ``extra``. The client directory's ``xprt`` symlink
    (``../../rpc_xprt/<n>``; ``xprt1``, ``xprt2``... for more transports on newer kernels) joins a
    client to its transports: see ``xprt_dir_from_link``.

``/sys/kernel/sunrpc/xprt-switches/switch-<N>/xprt-<M>-<proto>/`` (kernels >= 5.14)
    ``xprt_info`` (``parse_sysfs_xprt_info``), ``rpc_sysfs_xprt_info_show``::

        last_used=%lu cur_cong=%lu cong_win=%lu max_num_slots=%u min_num_slots=%u num_reqs=%u
        binding_q_len=%u sending_q_len=%u pending_q_len=%u backlog_q_len=%u main_xprt=%d
        src_port=%u tasks_queuelen=%ld dst_port=%s          (one key=value per line)

    The first ten keys came first; ``main_xprt``, ``src_port``, ``tasks_queuelen`` and
    ``dst_port`` were added in the same 5.14/5.15 series. Any key=value line is read; unknown
    keys are kept in ``extra``. ``xprt_state`` (``parse_xprt_state``) is ``state=CLOSED`` when no
    bit is set, else ``"state=%s %s ... %s\n"`` with one slot per known bit, empty when the bit
    is clear (so runs of spaces): 10 slots in 5.14 (LOCKED ... WRITE_SPACE), then OFFLINE and
    REMOVE. XPRT_BINDING prints as ``BOUNDING``. ``dstaddr`` and ``srcaddr``
    (``parse_sysfs_address``) are one address and a newline. ``xprt_switch_info`` in the switch
    directory (``parse_xprt_switch_info``): ``num_xprts``, ``num_active``, ``num_unique_destaddr``,
    ``queue_len``. Most of these ``show`` functions return ``ret + 1``, so a read ends with a NUL
    byte after the newline; it is ignored.

What "major timeout" means here: ``RpcTask.major_timeout`` is bit 0x0020 of the flags,
``RPC_CALL_MAJORSEEN`` ("major timeout seen"). It has had that value in every kernel since 2.4
(include/linux/sunrpc/sched.h). net/sunrpc/clnt.c sets it on a *hard* task the first time it hits
a major timeout (all retransmissions of one timeout cycle used up: the moment the kernel logs
"server X not responding, still trying") and clears it when a reply is decoded ("server X OK").
So a task with the flag is an RPC that has waited at least one full timeo*retrans cycle without
an answer and is still waiting. Soft tasks (RPC_TASK_SOFT or RPC_TASK_TIMEOUT set) fail at their
major timeout instead, so they never carry the flag; the per-task count of major timeouts
(``tk_timeouts``) is not printed. The other flag bits are in ``TASK_FLAG_NAMES``; ``flags`` is
always kept raw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

T = TypeVar("T")

# --- task flags (include/linux/sunrpc/sched.h, RPC_TASK_*) ------------------------------------

RPC_TASK_ASYNC = 0x0001
RPC_CALL_MAJORSEEN = 0x0020
RPC_TASK_SOFT = 0x0200
RPC_TASK_SOFTCONN = 0x0400
RPC_TASK_TIMEOUT = 0x1000

# Bit -> name, for the kernels that have the debugfs file (3.19 on). History of each bit:
#   0x0001 ASYNC, 0x0002 SWAPPER, 0x0020 MAJORSEEN, 0x0080 DYNAMIC, 0x0200 SOFT: since 2.6, never moved.
#   0x0400 SOFTCONN, 0x0800 SENT, 0x1000 TIMEOUT: 2.6.3x on. (2.6-era NOINTR used 0x0400.)
#   0x2000 NOCONNECT, 0x4000 NO_RETRANS_TIMEOUT, 0x8000 CRED_NOREF: added in 3.x / 4.x / ~5.0.
#   0x0004 MOVEABLE (~5.15 on), 0x0008 TLSCRED (6.5 on), 0x0010 NULLCREDS (5.x on): unused
#          between their 2.6-era meanings (SETUID, CHILD, REALUID) and these.
#   0x0040 ROOTCREDS up to 5.17, unused since (mainline).
#   0x0100 KILLED up to about 5.1 (then moved to tk_runstate as SIGNALLED), NO_ROUND_ROBIN from
#          about 5.3: the text alone cannot tell which, so the name says both.
TASK_FLAG_NAMES: dict[int, str] = {
    0x0001: "ASYNC",
    0x0002: "SWAPPER",
    0x0004: "MOVEABLE",
    0x0008: "TLSCRED",
    0x0010: "NULLCREDS",
    0x0020: "MAJORSEEN",
    0x0040: "ROOTCREDS",
    0x0080: "DYNAMIC",
    0x0100: "KILLED/NO_ROUND_ROBIN",
    0x0200: "SOFT",
    0x0400: "SOFTCONN",
    0x0800: "SENT",
    0x1000: "TIMEOUT",
    0x2000: "NOCONNECT",
    0x4000: "NO_RETRANS_TIMEOUT",
    0x8000: "CRED_NOREF",
}

# --- transport state bits (include/linux/sunrpc/xprt.h, XPRT_*: bit numbers in xprt->state) ---
# Bits 0-6 have not moved since 2.6. Bit 9 was XPRT_INITIALIZED before 3.10, CONGESTED since.
# Bits 7 and 8 were CONNECTION_ABORT / CONNECTION_CLOSE in 3.x/4.x kernels and are OFFLINE /
# REMOVE since 5.15 (sysfs transport offlining): the names say both. 10-12 arrived in 4.20-5.10.
XPRT_STATE_BITS: dict[int, str] = {
    0: "LOCKED",
    1: "CONNECTED",
    2: "CONNECTING",
    3: "CLOSE_WAIT",
    4: "BOUND",
    5: "BINDING",
    6: "CLOSING",
    7: "CONNECTION_ABORT/OFFLINE",
    8: "CONNECTION_CLOSE/REMOVE",
    9: "CONGESTED",
    10: "CWND_WAIT",
    11: "WRITE_SPACE",
    12: "SND_IS_COOKIE",
}
XPRT_CONNECTED_BIT = 1
XPRT_CONNECTING_BIT = 2
XPRT_CLOSE_WAIT_BIT = 3
XPRT_BOUND_BIT = 4
XPRT_CLOSING_BIT = 6
XPRT_CONGESTED_BIT = 9


def decode_task_flags(flags: int) -> tuple[str, ...]:
    """Names of the set bits, lowest first; a bit without a name comes out as ``0x<bit>``."""
    names = []
    bit = 1
    while bit <= flags:
        if flags & bit:
            names.append(TASK_FLAG_NAMES.get(bit, f"0x{bit:04x}"))
        bit <<= 1
    return tuple(names)


def decode_xprt_state(state: int) -> tuple[str, ...]:
    """Names of the set bits of ``xprt->state``, lowest first; unknown bits as ``bit<N>``."""
    return tuple(XPRT_STATE_BITS.get(n, f"bit{n}") for n in range(state.bit_length()) if state >> n & 1)


def _strip_module(symbol: str) -> str:
    """``call_status [sunrpc]`` -> ``call_status``."""
    return symbol.split(" [", 1)[0]


@dataclass(frozen=True)  # no slots: a slotted frozen generic breaks ``Parsed[X](...)``
class Parsed(Generic[T]):
    """The result of parsing a one-record file: the record (None if the text held none) and what
    was left out."""

    value: T | None
    skipped: list[str]


# --- tasks ------------------------------------------------------------------------------------


class RpcTask(NamedTuple):
    """One line of a ``tasks`` file. Integers as printed (hex columns decoded).

    A NamedTuple rather than a frozen dataclass, like mountstats.OpStats: a server that stopped
    answering can leave tens of thousands of tasks, and a tuple is several times cheaper to build.
    """

    task_id: int  # tk_pid: a 16-bit debugging id from a global counter; wraps, so not unique
    flags: int  # tk_flags, raw; see TASK_FLAG_NAMES
    status: int  # tk_status: 0 or a negative errno (-110 ETIMEDOUT, -11 EAGAIN, -107 ENOTCONN...)
    client_id: int  # cl_clid, the rpc_clnt debugfs directory name (hex) and sysfs clnt-<decimal>
    xid: int  # the request's XID; 0 while the task has no request slot
    timeout_jiffies: int  # see the module docstring: relative (<5.2) or remaining (>=5.2) jiffies
    ops: str  # tk_ops as %ps printed it, e.g. "nfs_pgio_common_ops [nfs]" or "0xffffffffc0a1b2c0"
    program: str  # cl_program->name: "nfs", "nfsacl", "lockd", "rpcbind", "mount"...
    version: int  # cl_vers: 3, 4...
    procedure: str  # "READ", "SEQUENCE", "NULL" (no name) or "no proc"
    action: str  # tk_action as %ps printed it, e.g. "call_status [sunrpc]"
    queue: str  # wait queue name, e.g. "xprt_pending", "ForeChannel Slot table"; "none" if not queued

    @property
    def major_timeout(self) -> bool:
        """RPC_CALL_MAJORSEEN: a hard task past at least one major timeout, no reply since."""
        return bool(self.flags & RPC_CALL_MAJORSEEN)

    @property
    def soft(self) -> bool:
        """RPC_IS_SOFT(): fails at its major timeout (soft or softerr mount, or a soft call)."""
        return bool(self.flags & (RPC_TASK_SOFT | RPC_TASK_TIMEOUT))

    @property
    def is_async(self) -> bool:
        return bool(self.flags & RPC_TASK_ASYNC)

    @property
    def queued(self) -> bool:
        """On a wait queue (sleeping), as opposed to running or waiting to run."""
        return self.queue != "none"

    @property
    def has_request(self) -> bool:
        """Holds a request slot (and so an XID)."""
        return self.xid != 0

    @property
    def action_name(self) -> str:
        return _strip_module(self.action)

    @property
    def ops_name(self) -> str:
        return _strip_module(self.ops)

    @property
    def flag_names(self) -> tuple[str, ...]:
        return decode_task_flags(self.flags)

    @property
    def key(self) -> tuple[int, int, int]:
        """(client id, task id, xid): what identifies one task across reads."""
        return self.client_id, self.task_id, self.xid


@dataclass(frozen=True, slots=True)
class TasksFile:
    tasks: list[RpcTask]
    skipped: list[str]  # one reason per line left out
    client_address: str | None = None  # from the trailer line (2025+ kernels), e.g. "10.0.0.1:2049"
    task_count: int | None = None  # cl_task_count from the trailer line


_TASK_LINE = re.compile(
    r" *(?P<id>[0-9]+) (?P<flags>[0-9a-fA-F]+) +(?P<status>-?[0-9]+)"
    r" 0x(?P<clid>[0-9a-fA-F]+) 0x(?P<xid>[0-9a-fA-F]+) +(?P<timeout>-?[0-9]+)"
    r" (?P<ops>[^ ]+(?: \[[^\]\n]*\])?)"
    r" (?P<prog>[^ ]*)v(?P<vers>[0-9]+)"
    r" (?P<proc>[^\n]+?)"
    r" a:(?P<action>[^ ]+(?: \[[^\]\n]*\])?)"
    r" q:(?P<queue>[^\n]*)"
)
_TRAILER = re.compile(r"clnt\[(?P<addr>[^\n]*)\] RPC tasks\[(?P<count>-?[0-9]+)\]")
# No kernel line comes near this (two symbols of at most KSYM_NAME_LEN = 512 plus module names,
# short names and numbers); longer lines are not matched, which keeps the regex's backtracking
# on a pathological line bounded.
MAX_TASK_LINE = 4096


def parse_task_line(line: str) -> RpcTask | None:
    """One ``tasks`` line (without its newline), or None if it is not one."""
    if len(line) > MAX_TASK_LINE:
        return None
    m = _TASK_LINE.fullmatch(line)
    if m is None:
        return None
    task_id, flags, status, clid, xid, timeout, ops, prog, vers, proc, action, queue = m.groups()
    return RpcTask(int(task_id), int(flags, 16), int(status), int(clid, 16), int(xid, 16), int(timeout), ops,
                   prog, int(vers), proc, action, queue)


def parse_tasks(text: str) -> TasksFile:
    """Every task line of a ``rpc_clnt/<clid>/tasks`` file, and the trailer line if there is one.

    Blank lines are ignored; any other line that is not a task line is reported in ``skipped``.
    Only ``\\n`` separates lines (a queue name could hold other line-breaking characters).

    The trailer (2025+ kernels) is printed by the seq_file ``stop`` callback, which runs once per
    ``read()`` chunk, so a file read in several chunks holds it several times, mid-file too: every
    copy is accepted and the last one's values kept. When it does not fit in the chunk the kernel
    cuts it short and ends it with a NUL byte, glued to the next task line
    (``clnt[10.0.0.1:20\\0  413 0881 ...``): text up to a NUL that is a piece of a trailer is
    dropped and the rest of the line read as usual."""
    tasks: list[RpcTask] = []
    skipped: list[str] = []
    address: str | None = None
    count: int | None = None
    for number, line in enumerate(text.split("\n"), 1):
        pieces = line.split("\x00") if "\x00" in line else [line]
        last = len(pieces) - 1
        for k, piece in enumerate(pieces):
            if not piece.strip():
                continue
            task = parse_task_line(piece)
            if task is not None:
                tasks.append(task)
                continue
            trailer = _TRAILER.fullmatch(piece.rstrip("\r"))
            if trailer is not None:
                address, count = trailer["addr"], int(trailer["count"])
            elif k < last and (piece.startswith("clnt[") or "clnt[".startswith(piece)):
                pass  # a trailer cut short by the kernel, NUL-terminated
            else:
                skipped.append(f"line {number}: not a task line: {piece[:80]!r}")
    return TasksFile(tasks, skipped, address, count)


# --- debugfs rpc_xprt/<n>/info ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class XprtInfo:
    """A debugfs ``rpc_xprt/<n>/info`` file."""

    netid: str  # "tcp", "tcp6", "udp", "udp6", "rdma", "local"...
    addr: str  # the server address as printed (numeric, no brackets; a path for AF_LOCAL)
    port: str  # as printed: a decimal port, or "" / a name on odd transports
    state: int  # xprt->state bits; see XPRT_STATE_BITS
    netns: int | None = None  # network namespace inode (2025+ kernels)
    saddr: str | None = None  # source address (2025+ kernels, socket transports); "<closed>" when closed
    extra: dict[str, str] = field(default_factory=dict)  # other "key: value" lines

    @property
    def port_number(self) -> int | None:
        return int(self.port) if self.port.isascii() and self.port.isdecimal() else None

    @property
    def state_names(self) -> tuple[str, ...]:
        return decode_xprt_state(self.state)

    @property
    def connected(self) -> bool:
        return bool(self.state >> XPRT_CONNECTED_BIT & 1)

    @property
    def connecting(self) -> bool:
        return bool(self.state >> XPRT_CONNECTING_BIT & 1)

    @property
    def bound(self) -> bool:
        return bool(self.state >> XPRT_BOUND_BIT & 1)

    @property
    def close_wait(self) -> bool:
        return bool(self.state >> XPRT_CLOSE_WAIT_BIT & 1)

    @property
    def closing(self) -> bool:
        return bool(self.state >> XPRT_CLOSING_BIT & 1)

    @property
    def congested(self) -> bool:
        return bool(self.state >> XPRT_CONGESTED_BIT & 1)


_XPRT_INFO_REQUIRED = ("netid", "addr", "port", "state")


def _hex(value: str) -> int | None:
    """``0x1b`` -> 27; anything else -> None."""
    if value[:2] not in ("0x", "0X") or len(value) < 3:
        return None
    digits = value[2:]
    if not digits.isascii() or not all(c in "0123456789abcdefABCDEF" for c in digits):
        return None
    return int(digits, 16)


def _decimal(value: str) -> int | None:
    """A (possibly negative) ASCII decimal integer, or None."""
    digits = value[1:] if value.startswith("-") else value
    if not digits or not digits.isascii() or not digits.isdecimal():
        return None
    return int(value)


def _lines(text: str) -> list[str]:
    """Lines of a small debugfs/sysfs file: split on newlines, NUL bytes (sysfs ``ret + 1``)
    dropped."""
    return text.replace("\x00", "").split("\n")


def parse_xprt_info(text: str) -> Parsed[XprtInfo]:
    """A debugfs ``rpc_xprt/<n>/info`` file. None (with the reasons) unless it has a ``netid``,
    ``addr``, ``port`` and a hex ``state`` line."""
    values: dict[str, str] = {}
    skipped: list[str] = []
    for number, line in enumerate(_lines(text), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or not key or key != key.split()[0]:
            skipped.append(f"line {number}: not a 'key: value' line: {line[:80]!r}")
            continue
        if key in values:
            skipped.append(f"line {number}: {key!r} given twice; the first one kept")
            continue
        values[key] = value.strip()
    missing = [key for key in _XPRT_INFO_REQUIRED if key not in values]
    if missing:
        skipped.append(f"no {', '.join(missing)} line{'s' if len(missing) > 1 else ''}")
        return Parsed(None, skipped)
    state = _hex(values["state"])
    if state is None:
        skipped.append(f"state is not 0x<hex>: {values['state'][:40]!r}")
        return Parsed(None, skipped)
    netns: int | None = None
    if "netns" in values:
        netns = _decimal(values["netns"])
        if netns is None:
            skipped.append(f"netns is not a number: {values['netns'][:40]!r}")
    known = {*_XPRT_INFO_REQUIRED, "netns", "saddr"}
    return Parsed(XprtInfo(
        netid=values["netid"], addr=values["addr"], port=values["port"], state=state, netns=netns,
        saddr=values.get("saddr"), extra={k: v for k, v in values.items() if k not in known},
    ), skipped)


def xprt_dir_from_link(target: str) -> str | None:
    """The ``rpc_xprt`` directory name a client's ``xprt``/``xprtN`` symlink points to
    (``../../rpc_xprt/1a`` -> ``1a``), or None if the target does not look like one."""
    head, _, name = target.rstrip("/").rpartition("/")
    if not name or head.rpartition("/")[2] != "rpc_xprt":
        return None
    return name


def client_id_from_dirname(name: str) -> int | None:
    """debugfs ``rpc_clnt/<clid>`` directory name (hex, ``%x``) -> client id."""
    return _hex("0x" + name)


def sysfs_id_from_dirname(name: str, prefix: str) -> int | None:
    """sysfs ``clnt-5`` / ``switch-2`` / ``xprt-3-tcp`` (with prefix ``clnt`` / ``switch`` /
    ``xprt``) -> 5 / 2 / 3. sysfs prints ids in decimal, debugfs in hex."""
    head, sep, rest = name.partition("-")
    if head != prefix or not sep:
        return None
    return _decimal(rest.partition("-")[0]) if not rest.startswith("-") else None


# --- sysfs key=value files --------------------------------------------------------------------


def _key_values(text: str, skipped: list[str]) -> dict[str, str]:
    """``key=value`` lines (sysfs): first value of each key kept, everything else reported."""
    values: dict[str, str] = {}
    for number, line in enumerate(_lines(text), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key or key != key.split()[0]:
            skipped.append(f"line {number}: not a key=value line: {line[:80]!r}")
        elif key in values:
            skipped.append(f"line {number}: {key!r} given twice; the first one kept")
        else:
            values[key] = value.strip()
    return values


def _typed(values: dict[str, str], ints: tuple[str, ...], skipped: list[str]) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for key in ints:
        raw = values.get(key)
        number = None if raw is None else _decimal(raw)
        if raw is not None and number is None:
            skipped.append(f"{key} is not a number: {raw[:40]!r}")
        out[key] = number
    return out


SYSFS_XPRT_INFO_KEYS: tuple[str, ...] = (
    "last_used", "cur_cong", "cong_win", "max_num_slots", "min_num_slots", "num_reqs",
    "binding_q_len", "sending_q_len", "pending_q_len", "backlog_q_len", "main_xprt", "src_port",
    "tasks_queuelen",
)


@dataclass(frozen=True, slots=True)
class SysfsXprtInfo:
    """A sysfs ``xprt_info`` file. A key the kernel did not print (or printed as a non-number)
    is None. Queue lengths are tasks waiting now; the congestion values are in the kernel's
    RPC_CWNDSCALE units (256 per request in flight)."""

    last_used: int | None = None  # jiffies value (absolute) when the transport was last used
    cur_cong: int | None = None  # xprt->cong: congestion units in use
    cong_win: int | None = None  # xprt->cwnd: congestion window
    max_num_slots: int | None = None
    min_num_slots: int | None = None
    num_reqs: int | None = None  # request slots allocated
    binding_q_len: int | None = None  # tasks waiting for rpcbind
    sending_q_len: int | None = None  # tasks waiting to send (transport write lock)
    pending_q_len: int | None = None  # tasks waiting for a reply (or a connect)
    backlog_q_len: int | None = None  # tasks waiting for a request slot
    main_xprt: int | None = None  # 1 for the client's first transport (nconnect/trunking: others 0)
    src_port: int | None = None  # local port (0 for non-TCP)
    tasks_queuelen: int | None = None  # tasks that picked this transport
    dst_port: str | None = None  # server port as printed ("2049"; "0" for non-TCP)
    extra: dict[str, str] = field(default_factory=dict)  # unknown keys, as printed

    @property
    def dst_port_number(self) -> int | None:
        return None if self.dst_port is None else _decimal(self.dst_port)


def parse_sysfs_xprt_info(text: str) -> Parsed[SysfsXprtInfo]:
    """A sysfs ``xprt_info`` file. None unless at least one known key is there."""
    skipped: list[str] = []
    values = _key_values(text, skipped)
    known = {*SYSFS_XPRT_INFO_KEYS, "dst_port"}
    if not known & values.keys():
        skipped.append("no known xprt_info key")
        return Parsed(None, skipped)
    typed = _typed(values, SYSFS_XPRT_INFO_KEYS, skipped)
    return Parsed(SysfsXprtInfo(
        **typed, dst_port=values.get("dst_port"),
        extra={k: v for k, v in values.items() if k not in known},
    ), skipped)


@dataclass(frozen=True, slots=True)
class XprtSwitchInfo:
    """A sysfs ``xprt_switch_info`` file (the transports of one client, or of a group sharing them)."""

    num_xprts: int | None = None
    num_active: int | None = None
    num_unique_destaddr: int | None = None
    queue_len: int | None = None  # tasks queued on the switch's transports
    extra: dict[str, str] = field(default_factory=dict)


_SWITCH_KEYS = ("num_xprts", "num_active", "num_unique_destaddr", "queue_len")


def parse_xprt_switch_info(text: str) -> Parsed[XprtSwitchInfo]:
    skipped: list[str] = []
    values = _key_values(text, skipped)
    if not set(_SWITCH_KEYS) & values.keys():
        skipped.append("no known xprt_switch_info key")
        return Parsed(None, skipped)
    typed = _typed(values, _SWITCH_KEYS, skipped)
    return Parsed(XprtSwitchInfo(
        **typed, extra={k: v for k, v in values.items() if k not in _SWITCH_KEYS}), skipped)


# Name printed by rpc_sysfs_xprt_state_show -> XPRT_* bit (its own spelling: BOUNDING = BINDING).
SYSFS_STATE_NAMES: dict[str, int] = {
    "LOCKED": 0, "CONNECTED": 1, "CONNECTING": 2, "CLOSE_WAIT": 3, "BOUND": 4, "BOUNDING": 5,
    "CLOSING": 6, "OFFLINE": 7, "REMOVE": 8, "CONGESTED": 9, "CWND_WAIT": 10, "WRITE_SPACE": 11,
}


@dataclass(frozen=True, slots=True)
class XprtState:
    """A sysfs ``xprt_state`` file: the names printed, e.g. {"CONNECTED", "BOUND"}; {"CLOSED"}
    when no bit is set."""

    names: frozenset[str]

    @property
    def closed(self) -> bool:
        return "CLOSED" in self.names

    @property
    def connected(self) -> bool:
        return "CONNECTED" in self.names

    @property
    def connecting(self) -> bool:
        return "CONNECTING" in self.names

    @property
    def offline(self) -> bool:
        return "OFFLINE" in self.names

    @property
    def congested(self) -> bool:
        return "CONGESTED" in self.names

    @property
    def state(self) -> int:
        """The bits the known names stand for (unknown names and CLOSED add nothing)."""
        return sum(1 << SYSFS_STATE_NAMES[n] for n in self.names if n in SYSFS_STATE_NAMES)


def parse_xprt_state(text: str) -> Parsed[XprtState]:
    """A sysfs ``xprt_state`` file: one ``state=...`` line."""
    skipped: list[str] = []
    found: XprtState | None = None
    for number, line in enumerate(_lines(text), 1):
        if not line.strip():
            continue
        head, sep, rest = line.partition("=")
        if not sep or head.strip() != "state":
            skipped.append(f"line {number}: not a state= line: {line[:80]!r}")
        elif found is not None:
            skipped.append(f"line {number}: a second state= line")
        else:
            found = XprtState(frozenset(rest.split()))
    if found is None:
        skipped.append("no state= line")
    return Parsed(found, skipped)


def parse_sysfs_address(text: str) -> str | None:
    """A sysfs ``dstaddr`` / ``srcaddr`` file (``"%s\\n"`` plus a NUL): the address, or None if
    the file holds no single word."""
    words = text.replace("\x00", " ").split()
    return words[0] if len(words) == 1 else None
