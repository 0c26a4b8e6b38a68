"""Small procfs/sysfs text formats: single values, /proc/meminfo, /proc/iomem, PSI."""

from __future__ import annotations

import re
from dataclasses import dataclass


class ParseError(ValueError):
    """The text is not in the format the kernel documents."""


def parse_int(text: str) -> int:
    """A sysctl or sysfs file holding one integer (``"1\\n"``)."""
    value = text.strip()
    try:
        return int(value)
    except ValueError:
        raise ParseError(f"expected an integer, got {value[:40]!r}") from None


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo as bytes (the kernel prints kB = KiB)."""
    result: dict[str, int] = {}
    for line in text.split("\n"):
        key, sep, rest = line.partition(":")
        fields = rest.split()
        if not sep or not fields or not (fields[0].isascii() and fields[0].isdigit()):
            continue
        scale = 1024 if fields[1:2] == ["kB"] else 1
        result[key.strip()] = int(fields[0]) * scale
    if "MemTotal" not in result:
        raise ParseError("no MemTotal line")
    return result


@dataclass(frozen=True)
class IomemRange:
    start: int
    end: int  # inclusive, as printed
    name: str
    depth: int  # nesting level (two spaces per level)

    @property
    def size(self) -> int:
        return self.end - self.start + 1 if self.end >= self.start else 0


_IOMEM_LINE = re.compile(r"^(?P<indent> *)(?P<start>[0-9a-fA-F]+)-(?P<end>[0-9a-fA-F]+) : (?P<name>.*)$")


def parse_iomem(text: str) -> tuple[list[IomemRange], int]:
    """/proc/iomem ranges, and how many unrecognised lines were skipped.

    Unprivileged readers see every address as 0. A line we cannot read loses only itself:
    the Crash kernel and System RAM ranges around it still count.
    """
    ranges, skipped = [], 0
    for line in text.split("\n"):
        m = _IOMEM_LINE.match(line)
        if not m:
            skipped += bool(line.strip())
            continue
        ranges.append(IomemRange(int(m["start"], 16), int(m["end"], 16), m["name"].strip(),
                                 len(m["indent"]) // 2))
    return ranges, skipped


def iomem_addresses_hidden(ranges: list[IomemRange]) -> bool:
    return bool(ranges) and all(r.start == 0 and r.end == 0 for r in ranges)


@dataclass(frozen=True)
class Pressure:
    some_total_us: int
    full_total_us: int | None  # "full" is missing for CPU on older kernels


def parse_pressure(text: str) -> Pressure:
    """/proc/pressure/<resource>: ``some avg10=0.00 avg60=0.00 avg300=0.00 total=123``."""
    totals: dict[str, int] = {}
    for line in text.split("\n"):
        kind, _, rest = line.partition(" ")
        for field in rest.split():
            key, _, value = field.partition("=")
            if key == "total" and value.isascii() and value.isdigit():
                totals[kind] = int(value)
    if "some" not in totals:
        raise ParseError("no 'some ... total=' line")
    return Pressure(totals["some"], totals.get("full"))
