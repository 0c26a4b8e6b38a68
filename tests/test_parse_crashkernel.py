"""crashkernel= resolution, checked against kernel/crash_reserve.c behaviour."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from panicwatch.parsers.crashkernel import (
    DEFAULT_LOW,
    CrashkernelRequest,
    CrashkernelSyntaxError,
    memparse,
    resolve,
    unresolved,
)

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
TABLE = "1G-4G:192M,4G-64G:256M,64G-:512M"


# --- plain sizes, offsets and memparse ----------------------------------------------------

@pytest.mark.parametrize(
    ("cmdline", "size", "offset"),
    [
        ("crashkernel=256M", 256 * MiB, None),
        ("crashkernel=256m", 256 * MiB, None),
        ("crashkernel=1G", 1 * GiB, None),
        ("crashkernel=524288K", 512 * MiB, None),
        ("crashkernel=268435456", 256 * MiB, None),
        ("crashkernel=256M@16M", 256 * MiB, 16 * MiB),
        ("crashkernel=128M@0x1000000", 128 * MiB, 16 * MiB),
        ("crashkernel=0x10000000", 256 * MiB, None),
        ("crashkernel=0X10000000", 256 * MiB, None),
        ("crashkernel=0x100M", 256 * MiB, None),
        ("crashkernel=0400M", 256 * MiB, None),  # octal 0400 = 256
        ("crashkernel=01000000000", 128 * MiB, None),  # octal bytes
    ],
)
def test_plain_size(cmdline: str, size: int, offset: int | None) -> None:
    value = cmdline.removeprefix("crashkernel=")
    assert resolve(f"BOOT_IMAGE=/vmlinuz ro {cmdline} quiet", 16 * GiB, "x86_64") == CrashkernelRequest(
        present=True, size=size, low=0, cma=0, offset=offset, high=False, auto=False,
        argument=value, error=None,
    )


@pytest.mark.parametrize(
    ("text", "value", "end"),
    [
        ("0", 0, 1),
        ("10", 10, 2),
        ("4k", 4 * KiB, 2),
        ("4K", 4 * KiB, 2),
        ("3m", 3 * MiB, 2),
        ("2g", 2 * GiB, 2),
        ("1T", 1 << 40, 2),
        ("1P", 1 << 50, 2),
        ("1E", 1 << 60, 2),
        ("0x1f", 31, 4),
        ("0xZ", 0, 1),  # "0x" not followed by a hex digit: the kernel reads "0"
        ("017", 15, 3),
        ("08", 0, 1),  # 8 is not an octal digit
        ("512M,high", 512 * MiB, 4),
        ("64Mx", 64 * MiB, 3),
    ],
)
def test_memparse(text: str, value: int, end: int) -> None:
    assert memparse(text) == (value, end)


def test_memparse_at_position() -> None:
    assert memparse("256M@16M", 5) == (16 * MiB, 8)


@pytest.mark.parametrize("text", ["", "M", "-1", "abc", ",high"])
def test_memparse_rejects_non_numbers(text: str) -> None:
    with pytest.raises(CrashkernelSyntaxError):
        memparse(text)


# --- range lists --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("ram", "size"),
    [
        (768 * MiB, 0),  # below the first range: nothing reserved, not an error
        (900 * MiB, 192 * MiB),  # rounds up to 1G
        (1 * GiB, 192 * MiB),
        (2 * GiB, 192 * MiB),
        (4 * GiB - 1 * MiB, 256 * MiB),  # rounds up to exactly 4G
        (4 * GiB - 128 * MiB, 192 * MiB),  # already a 128M multiple: stays below 4G
        (4 * GiB - 129 * MiB, 192 * MiB),
        (4 * GiB, 256 * MiB),  # end is exclusive
        (16 * GiB, 256 * MiB),
        (64 * GiB - 1, 512 * MiB),
        (64 * GiB, 512 * MiB),
        (1 << 40, 512 * MiB),
    ],
)
def test_range_list(ram: int, size: int) -> None:
    assert resolve(f"ro crashkernel={TABLE}", ram, "x86_64") == CrashkernelRequest(
        present=True, size=size, low=0, cma=0, offset=None, high=False, auto=False,
        argument=TABLE, error=None,
    )


def test_range_list_with_offset() -> None:
    r = resolve("crashkernel=1G-4G:192M,4G-:256M@16M", 8 * GiB, "x86_64")
    assert (r.size, r.offset, r.error) == (256 * MiB, 16 * MiB, None)


def test_range_list_offset_after_the_matched_entry_skips_the_rest() -> None:
    # The kernel skips the rest of the list after a match, then reads "@offset".
    r = resolve("crashkernel=1G-4G:192M,4G-:256M@32M", 2 * GiB, "x86_64")
    assert (r.size, r.offset, r.error) == (192 * MiB, 32 * MiB, None)


def test_range_list_no_match_ignores_offset() -> None:
    r = resolve("crashkernel=2G-4G:192M@16M", 1 * GiB, "x86_64")
    assert (r.size, r.offset, r.error, r.total) == (0, None, None, 0)


def test_range_list_hex_and_octal_values() -> None:
    r = resolve("crashkernel=0x40000000-0x100000000:0300M,0x100000000-:0x10000000", 8 * GiB, "x86_64")
    assert (r.size, r.error) == (256 * MiB, None)
    r = resolve("crashkernel=0x40000000-0x100000000:0300M,0x100000000-:0x10000000", 2 * GiB, "x86_64")
    assert (r.size, r.error) == (192 * MiB, None)  # octal 0300 = 192


def test_range_size_not_below_ram_invalidates_the_whole_argument() -> None:
    # The first range does not match 2G, but its size (4G) >= RAM: the kernel rejects all of it
    # even though the second range would have matched.
    r = resolve("crashkernel=4G-:4G,1G-4G:192M", 2 * GiB, "x86_64")
    assert r == CrashkernelRequest(
        present=True, size=0, low=0, cma=0, offset=None, high=False, auto=False,
        argument="4G-:4G,1G-4G:192M", error=f"size {4 * GiB} >= RAM {2 * GiB}",
    )
    assert r.total == 0


def test_range_size_compared_with_rounded_ram() -> None:
    # 1000M of RAM rounds up to 1024M: a 1000M range size is below that, 1024M is not.
    assert resolve("crashkernel=512M-:1000M", 1000 * MiB, "x86_64").size == 1000 * MiB
    r = resolve("crashkernel=512M-:1024M", 1000 * MiB, "x86_64")
    assert (r.size, r.error) == (0, f"size {1024 * MiB} >= RAM {1024 * MiB}")


def test_range_after_the_match_is_not_checked() -> None:
    # The kernel stops at the first match: a later oversized entry is never looked at.
    r = resolve("crashkernel=1G-4G:192M,4G-:64G", 2 * GiB, "x86_64")
    assert (r.size, r.error) == (192 * MiB, None)


@pytest.mark.parametrize("spec", ["4G-2G:128M", "4G-4G:128M"])
def test_range_end_not_after_start_is_invalid(spec: str) -> None:
    r = resolve(f"crashkernel={spec}", 16 * GiB, "x86_64")
    assert r == CrashkernelRequest(present=True, argument=spec, error="end <= start")


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("1G:128M", "'-' expected"),
        ("1G-4G;128M", "unrecognized char '-'"),  # no ':' at all: the simple syntax
        ("1G-4G;1:128M", "':' expected"),
        ("1G-4G:", "memory value expected at ''"),
        (":128M", "memory value expected at ':128M'"),
        ("1G-x:128M", "memory value expected at 'x:128M'"),
    ],
)
def test_range_syntax_errors(spec: str, error: str) -> None:
    r = resolve(f"crashkernel={spec}", 16 * GiB, "x86_64")
    assert (r.present, r.size, r.total, r.error) == (True, 0, 0, error)


# --- ,high / ,low / ,cma ------------------------------------------------------------------

@pytest.mark.parametrize(("arch", "low"), [("x86_64", 256 * MiB), ("aarch64", 128 * MiB), ("s390x", 0)])
def test_high_alone_gets_default_low(arch: str, low: int) -> None:
    r = resolve("crashkernel=512M,high", 16 * GiB, arch)
    assert r == CrashkernelRequest(
        present=True, size=512 * MiB, low=low, cma=0, offset=None, high=True, auto=False,
        argument="512M,high", error=None,
    )
    assert r.total == 512 * MiB + low


def test_default_low_table() -> None:
    assert {"x86_64": 256 * MiB, "aarch64": 128 * MiB} == DEFAULT_LOW


def test_high_with_explicit_low() -> None:
    r = resolve("crashkernel=72M,low crashkernel=1G,high", 16 * GiB, "x86_64")
    assert r == CrashkernelRequest(
        present=True, size=1 * GiB, low=72 * MiB, cma=0, offset=None, high=True, auto=False,
        argument="1G,high 72M,low", error=None,
    )
    assert r.total == 1 * GiB + 72 * MiB


def test_high_with_zero_low() -> None:
    r = resolve("crashkernel=512M,high crashkernel=0,low", 16 * GiB, "aarch64")
    assert (r.size, r.low, r.total, r.error) == (512 * MiB, 0, 512 * MiB, None)


def test_invalid_low_with_high_is_an_error() -> None:
    r = resolve("crashkernel=512M,high crashkernel=x,low", 16 * GiB, "x86_64")
    assert (r.size, r.low, r.total, r.error) == (0, 0, 0, "memory value expected at 'x,low'")


def test_plain_wins_over_high() -> None:
    r = resolve("crashkernel=1G,high crashkernel=256M crashkernel=64M,low", 16 * GiB, "x86_64")
    assert r == CrashkernelRequest(
        present=True, size=256 * MiB, low=0, cma=0, offset=None, high=False, auto=False,
        argument="256M", error=None,
    )


@pytest.mark.parametrize(
    ("cmdline", "size"),
    [
        ("crashkernel=128M crashkernel=256M", 256 * MiB),
        ("crashkernel=256M crashkernel=128M", 128 * MiB),
        ("crashkernel=auto crashkernel=320M", 320 * MiB),
        (f"crashkernel=128M crashkernel={TABLE}", 256 * MiB),
    ],
)
def test_last_plain_argument_wins(cmdline: str, size: int) -> None:
    r = resolve(cmdline, 16 * GiB, "x86_64")
    assert (r.size, r.error, r.argument) == (size, None, cmdline.split()[-1].removeprefix("crashkernel="))


def test_last_high_argument_wins() -> None:
    r = resolve("crashkernel=1G,high crashkernel=2G,high crashkernel=64M,low crashkernel=96M,low",
                16 * GiB, "x86_64")
    assert (r.size, r.low, r.argument) == (2 * GiB, 96 * MiB, "2G,high 96M,low")


def test_cma_is_counted_apart_from_total() -> None:
    r = resolve("crashkernel=256M crashkernel=1G,cma", 16 * GiB, "x86_64")
    assert r == CrashkernelRequest(
        present=True, size=256 * MiB, low=0, cma=1 * GiB, offset=None, high=False, auto=False,
        argument="256M", error=None,
    )
    assert r.total == 256 * MiB


def test_cma_with_high() -> None:
    r = resolve("crashkernel=512M,high crashkernel=2G,cma", 16 * GiB, "x86_64")
    assert (r.size, r.low, r.cma, r.total, r.high) == (512 * MiB, 256 * MiB, 2 * GiB, 768 * MiB, True)


@pytest.mark.parametrize(
    "cmdline", ["crashkernel=64M,low", "crashkernel=1G,cma", "crashkernel=64M,low crashkernel=1G,cma"],
)
def test_low_or_cma_alone_is_an_error(cmdline: str) -> None:
    r = resolve(cmdline, 16 * GiB, "x86_64")
    assert r == CrashkernelRequest(
        present=True, size=0, low=0, cma=0, argument=" ".join(
            t.removeprefix("crashkernel=") for t in cmdline.split()),
        error="crashkernel=,low/,cma without a size to reserve",
    )
    assert r.total == 0


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("512M,hig", "unrecognized char ','"),  # not a known suffix: a plain value
        ("256Mx", "unrecognized char 'x'"),
        ("", "memory value expected at ''"),
        ("auto,high", "memory value expected at 'auto,high'"),
        ("512M,low,high", "unrecognized '512M,low,high'"),
    ],
)
def test_syntax_errors(value: str, error: str) -> None:
    r = resolve(f"crashkernel={value}", 16 * GiB, "x86_64")
    assert (r.present, r.size, r.low, r.total, r.argument, r.error) == (True, 0, 0, 0, value, error)


# --- RHEL 8 crashkernel=auto --------------------------------------------------------------

@pytest.mark.parametrize(
    ("arch", "ram", "size"),
    [
        ("x86_64", 16 * GiB, 256 * MiB),
        ("x86_64", 2 * GiB, 192 * MiB),
        ("x86_64", 768 * MiB, 0),
        ("x86_64", 128 * GiB, 512 * MiB),
        ("s390x", 8 * GiB, 256 * MiB),
        ("aarch64", 16 * GiB, 480 * MiB),
        ("aarch64", 1 * GiB, 0),
        ("ppc64le", 32 * GiB, 1 * GiB),
    ],
)
def test_rhel8_auto(arch: str, ram: int, size: int) -> None:
    assert resolve("ro crashkernel=auto rhgb", ram, arch) == CrashkernelRequest(
        present=True, size=size, low=0, cma=0, offset=None, high=False, auto=True,
        argument="auto", error=None,
    )


def test_auto_table_size_not_below_ram_is_an_error() -> None:
    # 512M: the 64G-:512M entry is checked before the list runs out, and 512M >= RAM.
    r = resolve("crashkernel=auto", 512 * MiB, "x86_64")
    assert (r.size, r.total, r.argument, r.error) == (0, 0, "auto", f"size {512 * MiB} >= RAM {512 * MiB}")


def test_auto_without_a_table_for_the_arch() -> None:
    r = resolve("crashkernel=auto", 16 * GiB, "riscv64")
    assert r == CrashkernelRequest(present=True, argument="auto",
                                   error="crashkernel=auto has no table for riscv64")


# --- absent -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "cmdline",
    ["", "BOOT_IMAGE=/vmlinuz-6.8.0 root=/dev/sda1 ro quiet", "crashkernel", "crashkernel.size=256M",
     "crash_kexec_post_notifiers"],
)
def test_no_crashkernel(cmdline: str) -> None:
    r = resolve(cmdline, 16 * GiB, "x86_64")
    assert r == CrashkernelRequest(present=False)
    assert (r.size, r.low, r.cma, r.total, r.error) == (0, 0, 0, 0, None)


def test_proc_cmdline_trailing_newline() -> None:
    r = resolve("BOOT_IMAGE=/vmlinuz ro crashkernel=256M\n", 16 * GiB, "x86_64")
    assert (r.size, r.error) == (256 * MiB, None)


# --- deviations from the kernel (bugs) ----------------------------------------------------

def test_invalid_cma_does_not_invalidate_plain_size() -> None:
    r = resolve("crashkernel=256M crashkernel=x,cma", 16 * GiB, "x86_64")
    assert (r.size, r.cma, r.error) == (256 * MiB, 0, None)


def test_zero_high_is_invalid() -> None:
    r = resolve("crashkernel=0M,high", 16 * GiB, "x86_64")
    assert r.error is not None
    assert r.total == 0


def test_plain_size_not_below_ram_is_invalid() -> None:
    r = resolve("crashkernel=16G", 16 * GiB, "x86_64")
    assert r.error is not None
    assert r.total == 0


def test_trailing_text_after_offset_is_ignored_like_the_kernel() -> None:
    r = resolve("crashkernel=256M@16Mxyz", 16 * GiB, "x86_64")
    assert (r.size, r.offset, r.error) == (256 * MiB, 16 * MiB, None)


# --- unknown RAM --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("cmdline", "present", "argument"),
    [
        ("ro quiet", False, ""),
        ("ro crashkernel=1G-4G:192M,4G-:256M", True, "1G-4G:192M,4G-:256M"),
        ("crashkernel=512M,high crashkernel=128M,low", True, "512M,high 128M,low"),
    ],
)
def test_unresolved_keeps_presence_and_text_but_no_size(cmdline: str, present: bool,
                                                         argument: str) -> None:
    r = unresolved(cmdline)
    assert (r.present, r.argument, r.total, r.error, r.resolved) == (present, argument, 0, None,
                                                                      False)


# --- properties ---------------------------------------------------------------------------

RAM = st.integers(min_value=0, max_value=1 << 44)


@given(st.text(), RAM, st.sampled_from(["x86_64", "aarch64", "ppc64le", "s390x", "riscv64"]))
def test_resolve_never_raises_on_arbitrary_text(cmdline: str, ram: int, arch: str) -> None:
    r = resolve(cmdline, ram, arch)
    assert r.total >= 0
    assert r.present == any(t.startswith("crashkernel=") for t in cmdline.split())


TOKEN = st.one_of(
    st.text(alphabet="0123456789abcdefxXkKmMgGtTpPeE-:,@", max_size=30),
    st.sampled_from(["auto", ",high", ",low", ",cma", "1G-4G:192M,4G-:256M", "256M@16M", "0x", "@", "-:"]),
)


@given(
    st.lists(st.lists(TOKEN, min_size=1, max_size=4).map("".join), min_size=1, max_size=4),
    RAM,
    st.sampled_from(["x86_64", "aarch64", "ppc64le"]),
)
def test_resolve_never_raises_on_crashkernel_noise(values: list[str], ram: int, arch: str) -> None:
    r = resolve(" ".join(f"crashkernel={v}" for v in values), ram, arch)
    assert r.present
    assert r.total >= 0
    assert r.size >= 0 and r.low >= 0 and r.cma >= 0
    if r.error is not None:
        assert r.total == 0


def _mem(value: int, style: int) -> str:
    """A byte count (a MiB multiple) in one of the spellings memparse accepts."""
    if value == 0:
        return ["0", "0M", "0x0", "00"][style % 4]
    if style == 1 and value % GiB == 0:
        return f"{value // GiB}G"
    if style == 2:
        return f"{value:#x}"
    if style == 3:
        return f"0{value >> 20:o}M"
    if style == 4:
        return f"{value // KiB}k"
    return f"{value // MiB}M"


def _reference(ranges: list[tuple[int, int | None, int]], ram: int) -> int:
    total = -(-ram // (128 * MiB)) * (128 * MiB)
    for start, end, size in ranges:
        if start <= total and (end is None or total < end):
            return size
    return 0


@st.composite
def range_lists(draw: st.DrawFn) -> tuple[str, list[tuple[int, int | None, int]], int]:
    ram = draw(st.integers(min_value=1, max_value=1 << 42))
    total = -(-ram // (128 * MiB)) * (128 * MiB)
    ranges: list[tuple[int, int | None, int]] = []
    parts = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        start = draw(st.integers(min_value=0, max_value=1 << 22)) * MiB
        open_end = draw(st.booleans())
        end = None if open_end else start + draw(st.integers(min_value=1, max_value=1 << 22)) * MiB
        size = draw(st.integers(min_value=0, max_value=total // MiB - 1)) * MiB
        ranges.append((start, end, size))
        s1, s2, s3 = (draw(st.integers(0, 4)) for _ in range(3))
        parts.append(f"{_mem(start, s1)}-{'' if end is None else _mem(end, s2)}:{_mem(size, s3)}")
    return ",".join(parts), ranges, ram


@given(range_lists())
def test_range_lists_match_reference(case: tuple[str, list[tuple[int, int | None, int]], int]) -> None:
    spec, ranges, ram = case
    r = resolve(f"ro crashkernel={spec} quiet", ram, "x86_64")
    assert r.error is None
    assert r.size == _reference(ranges, ram)
    assert r.total == r.size
    assert r.total >= 0
