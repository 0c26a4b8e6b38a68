"""pstore record names: ``<type>-<backend>-<id>[.enc.z]`` (fs/pstore/inode.c)."""

from __future__ import annotations

import re
from collections import Counter

# fs/pstore/platform.c pstore_type_names; longest first so "powerpc-ofw" is not "powerpc".
TYPES = sorted(
    ("dmesg", "mce", "console", "ftrace", "rtas", "powerpc-ofw", "powerpc-common", "pmsg",
     "powerpc-opal", "unknown"),
    key=len, reverse=True,
)
_RECORD = re.compile(r"^(?P<backend>.+)-(?P<id>\d+)(?:\.enc\.z)?$")


def parse_record_name(name: str) -> tuple[str, str] | None:
    """(backend, type) of a pstore file name, or None for anything else in the directory."""
    for type_ in TYPES:
        if name.startswith(type_ + "-"):
            m = _RECORD.match(name[len(type_) + 1 :])
            return (m["backend"], type_) if m else None
    return None


def count_records(names: list[str]) -> Counter[tuple[str, str]]:
    return Counter(r for r in map(parse_record_name, names) if r is not None)
