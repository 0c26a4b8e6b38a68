"""Resolve ``crashkernel=`` the way the kernel does, and the distributions' size tables.

Follows kernel/crash_reserve.c (crash_core.c before 6.9): the last argument of
each kind wins, a plain ``crashkernel=`` beats ``,high``/``,low``, range lists
match ``start <= RAM < end`` with RAM rounded up to 128 MiB, and any range whose
size is >= RAM makes the whole argument invalid. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MiB = 1 << 20
GiB = 1 << 30
_SUFFIXES = ("high", "low", "cma")
_SHIFT = {"k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")

# Low memory the kernel adds when only ,high is given (DEFAULT_CRASH_KERNEL_LOW_SIZE):
# x86_64 max(swiotlb default 64M + 8M, 256M); arm64 128M.
DEFAULT_LOW = {"x86_64": 256 * MiB, "aarch64": 128 * MiB}

# RHEL 8 kernels resolve crashkernel=auto with these built-in tables (RHEL 8.5+ values,
# from Red Hat's "Supported kdump configurations and targets").
RHEL8_AUTO = {
    "x86_64": "1G-4G:192M,4G-64G:256M,64G-:512M",
    "s390x": "1G-4G:192M,4G-64G:256M,64G-:512M",
    "aarch64": "2G-:480M",
    "ppc64le": "2G-4G:384M,4G-16G:512M,16G-64G:1G,64G-128G:2G,128G-:4G",
}


class CrashkernelSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class CrashkernelRequest:
    """What the command line asks the kernel to reserve on this machine."""

    present: bool  # any crashkernel= argument at all
    size: int = 0  # the main (or ,high) region
    low: int = 0  # the ,low region (explicit or the kernel's default)
    cma: int = 0  # ,cma: reserved as CMA, not counted in kexec_crash_size
    offset: int | None = None
    high: bool = False
    auto: bool = False
    argument: str = ""  # the argument(s) that decided, for messages
    error: str | None = None  # the kernel would reject it and reserve nothing
    resolved: bool = True  # False: the RAM size was unknown, so sizes are not known either

    @property
    def total(self) -> int:
        """Bytes that should show as reserved (kexec_crash_size + the low region)."""
        return self.size + self.low


def memparse(text: str, pos: int = 0) -> tuple[int, int]:
    """The kernel's memparse(): a C integer (0x.., 0.. octal) with an optional K/M/G/T/P/E."""
    m = _NUMBER.match(text, pos)
    if not m:
        raise CrashkernelSyntaxError(f"memory value expected at {text[pos:]!r}")
    digits = m.group()
    if digits[:2].lower() == "0x":
        value = int(digits, 16)
    else:
        value = int(digits, 8) if digits.startswith("0") else int(digits)
    end = m.end()
    if end < len(text) and text[end].lower() in _SHIFT:
        value <<= _SHIFT[text[end].lower()]
        end += 1
    return value, end


def round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


def resolve_ranges(spec: str, system_ram: int) -> tuple[int, int]:
    """Resolve ``start-[end]:size[,...]`` for this RAM; returns (size, end offset in spec).

    A size of 0 means no range matched: the kernel reserves nothing, which is not an error.
    """
    total = round_up(system_ram, 128 * MiB)
    pos = 0
    while True:
        start, pos = memparse(spec, pos)
        if spec[pos : pos + 1] != "-":
            raise CrashkernelSyntaxError("'-' expected")
        pos += 1
        end = None
        if spec[pos : pos + 1] != ":":
            end, pos = memparse(spec, pos)
            if end <= start:
                raise CrashkernelSyntaxError("end <= start")
        if spec[pos : pos + 1] != ":":
            raise CrashkernelSyntaxError("':' expected")
        size, pos = memparse(spec, pos + 1)
        if size >= total:
            raise CrashkernelSyntaxError(f"size {size} >= RAM {total}")
        if start <= total and (end is None or total < end):
            return size, pos
        if spec[pos : pos + 1] != ",":
            return 0, pos
        pos += 1


def _parse_simple(value: str, system_ram: int) -> tuple[int, int | None]:
    first_colon, first_space = value.find(":"), value.find(" ")
    if first_colon >= 0 and (first_space < 0 or first_colon < first_space):
        size, pos = resolve_ranges(value, system_ram)
        rest = value[pos:]
        # The kernel skips the rest of the list and only then looks for @offset.
        at = rest.find("@")
        if size and at >= 0:
            return size, memparse(rest, at + 1)[0]
        return size, None
    size, pos = memparse(value)
    if size >= system_ram:
        raise CrashkernelSyntaxError(f"size {size} >= RAM {system_ram}")
    if pos == len(value):
        return size, None
    if value[pos] == "@":
        # The kernel reads what number it can after '@' (none is 0) and ignores the rest.
        try:
            return size, memparse(value, pos + 1)[0]
        except CrashkernelSyntaxError:
            return size, 0
    raise CrashkernelSyntaxError(f"unrecognized char {value[pos]!r}")


def _parse_suffixed(value: str, suffix: str) -> int:
    size, pos = memparse(value)
    if value[pos:] != f",{suffix}":
        raise CrashkernelSyntaxError(f"unrecognized {value!r}")
    return size


def crashkernel_arguments(cmdline: str) -> dict[str | None, str]:
    """The last crashkernel= value of each kind (None = plain), as the kernel picks them."""
    found: dict[str | None, str] = {}
    for token in cmdline.split():
        if not token.startswith("crashkernel="):
            continue
        value = token.removeprefix("crashkernel=")
        suffix = next((s for s in _SUFFIXES if value.endswith(f",{s}")), None)
        found[suffix] = value
    return found


def resolve(cmdline: str, system_ram: int, arch: str) -> CrashkernelRequest:
    """What crashkernel= on this command line reserves on a machine with ``system_ram``."""
    args = crashkernel_arguments(cmdline)
    if not args:
        return CrashkernelRequest(present=False)
    plain = args.get(None)
    try:
        cma = _parse_suffixed(args["cma"], "cma") if "cma" in args else 0
    except CrashkernelSyntaxError:
        cma = 0  # the kernel ignores a bad ,cma and still reserves the main region
    try:
        if plain is not None:
            if plain == "auto":
                table = RHEL8_AUTO.get(arch)
                if table is None:
                    raise CrashkernelSyntaxError(f"crashkernel=auto has no table for {arch}")
                size, _ = resolve_ranges(table, system_ram)
                return CrashkernelRequest(True, size, cma=cma, auto=True, argument="auto")
            size, offset = _parse_simple(plain, system_ram)
            return CrashkernelRequest(True, size, cma=cma, offset=offset, argument=plain)
        if "high" in args:
            size = _parse_suffixed(args["high"], "high")
            if size == 0:
                raise CrashkernelSyntaxError("crashkernel=,high of 0")
            default_low = DEFAULT_LOW.get(arch, 0)
            low = _parse_suffixed(args["low"], "low") if "low" in args else default_low
            used = " ".join(args[k] for k in ("high", "low") if k in args)
            return CrashkernelRequest(True, size, low, cma, high=True, argument=used)
        # ,low (or ,cma) alone reserves nothing: the kernel needs a plain or ,high size.
        return CrashkernelRequest(True, 0, argument=" ".join(args.values()),
                                  error="crashkernel=,low/,cma without a size to reserve")
    except CrashkernelSyntaxError as e:
        return CrashkernelRequest(True, argument=" ".join(args.values()), error=str(e))


def unresolved(cmdline: str) -> CrashkernelRequest:
    """The request as far as it is known without the RAM size: present or not, and its text."""
    args = crashkernel_arguments(cmdline)
    return CrashkernelRequest(bool(args), argument=" ".join(args.values()), resolved=False)
