"""Why the kernel panicked, from the dmesg a capture saved (vmcore-dmesg.txt, dmesg.<stamp>).

The reason is the text after ``Kernel panic - not syncing:``; the kind is the cause
the kernel reported before it. Numbers, addresses and PIDs are stripped so the
reason is a bounded label. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PANIC_MARKER = "Kernel panic - not syncing:"
LOOKBACK_LINES = 400
OOPS_CONTEXT = 10  # lines between a fault's description and its "Oops:" line
MAX_REASON = 100

# The panic message itself names the cause for these (kernel/watchdog.c, hung_task.c,
# rcu/tree_stall.h, sysrq.c, oom_kill.c, panic.c, mce/severity.c).
_FROM_MESSAGE = (
    ("sysrq", re.compile(r"sysrq triggered crash", re.I)),
    ("soft_lockup", re.compile(r"softlockup", re.I)),
    ("hard_lockup", re.compile(r"hard ?lockup", re.I)),
    ("hung_task", re.compile(r"hung_task|blocked tasks", re.I)),
    ("rcu_stall", re.compile(r"RCU Stall", re.I)),
    ("oom", re.compile(r"out of memory", re.I)),
    ("warning", re.compile(r"panic_on_warn")),
    ("machine_check", re.compile(r"machine check", re.I)),
    ("init_killed", re.compile(r"Attempted to kill init")),
    ("no_root_fs", re.compile(r"VFS: Unable to mount root fs")),
)
# Before ~4.19 the log says "SysRq : Trigger a crash" and the crash is a NULL dereference.
SYSRQ_CRASH = re.compile(r"(sysrq: )?SysRq ?: (SysRq : )?Trigger a crash|sysrq: Trigger a crash", re.I)
# Otherwise ("Fatal exception", ...) the nearest cause line before the panic decides.
_FROM_LOG = (
    ("sysrq", SYSRQ_CRASH),
    ("soft_lockup", re.compile(r"BUG: soft lockup")),
    ("hard_lockup", re.compile(r"Watchdog detected hard LOCKUP|NMI watchdog: .*hard LOCKUP")),
    ("hung_task", re.compile(r"INFO: task .* blocked for more than")),
    ("rcu_stall", re.compile(r"rcu: INFO: rcu_\w+ (self-)?detected stall|rcu_sched self-detected")),
    ("null_pointer", re.compile(
        r"BUG: (kernel|unable to handle kernel) NULL pointer dereference"
        r"|Unable to handle kernel NULL pointer dereference")),
    ("page_fault", re.compile(
        r"BUG: unable to handle (page fault|kernel paging request)"
        r"|Unable to handle kernel paging request")),
    ("general_protection", re.compile(r"general protection fault")),
    ("kernel_bug", re.compile(r"kernel BUG at")),
    ("machine_check", re.compile(r"Machine check|MCE: ")),
    ("oops", re.compile(r"Oops|Internal error: Oops")),
    ("warning", re.compile(r"WARNING: CPU: \d+ PID: \d+ at")),
)

_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]+\b|\b[0-9a-fA-F]{8,16}\b|\+0x[0-9a-f]+/0x[0-9a-f]+")
_PID_COMM = re.compile(r"\[[^\]\s]*?:\d+\]")
_NUMBER = re.compile(r"\d+")
_TIMESTAMP = re.compile(r"^(<\d+>)?\[\s*\d+\.\d+\]\s?")


@dataclass(frozen=True)
class PanicReason:
    reason: str
    kind: str


UNKNOWN = PanicReason("unknown", "unknown")


def normalize_reason(message: str) -> str:
    text = _ADDRESS.sub("", message)
    text = _PID_COMM.sub("", text)
    text = _NUMBER.sub("", text)
    text = re.sub(r"\s+", " ", text).strip(" .:,=#-")
    return text[:MAX_REASON] or "unknown"


def extract_panic_reason(dmesg: str) -> PanicReason:
    """The last panic in a dmesg text and its kind; UNKNOWN when there is none."""
    lines = dmesg.split("\n")
    at = next((i for i in range(len(lines) - 1, -1, -1) if PANIC_MARKER in lines[i]), None)
    if at is None:
        return UNKNOWN
    message = lines[at].split(PANIC_MARKER, 1)[1].strip()
    reason = normalize_reason(message)
    for kind, pattern in _FROM_MESSAGE:
        if pattern.search(message):
            return PanicReason(reason, kind)
    found = "other"
    window = lines[max(0, at - LOOKBACK_LINES) : at]
    since_last_panic = window[max((i + 1 for i, ln in enumerate(window) if PANIC_MARKER in ln),
                                  default=0):]
    if any(SYSRQ_CRASH.search(line) for line in since_last_panic):
        return PanicReason(reason, "sysrq")  # a deliberate crash, whatever fault it caused
    for distance, line in enumerate(reversed(window)):
        if PANIC_MARKER in line:
            break  # an earlier panic's context is not this one's
        kind = _cause_of(_TIMESTAMP.sub("", line))
        if kind is None:
            continue
        if found == "other":
            found, oops_at = kind, distance
            if kind not in ("oops", "warning"):
                break
        elif distance - oops_at <= OOPS_CONTEXT and kind not in ("oops", "warning"):
            # "Oops: 0000 [#1]" follows the line that says what the fault was.
            found = kind
            break
        elif distance - oops_at > OOPS_CONTEXT:
            break
    return PanicReason(reason, found)


def _cause_of(line: str) -> str | None:
    return next((kind for kind, pattern in _FROM_LOG if pattern.search(line)), None)
