"""A task's ``stat`` and ``stack`` files (proc(5)), and what a task in D waits on: ``rpc``
(a sunrpc frame: the server or the network), ``nfs`` (an NFS client frame, no RPC of its
own), ``other``. Pure; never raises on malformed input. The classification rules and why:
docs/kernel-interfaces.md, "blocked_tasks".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

WAITS = ("nfs", "rpc", "other")


class TaskStat(NamedTuple):
    state: str  # field 3: R, S, D, Z, T, t, X, I, ...
    num_threads: int  # field 20 (of the thread group)
    start: int  # field 22: start time in clock ticks after boot (with pid/tid: the task's identity)


def parse_stat(data: bytes | str) -> TaskStat | None:
    """``/proc/<pid>/stat`` or ``/proc/<pid>/task/<tid>/stat``; None if it is not one.

    The command name (field 2) is in parentheses and may itself hold spaces and ``)``: the
    fields that follow start after the *last* ``)``."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    close = data.rfind(b")")
    if close < 0:
        return None
    fields = data[close + 1 :].split(None, 20)  # fields[0] is field 3, fields[19] field 22
    if len(fields) < 20 or len(fields[0]) != 1:
        return None
    try:
        return TaskStat(chr(fields[0][0]), int(fields[17]), int(fields[19]))
    except ValueError:
        return None


class Frame(NamedTuple):
    symbol: str  # without offset/size: "rpc_wait_bit_killable"
    module: str  # "sunrpc" for "[sunrpc]", "" for the kernel proper


# "[<0>] rpc_wait_bit_killable+0x1e/0x90 [sunrpc]"; the address is zeroed for all but
# kernels before 4.15-ish, which printed "[<ffffffffa0123456>] ..."; "?" marks unreliable frames.
_FRAME = re.compile(r"^\s*(?:\[<[0-9a-fA-Fx]*>\]\s*)?(?:\?\s*)?([^\s+\[\]]+)(?:\+\S*)?(?:\s+\[([^\]\s]+)\])?")


def parse_stack(text: str) -> list[Frame]:
    """The frames of ``/proc/<pid>/task/<tid>/stack``, innermost first; unreadable lines skipped."""
    frames = []
    for line in text.split("\n"):
        m = _FRAME.match(line)
        if m:
            frames.append(Frame(m.group(1), m.group(2) or ""))
    return frames


_RPC_MODULES = frozenset({"sunrpc", "auth_rpcgss", "rpcsec_gss_krb5", "rpcrdma", "xprtrdma"})
_RPC_SYMBOL = re.compile(r"(?:rpc|xprt|rpcauth|rpcb|gss)_")
# sunrpc's task state machine (net/sunrpc/clnt.c): only these call_* are sunrpc's own, other
# call_* exist elsewhere (call_rwsem_down_write_failed, call_usermodehelper_exec, ...).
_RPC_CALL_STEPS = frozenset({
    "call_start", "call_reserve", "call_reserveresult", "call_retry_reserve", "call_refresh",
    "call_refreshresult", "call_allocate", "call_encode", "call_bind", "call_bind_status",
    "call_connect", "call_connect_status", "call_transmit", "call_transmit_status",
    "call_bc_encode", "call_bc_transmit", "call_bc_transmit_status", "call_status",
    "call_timeout", "call_decode",
})
_SERVER_SYMBOL = re.compile(r"(?:svc|cache_)")  # svc_process, svcauth_*, cache_check [sunrpc]
_NFS_SYMBOL = re.compile(r"(?:p?nfs\d*|nlmclnt)_")  # nfs_, nfs4_, nfs41_, pnfs_; not nfsd_


def _bare(symbol: str) -> str:
    return symbol.lstrip("_").split(".", 1)[0]


def frame_class(frame: Frame) -> str:
    """``rpc``, ``nfs`` or ``other`` for one frame (or one wchan symbol, with no module)."""
    name = _bare(frame.symbol)
    if _SERVER_SYMBOL.match(name):
        return "other"  # sunrpc's server side (nfsd, the NFSv4 callback service), not a client RPC
    module = frame.module
    if module in _RPC_MODULES:
        return "rpc"
    if module in ("nfs", "nfsv2", "nfsv3", "nfsv4") or module.startswith("nfs_layout"):
        return "nfs"
    if _RPC_SYMBOL.match(name) or name in _RPC_CALL_STEPS:
        return "rpc"
    if _NFS_SYMBOL.match(name):
        return "nfs"
    return "other"


def classify(wchan: str | None, frames: Iterable[Frame] = ()) -> str:
    """What a blocked task waits on: ``rpc`` if any frame (or wchan) is sunrpc's, else ``nfs`` if
    any is the NFS client's, else ``other``. See the module docstring for why that order."""
    seen = {frame_class(f) for f in frames}
    symbol = (wchan or "").strip()
    if symbol and symbol != "0":
        seen.add(frame_class(Frame(symbol, "")))
    if "rpc" in seen:
        return "rpc"
    if "nfs" in seen:
        return "nfs"
    return "other"


def is_plain_task(data: bytes) -> bool:
    """The common case, checked without parsing: a well-formed stat of a task that is not in D
    (nor a zombie) and alone in its thread group. The kernel puts one space between fields."""
    close = data.rfind(b")")
    if close < 0:
        return False
    fields = data[close + 2 :].split(b" ", 18)
    return len(fields) == 19 and fields[17] == b"1" and fields[0] not in (b"D", b"Z")
