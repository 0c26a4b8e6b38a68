"""/dev/kmsg records (``<prio>,<seq>,<ts_usec>,<flags>;<message>``, dictionary lines after)
and the kernel events they announce: NFS and lockd servers not responding and back, soft and
hard lockups, hung tasks, RCU stalls, oopses and their causes, warnings. Only facility-0
records count: nothing written from userspace carries facility 0. Pure; never raises. The
formats, with the kernel source of each: docs/kernel-interfaces.md, "kernel_log".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

LOG_KERN = 0

NFS_NOT_RESPONDING = "nfs_not_responding"
NFS_OK = "nfs_ok"
LOCKD_NOT_RESPONDING = "lockd_not_responding"
LOCKD_OK = "lockd_ok"
SOFT_LOCKUP = "soft_lockup"
HARD_LOCKUP = "hard_lockup"
HUNG_TASK = "hung_task"
RCU_STALL = "rcu_stall"
OOPS = "oops"
OOPS_CAUSE = "oops_cause"
WARNING = "warning"

EVENT_KINDS = (NFS_NOT_RESPONDING, NFS_OK, LOCKD_NOT_RESPONDING, LOCKD_OK, SOFT_LOCKUP,
               HARD_LOCKUP, HUNG_TASK, RCU_STALL, OOPS, OOPS_CAUSE, WARNING)
SERVER_KINDS = frozenset({NFS_NOT_RESPONDING, NFS_OK, LOCKD_NOT_RESPONDING, LOCKD_OK})

STILL_TRYING = "still trying"
TIMED_OUT = "timed out"

_MAX_DIGITS = 20  # u64; also keeps int() far from CPython's 4300-digit limit


@dataclass(frozen=True)
class KmsgRecord:
    """One /dev/kmsg record. Text is decoded from the unescaped bytes as UTF-8 with
    surrogateescape, so :func:`format_record` gives back the same bytes."""

    facility: int
    level: int
    seq: int
    timestamp_us: int  # since boot (the printk clock)
    flags: str  # "-", "c", "+" or "" (3.5 had no flags field)
    message: str
    properties: dict[str, str] = field(default_factory=dict)  # SUBSYSTEM=, DEVICE=, ...
    extra: tuple[str, ...] = ()  # header fields after the flags, e.g. ("caller=T123",)
    skipped_lines: int = 0  # lines after the header that were not " KEY=value"

    @property
    def prio(self) -> int:
        return self.facility << 3 | self.level

    @property
    def from_kernel(self) -> bool:
        return self.facility == LOG_KERN

    @property
    def caller(self) -> str | None:
        for value in self.extra:
            if value.startswith("caller="):
                return value[len("caller="):]
        return None


@dataclass(frozen=True)
class KernelEvent:
    kind: str  # one of EVENT_KINDS
    server: str = ""  # nfs_* / lockd_*: the server name as the kernel printed it
    cpu: int | None = None  # soft/hard lockup: the stuck CPU; warning: the CPU that warned
    task: str = ""  # "comm:pid" (soft lockup, hung task)
    detail: str = ""  # "still trying"/"timed out", "22s", "rcu_preempt", the oops text...


# --- escaping -------------------------------------------------------------------------------

_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")


def unescape(raw: bytes) -> bytes:
    r"""Undo the kernel's ``\xNN`` escaping. A backslash not followed by two hex digits
    (the kernel never writes one) is kept as it is."""
    if b"\\" not in raw:
        return raw
    return _ESCAPE.sub(lambda m: bytes((int(m[1], 16),)), raw)


def escape(data: bytes) -> bytes:
    """The kernel's escaping (``msg_add_ext_text``)."""
    return b"".join(b"\\x%02x" % c if c < 0x20 or c >= 0x7F or c == 0x5C else bytes((c,))
                    for c in data)


def _text(raw: bytes) -> str:
    return unescape(raw).decode("utf-8", "surrogateescape")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


# --- records --------------------------------------------------------------------------------


def _number(raw: bytes) -> int | None:
    if not raw or len(raw) > _MAX_DIGITS or not raw.isdigit():  # bytes.isdigit: ASCII only
        return None
    return int(raw)


def _as_bytes(data: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(data, str):
        try:
            return data.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return data.encode("utf-8", "surrogatepass")
    return bytes(data)


def _parse_header(line: bytes) -> KmsgRecord | None:
    head, sep, text = line.partition(b";")
    if not sep:
        return None
    fields = head.split(b",")
    if len(fields) < 3:
        return None
    prio, seq, ts = (_number(f) for f in fields[:3])
    if prio is None or seq is None or ts is None:
        return None
    try:
        rest = [f.decode("ascii") for f in fields[3:]]
    except UnicodeDecodeError:
        return None
    flags = rest[0] if rest else ""
    return KmsgRecord(prio >> 3, prio & 7, seq, ts, flags, _text(text), {}, tuple(rest[1:]))


def _parse_property(line: bytes) -> tuple[str, str] | None:
    if not line.startswith(b" "):
        return None
    key, sep, value = line[1:].partition(b"=")
    if not sep or not key:
        return None
    return _text(key), _text(value)


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def parse_record(data: bytes | bytearray | memoryview | str) -> KmsgRecord | None:
    """One record, as one read() of /dev/kmsg returns it; None if the header is not
    ``prio,seq,ts[,...];``. Lines after it that are not `` KEY=value`` are skipped and
    counted in ``skipped_lines``."""
    lines = _lines(_as_bytes(data))
    if not lines:
        return None
    record = _parse_header(lines[0])
    if record is None:
        return None
    properties: dict[str, str] = {}
    skipped = 0
    for line in lines[1:]:
        pair = _parse_property(line)
        if pair is None:
            skipped += 1
        else:
            properties[pair[0]] = pair[1]
    if not properties and not skipped:
        return record
    return KmsgRecord(record.facility, record.level, record.seq, record.timestamp_us,
                      record.flags, record.message, properties, record.extra, skipped)


def parse_records(data: bytes | bytearray | memoryview | str) -> tuple[list[KmsgRecord], int]:
    """Any number of records back to back (a saved ``cat /dev/kmsg``, or a read that
    returned more than one), and how many lines were skipped: a line that starts a
    record but has no valid header, with its dictionary lines, or a stray one."""
    records: list[KmsgRecord] = []
    skipped = 0
    current: KmsgRecord | None = None
    properties: dict[str, str] = {}

    def finish() -> None:
        if current is not None:
            records.append(KmsgRecord(current.facility, current.level, current.seq,
                                      current.timestamp_us, current.flags, current.message,
                                      properties, current.extra))

    for line in _lines(_as_bytes(data)):
        if line.startswith(b" "):
            pair = _parse_property(line) if current is not None else None
            if pair is None:
                skipped += 1
            else:
                properties[pair[0]] = pair[1]
            continue
        finish()
        current, properties = _parse_header(line), {}
        skipped += current is None and line != b""  # a blank line is no record, nor a bad one
    finish()
    return records, skipped


def format_record(record: KmsgRecord) -> bytes:
    """The record as the kernel writes it (the inverse of :func:`parse_record`)."""
    fields = [str(record.prio), str(record.seq), str(record.timestamp_us)]
    if record.flags or record.extra:
        fields.append(record.flags)
    fields.extend(record.extra)
    out = [",".join(fields).encode("ascii"), b";", escape(_bytes(record.message)), b"\n"]
    for key, value in record.properties.items():
        out += [b" ", escape(_bytes(key)), b"=", escape(_bytes(value)), b"\n"]
    return b"".join(out)


# --- events ---------------------------------------------------------------------------------

_RPC = re.compile(r"(?P<prog>[a-z0-9_]+): server (?P<server>\S+) "
                  r"(?:not responding, (?P<how>still trying|timed out)|OK)")
_RPC_KINDS = {"nfs": (NFS_NOT_RESPONDING, NFS_OK), "lockd": (LOCKD_NOT_RESPONDING, LOCKD_OK)}
_SOFT = re.compile(r"(?:(?:NMI )?watchdog: )?BUG: soft lockup"
                   r"(?: - CPU#(?P<cpu>\d+) stuck for (?P<secs>\d+)s!(?: \[(?P<task>.*:\d+)\])?"
                   r"| detected on CPU#(?P<cpu_old>\d+)!)?")
_HARD = re.compile(r"Watchdog detected hard LOCKUP on cpu (?P<cpu>\d+)")
_HUNG = re.compile(r"INFO: task (?P<task>.+:\d+) blocked for more than (?P<secs>\d+) seconds\.")
_RCU = re.compile(r"(?:rcu: )?INFO: (?P<flavor>rcu\w*) (?:self-)?detected (?:expedited )?stalls? on ")
_DIE = re.compile(r"(?P<what>.+?): (?P<code>[0-9a-fA-F]+) (?:ilc:\d+ )?\[#(?P<count>\d+)\]")
_CAUSE = re.compile(r"BUG: unable to handle |BUG: kernel NULL pointer dereference|kernel BUG at "
                    r"|Kernel BUG at |Unable to handle kernel |BUG: Kernel NULL pointer dereference"
                    r"|BUG: Unable to handle kernel ")
_WARN = re.compile(r"WARNING: (?:CPU: (?P<cpu>\d+) PID: \d+ at (?P<where>.+)"
                   r"|at (?P<where_old>.+?)(?:, CPU#(?P<cpu_new>\d+): .*)?"
                   r"|(?P<file>\S+:\d+) at (?P<where_new>.+?)(?:, CPU#(?P<cpu_new2>\d+): .*)?)")


def classify_message(message: str) -> KernelEvent | None:
    """The event a kernel message announces, judged by its text alone (first line)."""
    line = message.partition("\n")[0]
    if m := _RPC.fullmatch(line):
        kinds = _RPC_KINDS.get(m["prog"])
        if kinds is None:
            return None
        if m["how"]:
            return KernelEvent(kinds[0], server=m["server"], detail=m["how"])
        return KernelEvent(kinds[1], server=m["server"])
    if m := _SOFT.match(line):
        cpu = m["cpu"] or m["cpu_old"]
        return KernelEvent(SOFT_LOCKUP, cpu=int(cpu) if cpu else None, task=m["task"] or "",
                           detail=f"{m['secs']}s" if m["secs"] else "")
    if m := _HARD.search(line):
        return KernelEvent(HARD_LOCKUP, cpu=int(m["cpu"]))
    if m := _HUNG.match(line):
        return KernelEvent(HUNG_TASK, task=m["task"], detail=f"{m['secs']}s")
    if m := _RCU.match(line):
        return KernelEvent(RCU_STALL, detail=m["flavor"])
    if m := _DIE.match(line):
        return KernelEvent(OOPS, detail=f"{m['what']} [#{m['count']}]")
    if _CAUSE.match(line):
        return KernelEvent(OOPS_CAUSE, detail=line)
    if m := _WARN.fullmatch(line):
        cpu = m["cpu"] or m["cpu_new"] or m["cpu_new2"]
        where = m["where"] or m["where_old"] or f"{m['file']} {m['where_new']}"
        return KernelEvent(WARNING, cpu=int(cpu) if cpu else None, detail=where)
    return None


def classify(record: KmsgRecord) -> KernelEvent | None:
    """The event a record announces, if the kernel wrote it (facility 0): text written to
    /dev/kmsg from userspace never has facility 0, whatever it says."""
    if record.facility != LOG_KERN:
        return None
    return classify_message(record.message)
