"""The kernel's sunrpc files: RPC tasks in flight (debugfs ``rpc_clnt/<clid>/tasks``), each
client's transport (debugfs ``rpc_xprt/<n>/info``) and the transports' queues (sysfs
``xprt-switches``, 5.14+).

Pure; never raises on malformed input: what cannot be read is left out, with a reason in
``skipped``. The formats across kernel versions: docs/kernel-interfaces.md, "rpc".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

T = TypeVar("T")

# RPC_CALL_MAJORSEEN (include/linux/sunrpc/sched.h, the same since 2.4): a hard task that hit a
# major timeout ("server not responding, still trying") and has had no reply since.
RPC_CALL_MAJORSEEN = 0x0020


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
    flags: int  # tk_flags, raw
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
        return bool(self.flags & RPC_CALL_MAJORSEEN)


@dataclass(frozen=True, slots=True)
class TasksFile:
    tasks: list[RpcTask]
    skipped: list[str]  # one reason per line left out


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
    """Every task line of a ``rpc_clnt/<clid>/tasks`` file; blank lines and the trailer lines
    of 2025+ kernels (whole, or cut short by the kernel and NUL-terminated) are not tasks and
    not skipped; any other line is reported in ``skipped``. Only ``\\n`` separates lines (a
    queue name could hold other line-breaking characters)."""
    tasks: list[RpcTask] = []
    skipped: list[str] = []
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
            if _TRAILER.fullmatch(piece.rstrip("\r")):
                pass
            elif k < last and (piece.startswith("clnt[") or "clnt[".startswith(piece)):
                pass  # a trailer cut short by the kernel, NUL-terminated
            else:
                skipped.append(f"line {number}: not a task line: {piece[:80]!r}")
    return TasksFile(tasks, skipped)


# --- debugfs rpc_xprt/<n>/info ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class XprtInfo:
    """A debugfs ``rpc_xprt/<n>/info`` file (other ``key: value`` lines of newer kernels,
    ``netns`` and ``saddr``, are read past)."""

    netid: str  # "tcp", "tcp6", "udp", "udp6", "rdma", "local"...
    addr: str  # the server address as printed (numeric, no brackets; a path for AF_LOCAL)
    port: str  # as printed: a decimal port, or "" / a name on odd transports
    state: int  # xprt->state bits


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


def _key_values(text: str, separator: str, skipped: list[str]) -> dict[str, str]:
    """``key<separator>value`` lines: the first value of each key kept, the rest reported."""
    values: dict[str, str] = {}
    for number, line in enumerate(_lines(text), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition(separator)
        key = key.strip()
        if not sep or not key or key != key.split()[0]:
            skipped.append(f"line {number}: not a key{separator}value line: {line[:80]!r}")
        elif key in values:
            skipped.append(f"line {number}: {key!r} given twice; the first one kept")
        else:
            values[key] = value.strip()
    return values


def parse_xprt_info(text: str) -> Parsed[XprtInfo]:
    """A debugfs ``rpc_xprt/<n>/info`` file. None (with the reasons) unless it has a ``netid``,
    ``addr``, ``port`` and a hex ``state`` line."""
    skipped: list[str] = []
    values = _key_values(text, ":", skipped)
    missing = [key for key in _XPRT_INFO_REQUIRED if key not in values]
    if missing:
        skipped.append(f"no {', '.join(missing)} line{'s' if len(missing) > 1 else ''}")
        return Parsed(None, skipped)
    state = _hex(values["state"])
    if state is None:
        skipped.append(f"state is not 0x<hex>: {values['state'][:40]!r}")
        return Parsed(None, skipped)
    return Parsed(XprtInfo(values["netid"], values["addr"], values["port"], state), skipped)


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


# --- sysfs xprt-switches/switch-<N>/xprt-<M>-<proto>/ ---------------------------------------------


@dataclass(frozen=True, slots=True)
class SysfsXprtInfo:
    """The queues of a sysfs ``xprt_info`` file. A key the kernel did not print (or printed as
    a non-number) is None. Congestion values are in RPC_CWNDSCALE units (256 a request)."""

    cur_cong: int | None = None  # xprt->cong: congestion units in use
    cong_win: int | None = None  # xprt->cwnd: congestion window
    binding_q_len: int | None = None  # tasks waiting for rpcbind
    sending_q_len: int | None = None  # tasks waiting to send (transport write lock)
    pending_q_len: int | None = None  # tasks waiting for a reply (or a connect)
    backlog_q_len: int | None = None  # tasks waiting for a request slot
    tasks_queuelen: int | None = None  # tasks that picked this transport


_SYSFS_KEYS = tuple(SysfsXprtInfo.__dataclass_fields__)
# Printed by every kernel with the file; a file with none of them is not an xprt_info.
_SYSFS_ALL_KEYS = frozenset({
    *_SYSFS_KEYS, "last_used", "max_num_slots", "min_num_slots", "num_reqs", "main_xprt",
    "src_port", "dst_port"})


def parse_sysfs_xprt_info(text: str) -> Parsed[SysfsXprtInfo]:
    """A sysfs ``xprt_info`` file (one key=value a line). None unless a known key is there."""
    skipped: list[str] = []
    values = _key_values(text, "=", skipped)
    if not _SYSFS_ALL_KEYS & values.keys():
        skipped.append("no known xprt_info key")
        return Parsed(None, skipped)
    typed: dict[str, int | None] = {}
    for key in _SYSFS_KEYS:
        raw = values.get(key)
        typed[key] = None if raw is None else _decimal(raw)
        if raw is not None and typed[key] is None:
            skipped.append(f"{key} is not a number: {raw[:40]!r}")
    return Parsed(SysfsXprtInfo(**typed), skipped)


def parse_sysfs_address(text: str) -> str | None:
    """A sysfs ``dstaddr`` / ``srcaddr`` file (``"%s\\n"`` plus a NUL): the address, or None if
    the file holds no single word."""
    words = text.replace("\x00", " ").split()
    return words[0] if len(words) == 1 else None
