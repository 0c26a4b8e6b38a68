"""Recognise the crash dumps that distribution tools leave in the crash directory.

RHEL/Fedora (kdump-utils):  <ip>-YYYY-MM-DD-HH:MM:SS/{vmcore,vmcore-dmesg.txt}
    while writing:          vmcore-incomplete, vmcore-dmesg-incomplete.txt
    to ssh/raw:             vmcore.flat;   `kdumpctl test`: kdump-test-<id>/ (not a crash)
Debian/Ubuntu (kdump-tools): YYYYMMDDhhmm/{dump.<stamp>,dmesg.<stamp>}, dump-incomplete,
    vmcore.<stamp> when makedumpfile failed; <ip|host>-<stamp> on remote targets
SUSE (kdump):               YYYY-MM-DD-HH-MM/{vmcore,dmesg,README.txt},
    older kdumptool:        YYYY-MM-DD-HH:MM/{vmcore,dmesg.txt,README.txt}
Pure: works on names; the collector does the directory listing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

_LAYOUTS = (
    ("rhel", re.compile(r"^(?:.+-)?(\d{4}-\d{2}-\d{2}-\d{2}:\d{2}:\d{2})$"), "%Y-%m-%d-%H:%M:%S"),
    ("debian", re.compile(r"^(?:.+-)?(\d{12})$"), "%Y%m%d%H%M"),
    ("suse", re.compile(r"^(?:.+-)?(\d{4}-\d{2}-\d{2}-\d{2}-\d{2})$"), "%Y-%m-%d-%H-%M"),
    ("suse", re.compile(r"^(?:.+-)?(\d{4}-\d{2}-\d{2}-\d{2}:\d{2})$"), "%Y-%m-%d-%H:%M"),
)
TEST_DUMP_PREFIX = "kdump-test-"

_DUMP_FILE = re.compile(r"^(vmcore(\.flat|\.\d{12})?|dump\.\d{12})$")
_INCOMPLETE_FILE = re.compile(r"^(vmcore-incomplete|dump-incomplete|vmcore-dmesg-incomplete\.txt)$")
_DMESG_FILES = ("vmcore-dmesg.txt", "dmesg.txt", "dmesg", "vmcore-dmesg-incomplete.txt")
_DMESG_STAMPED = re.compile(r"^dmesg\.\d{12}$")


@dataclass(frozen=True)
class DumpDirName:
    layout: str  # rhel, debian, suse, or "unknown" for a dir that only holds dump files
    stamp: datetime | None  # naive local time of the capture, from the name


@lru_cache(maxsize=4096)  # every scrape lists the same names; strptime is slow
def classify_dir(name: str) -> DumpDirName | None:
    """A dump directory's layout and time from its name, or None if the name is not one."""
    if name.startswith(TEST_DUMP_PREFIX):
        return None
    for layout, pattern, fmt in _LAYOUTS:
        m = pattern.match(name)
        if m:
            try:
                return DumpDirName(layout, datetime.strptime(m.group(1), fmt))
            except ValueError:
                return None
    return None


def is_dump_file(name: str) -> bool:
    return bool(_DUMP_FILE.match(name) or _INCOMPLETE_FILE.match(name)) and "dmesg" not in name


def is_incomplete_marker(name: str) -> bool:
    return bool(_INCOMPLETE_FILE.match(name))


def core_file(names: Sequence[str]) -> str | None:
    """The dump file itself (vmcore, dump.<stamp>, ...), preferring a finished one."""
    finished = sorted(n for n in names if _DUMP_FILE.match(n))
    if finished:
        return finished[-1]
    partial = sorted(n for n in names if is_dump_file(n))
    return partial[-1] if partial else None


def dmesg_file(names: Sequence[str]) -> str | None:
    """The dmesg the capture saved beside the dump, preferring the finished one."""
    present = set(names)
    for candidate in _DMESG_FILES:
        if candidate in present:
            return candidate
    stamped = sorted(n for n in names if _DMESG_STAMPED.match(n))
    return stamped[-1] if stamped else None
