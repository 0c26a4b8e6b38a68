"""/dev/kmsg records and kernel events: formats from kernel/printk/printk.c and the
format strings of the code that logs each event (see parsers/kmsg.py)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panicwatch.parsers.kmsg import (
    EVENT_KINDS,
    HARD_LOCKUP,
    HUNG_TASK,
    LOCKD_NOT_RESPONDING,
    LOCKD_OK,
    NFS_NOT_RESPONDING,
    NFS_OK,
    OOPS,
    OOPS_CAUSE,
    RCU_STALL,
    SOFT_LOCKUP,
    STILL_TRYING,
    TIMED_OUT,
    WARNING,
    KernelEvent,
    KmsgRecord,
    classify,
    classify_message,
    escape,
    format_record,
    parse_record,
    parse_records,
    unescape,
)

# Arbitrary input: at least 2000 draws each. Structured strategies cost more per draw, so fewer.
MANY = settings(max_examples=2000, deadline=None)
SOME = settings(max_examples=300, deadline=None)
FEWER = settings(max_examples=100, deadline=None)

# --- records ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # info_print_ext_header: "%u,%llu,%llu,%c%s;" then the escaped text and '\n'
        (b"5,1187,36863021,-;nfs: server filer01.example.com not responding, still trying\n",
         KmsgRecord(0, 5, 1187, 36863021, "-",
                    "nfs: server filer01.example.com not responding, still trying")),
        # CONFIG_PRINTK_CALLER adds ",caller=T<pid>" (or C<cpu>) after the flags
        (b"0,2310,912345678,-,caller=C3;watchdog: BUG: soft lockup - CPU#3 stuck for 22s! "
         b"[kworker/3:1:123]\n",
         KmsgRecord(0, 0, 2310, 912345678, "-",
                    "watchdog: BUG: soft lockup - CPU#3 stuck for 22s! [kworker/3:1:123]",
                    {}, ("caller=C3",))),
        # dev_printk records carry SUBSYSTEM and DEVICE as continuation lines
        (b"3,1020,2000000,-;usb 1-1: device descriptor read/64, error -71\n"
         b" SUBSYSTEM=usb\n DEVICE=c189:1\n",
         KmsgRecord(0, 3, 1020, 2000000, "-", "usb 1-1: device descriptor read/64, error -71",
                    {"SUBSYSTEM": "usb", "DEVICE": "c189:1"})),
        # escaped bytes: control characters, the backslash itself, and UTF-8 byte by byte
        (b"6,77,1000,-;caf\\xc3\\xa9 one\\x0atwo\\x09tab back\\x5cslash\n",
         KmsgRecord(0, 6, 77, 1000, "-", "caf\u00e9 one\ntwo\ttab back\\slash")),
        # bytes that are not UTF-8 survive as surrogates (and round-trip)
        (b"4,78,1001,-;bad \\xff\\xfe bytes\n", KmsgRecord(0, 4, 78, 1001, "-", "bad \udcff\udcfe bytes")),
        # escaped dictionary values, e.g. a netdev name in UTF-8
        (b"6,79,1002,-;wl\\xc3\\xa4n: link up\n SUBSYSTEM=net\n DEVICE=+net:wl\\xc3\\xa4n\n",
         KmsgRecord(0, 6, 79, 1002, "-", "wl\u00e4n: link up",
                    {"SUBSYSTEM": "net", "DEVICE": "+net:wl\u00e4n"})),
        # 'c' marks a continuation fragment; '+' the older kernels' continued fragment
        (b"4,80,1003,c;Hardware name: QEMU\n", KmsgRecord(0, 4, 80, 1003, "c", "Hardware name: QEMU")),
        (b"4,81,1004,+; PREEMPT SMP\n", KmsgRecord(0, 4, 81, 1004, "+", " PREEMPT SMP")),
        # 3.5 had no flags field
        (b"5,0,0;Linux version 3.5.0\n", KmsgRecord(0, 5, 0, 0, "", "Linux version 3.5.0")),
        # userspace: devkmsg_write forces LOG_USER; "<0>" gives prio 8, no prefix level 4 -> 12
        (b"8,470,27289064041,-;nfs: server spoofed.example not responding, still trying\n",
         KmsgRecord(1, 0, 470, 27289064041, "-",
                    "nfs: server spoofed.example not responding, still trying")),
        (b"30,9,5,-;systemd[1]: Started foo.service.\n", KmsgRecord(3, 6, 9, 5, "-",
                                                                  "systemd[1]: Started foo.service.")),
        # an empty message, unknown extra fields (readers are told to ignore them)
        (b"6,10,6,-;\n", KmsgRecord(0, 6, 10, 6, "-", "")),
        (b"6,11,7,-,caller=T1,future=x;hi\n", KmsgRecord(0, 6, 11, 7, "-", "hi", {},
                                                           ("caller=T1", "future=x"))),
        # a message without its newline (a truncated capture) still parses
        (b"6,12,8,-;no newline", KmsgRecord(0, 6, 12, 8, "-", "no newline")),
        # the largest u64 sequence number
        (b"6,18446744073709551615,8,-;last\n", KmsgRecord(0, 6, 18446744073709551615, 8, "-", "last")),
        # text input, as from a saved file
        ("6,13,9,-;text input\n", KmsgRecord(0, 6, 13, 9, "-", "text input")),
    ],
)
def test_parse_record(raw: bytes | str, expected: KmsgRecord) -> None:
    record = parse_record(raw)
    assert record == expected
    if isinstance(raw, bytes) and raw.endswith(b"\n"):
        assert format_record(record) == raw  # the kernel's bytes exactly


def test_record_properties() -> None:
    record = parse_record(b"8,470,1,-,caller=T4711;x\n")
    assert (record.prio, record.facility, record.level, record.from_kernel) == (8, 1, 0, False)
    assert record.caller == "T4711"
    kernel = parse_record(b"0,1,1,-;x\n")
    assert (kernel.prio, kernel.from_kernel, kernel.caller) == (0, True, None)


@pytest.mark.parametrize(
    "raw",
    [
        b"", b"\n", b"garbage\n", b"no semicolon,1,2,-\n", b"6,1,2,-\n",
        b"6,1;too few fields\n", b"6;x\n", b";x\n",
        b"a,1,2,-;not a number\n", b"6,b,2,-;x\n", b"6,1,c,-;x\n",
        b"-6,1,2,-;negative\n", b"+6,1,2,-;plus\n", b"6, 1,2,-;space\n", b"6,1_0,2,-;underscore\n",
        "6,\u0661,2,-;arabic-indic digit\n".encode(), b"6,,2,-;empty\n",
        b"1" * 21 + b",1,2,-;too many digits\n", b"6,1," + b"9" * 5000 + b",-;huge\n",
        b"6,1,2,\xff;non-ascii flags\n", b"6,1,2,-,caller=\xc3\xa9;non-ascii field\n",
        b" SUBSYSTEM=usb\n",  # a continuation line alone
        b"\x00\x01\x02",
    ],
)
def test_parse_record_malformed(raw: bytes) -> None:
    assert parse_record(raw) is None
    records, skipped = parse_records(raw)
    assert records == []
    assert skipped == len([line for line in raw.split(b"\n") if line])


def test_parse_record_skips_bad_continuation_lines() -> None:
    raw = b"6,5,9,-;msg\n SUBSYSTEM=pci\nnot a property\n NOEQUALS\n =novalue\n DEVICE=+pci:0000:00:01.0\n"
    assert parse_record(raw) == KmsgRecord(0, 6, 5, 9, "-", "msg",
                                           {"SUBSYSTEM": "pci", "DEVICE": "+pci:0000:00:01.0"}, (), 3)


def test_parse_records_back_to_back() -> None:
    data = (b"6,1,10,-;first\n SUBSYSTEM=usb\n"
            b" stray=line\n"  # belongs to the first record: a second property
            b"junk line\n SUBSYSTEM=lost\n"  # a bad header and its dictionary line
            b"4,2,11,-;second\n"
            b"4,3,12,-;third\n DEVICE=b8:0\n")
    records, skipped = parse_records(data)
    assert records == [
        KmsgRecord(0, 6, 1, 10, "-", "first", {"SUBSYSTEM": "usb", "stray": "line"}),
        KmsgRecord(0, 4, 2, 11, "-", "second"),
        KmsgRecord(0, 4, 3, 12, "-", "third", {"DEVICE": "b8:0"}),
    ]
    assert skipped == 2
    assert parse_records(b" SUBSYSTEM=x\n6,1,1,-;y\n") == ([KmsgRecord(0, 6, 1, 1, "-", "y")], 1)


def test_escape_unescape() -> None:
    assert escape(b"a\\b\n\x7f\xc3\xa9~ ") == b"a\\x5cb\\x0a\\x7f\\xc3\\xa9~ "
    assert unescape(b"a\\x5cb\\x0a\\x7F") == b"a\\b\n\x7f"
    assert unescape(b"trailing \\ and \\x4 and \\xZZ") == b"trailing \\ and \\x4 and \\xZZ"


# --- events -------------------------------------------------------------------------------

EVENTS = [
    # net/sunrpc/clnt.c: "%s: server %s not responding, still trying" / ", timed out" / " OK"
    ("nfs: server filer01.example.com not responding, still trying",
     KernelEvent(NFS_NOT_RESPONDING, server="filer01.example.com", detail=STILL_TRYING)),
    ("nfs: server 192.0.2.10 not responding, timed out",
     KernelEvent(NFS_NOT_RESPONDING, server="192.0.2.10", detail=TIMED_OUT)),
    ("nfs: server filer01.example.com OK", KernelEvent(NFS_OK, server="filer01.example.com")),
    ("nfs: server 2001:db8::a OK", KernelEvent(NFS_OK, server="2001:db8::a")),
    ("nfs: server fe80::1%eth0 not responding, still trying",
     KernelEvent(NFS_NOT_RESPONDING, server="fe80::1%eth0", detail=STILL_TRYING)),
    ("nfs: server 2001:0db8:0000:0000:0000:0000:0000:000a not responding, still trying",
     KernelEvent(NFS_NOT_RESPONDING, server="2001:0db8:0000:0000:0000:0000:0000:000a",
                 detail=STILL_TRYING)),
    ("nfs: server ::ffff:192.0.2.1 OK", KernelEvent(NFS_OK, server="::ffff:192.0.2.1")),
    ("lockd: server filer01 not responding, still trying",
     KernelEvent(LOCKD_NOT_RESPONDING, server="filer01", detail=STILL_TRYING)),
    ("lockd: server filer01 OK", KernelEvent(LOCKD_OK, server="filer01")),
    # kernel/watchdog.c (pr_fmt "watchdog: "; 4.x "NMI watchdog: "; 2.6/3.x none; 2.6.18 older)
    ("watchdog: BUG: soft lockup - CPU#3 stuck for 22s! [kworker/3:1:123]",
     KernelEvent(SOFT_LOCKUP, cpu=3, task="kworker/3:1:123", detail="22s")),
    ("NMI watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [swapper/0:0]",
     KernelEvent(SOFT_LOCKUP, cpu=0, task="swapper/0:0", detail="23s")),
    ("BUG: soft lockup - CPU#12 stuck for 67s! [java:40213]",
     KernelEvent(SOFT_LOCKUP, cpu=12, task="java:40213", detail="67s")),
    ("BUG: soft lockup detected on CPU#1!", KernelEvent(SOFT_LOCKUP, cpu=1)),
    # kernel/watchdog.c (6.x), kernel/watchdog_hld.c (4.x-6.x), panic() (before 4.x)
    ("watchdog: CPU3: Watchdog detected hard LOCKUP on cpu 4", KernelEvent(HARD_LOCKUP, cpu=4)),
    ("NMI watchdog: Watchdog detected hard LOCKUP on cpu 2", KernelEvent(HARD_LOCKUP, cpu=2)),
    ("Kernel panic - not syncing: Watchdog detected hard LOCKUP on cpu 0", KernelEvent(HARD_LOCKUP, cpu=0)),
    # kernel/hung_task.c (comm may contain ':')
    ("INFO: task kworker/u8:2:123 blocked for more than 120 seconds.",
     KernelEvent(HUNG_TASK, task="kworker/u8:2:123", detail="120s")),
    ("INFO: task cp:4711 blocked for more than 245 seconds.",
     KernelEvent(HUNG_TASK, task="cp:4711", detail="245s")),
    # kernel/rcu/tree_stall.h, tree_exp.h, tasks.h (pr_fmt "rcu: " since 4.20)
    ("rcu: INFO: rcu_sched self-detected stall on CPU", KernelEvent(RCU_STALL, detail="rcu_sched")),
    ("rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", KernelEvent(RCU_STALL, detail="rcu_preempt")),
    ("INFO: rcu_sched detected stalls on CPUs/tasks: { 3} (detected by 0, t=6002 jiffies, g=123, c=122, q=7)",
     KernelEvent(RCU_STALL, detail="rcu_sched")),
    ("rcu: INFO: rcu_preempt detected expedited stalls on CPUs/tasks: { 1-... } 5443 jiffies s: 49 "
     "root: 0x2/.",
     KernelEvent(RCU_STALL, detail="rcu_preempt")),
    ("INFO: rcu_tasks detected stalls on tasks:", KernelEvent(RCU_STALL, detail="rcu_tasks")),
    ("INFO: rcu_sched self-detected stall on CPU { 3}  (t=6000 jiffies g=1 c=0 q=2)",
     KernelEvent(RCU_STALL, detail="rcu_sched")),
    # die headers: arch/x86/kernel/dumpstack.c __die_header (6.9+ prefixes "Oops: "), arm64, ppc, s390
    ("Oops: 0000 [#1] SMP NOPTI", KernelEvent(OOPS, detail="Oops [#1]")),
    ("Oops: 0002 [#2] PREEMPT SMP PTI", KernelEvent(OOPS, detail="Oops [#2]")),
    ("Oops: Oops: 0000 [#1] SMP KASAN NOPTI", KernelEvent(OOPS, detail="Oops: Oops [#1]")),
    ("general protection fault: 0000 [#1] SMP", KernelEvent(OOPS, detail="general protection fault [#1]")),
    ("Oops: general protection fault, probably for non-canonical address 0xdffffc0000000001: 0000 [#1] "
     "PREEMPT SMP KASAN NOPTI",
     KernelEvent(OOPS, detail="Oops: general protection fault, probably for non-canonical address "
                              "0xdffffc0000000001 [#1]")),
    ("invalid opcode: 0000 [#1] SMP PTI", KernelEvent(OOPS, detail="invalid opcode [#1]")),
    ("Internal error: Oops: 0000000096000005 [#1] PREEMPT SMP",
     KernelEvent(OOPS, detail="Internal error: Oops [#1]")),
    ("Oops: Kernel access of bad area, sig: 11 [#1]",
     KernelEvent(OOPS, detail="Oops: Kernel access of bad area, sig [#1]")),
    ("Oops: 0004 ilc:3 [#1] SMP", KernelEvent(OOPS, detail="Oops [#1]")),
    # what went wrong, printed before the die header of the same oops
    ("BUG: kernel NULL pointer dereference, address: 0000000000000008",
     KernelEvent(OOPS_CAUSE, detail="BUG: kernel NULL pointer dereference, address: 0000000000000008")),
    ("BUG: unable to handle page fault for address: ffffffffc0a01000",
     KernelEvent(OOPS_CAUSE, detail="BUG: unable to handle page fault for address: ffffffffc0a01000")),
    ("BUG: unable to handle kernel NULL pointer dereference at           (null)",
     KernelEvent(OOPS_CAUSE,
                 detail="BUG: unable to handle kernel NULL pointer dereference at           (null)")),
    ("kernel BUG at fs/nfs/inode.c:1234!",
     KernelEvent(OOPS_CAUSE, detail="kernel BUG at fs/nfs/inode.c:1234!")),
    ("Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000",
     KernelEvent(OOPS_CAUSE, detail="Unable to handle kernel NULL pointer dereference at virtual address "
                                    "0000000000000000")),
    # kernel/panic.c __warn
    ("WARNING: CPU: 3 PID: 1 at mm/page_alloc.c:4416 __alloc_pages+0x2d0/0x3c0",
     KernelEvent(WARNING, cpu=3, detail="mm/page_alloc.c:4416 __alloc_pages+0x2d0/0x3c0")),
    ("WARNING: CPU: 0 PID: 0 at rcu_init+0x1/0x2", KernelEvent(WARNING, cpu=0, detail="rcu_init+0x1/0x2")),
    ("WARNING: at kernel/watchdog.c:230 watchdog_overflow_callback+0x9a/0xc0()",
     KernelEvent(WARNING, detail="kernel/watchdog.c:230 watchdog_overflow_callback+0x9a/0xc0()")),
    ("WARNING: fs/nfs/write.c:12 at nfs_commit+0x1/0x2, CPU#3: kworker/3:1/123",
     KernelEvent(WARNING, cpu=3, detail="fs/nfs/write.c:12 nfs_commit+0x1/0x2")),
    # not events
    ("------------[ cut here ]------------", None),
    ("WARNING: possible circular locking dependency detected", None),
    ("Kernel panic - not syncing: Hard LOCKUP", None),
    ("Kernel panic - not syncing: softlockup: hung tasks", None),
    ("Kernel panic - not syncing: hung_task: blocked tasks", None),
    ("rpc_check_timeout: 3 callbacks suppressed", None),
    ("nfsacl: server filer01 not responding, still trying", None),
    ("NFS: server filer01 error: fileid changed", None),
    ("nfs: server filer01 not responding, still trying (extra)", None),
    ("nfs: server  not responding, still trying", None),
    ("INFO: task cp:4711 is blocked on a mutex likely owned by task cp:4712.", None),
    ("  nfs: server filer01 OK", None),
    ("", None),
]


@pytest.mark.parametrize(("message", "expected"), EVENTS)
def test_classify_message(message: str, expected: KernelEvent | None) -> None:
    assert classify_message(message) == expected
    record = KmsgRecord(0, 4, 1, 1, "-", message)
    assert classify(record) == expected  # facility 0: the kernel's
    assert classify(parse_record(format_record(record))) == expected


def test_every_kind_has_an_example() -> None:
    assert {e.kind for _, e in EVENTS if e} == set(EVENT_KINDS)


def test_first_line_only() -> None:
    assert classify_message("nfs: server a OK\nsecond line") == KernelEvent(NFS_OK, server="a")
    assert classify_message("something\nnfs: server a OK") is None


@pytest.mark.parametrize("prio", [8, 12, 14, 11, 15, 30, 8 * 23 + 7, 255 * 8])
def test_userspace_spoof_is_not_an_event(prio: int) -> None:
    """devkmsg_write never stores facility 0, so "<0>nfs: server ..." arrives with prio 8."""
    raw = f"{prio},470,27289064041,-;nfs: server spoofed.example not responding, still trying\n".encode()
    record = parse_record(raw)
    assert record.facility == prio >> 3 != 0
    assert classify(record) is None
    assert classify_message(record.message) == KernelEvent(
        NFS_NOT_RESPONDING, server="spoofed.example", detail=STILL_TRYING)


def test_kernel_record_with_dictionary_is_classified() -> None:
    record = parse_record(b"0,1,1,-;watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [a b:9]\n"
                          b" SUBSYSTEM=cpu\n")
    assert classify(record) == KernelEvent(SOFT_LOCKUP, cpu=1, task="a b:9", detail="26s")


# --- fuzz ---------------------------------------------------------------------------------


@MANY
@given(st.binary(max_size=300))
def test_fuzz_bytes_never_raise(data: bytes) -> None:
    record = parse_record(data)
    records, skipped = parse_records(data)
    assert skipped >= 0
    for r in [*records, *([record] if record else [])]:
        classify(r)
        format_record(r)


@MANY
@given(st.text(max_size=200))
def test_fuzz_text_never_raises(text: str) -> None:
    parse_record(text)
    parse_records(text)
    event = classify_message(text)
    assert event is None or event.kind in EVENT_KINDS


HEADERISH = st.text(alphabet="0123456789,;-c+ =\\x\n", max_size=60)


@SOME
@given(HEADERISH, st.binary(max_size=40))
def test_fuzz_near_headers(head: str, tail: bytes) -> None:
    """Text close to the header grammar reaches the branches random bytes rarely do."""
    data = head.encode() + tail
    record = parse_record(data)
    if record is not None:
        assert data.split(b"\n")[0].count(b";") >= 1
        assert 0 <= record.level <= 7


KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"


def _message(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


RECORDS = st.builds(
    KmsgRecord,
    facility=st.integers(0, 255),
    level=st.integers(0, 7),
    seq=st.integers(0, 2**64 - 1),
    timestamp_us=st.integers(0, 2**64 - 1),
    flags=st.sampled_from(["-", "c", "+"]),
    message=st.binary(max_size=200).map(_message),
    properties=st.dictionaries(st.text(alphabet=KEY_CHARS, min_size=1, max_size=12),
                               st.binary(max_size=40).map(_message), max_size=3),
    extra=st.lists(st.builds("caller={}{}".format, st.sampled_from("TC"), st.integers(0, 2**31)),
                   max_size=1).map(tuple),
)


@SOME
@given(RECORDS)
def test_fuzz_round_trip(record: KmsgRecord) -> None:
    raw = format_record(record)
    assert raw.count(b"\n") == 1 + len(record.properties)  # no raw newline inside a line
    assert all(32 <= c < 127 or c == 10 for c in raw)  # everything else escaped
    assert parse_record(raw) == record


@FEWER
@given(st.lists(RECORDS, max_size=5))
def test_fuzz_round_trip_back_to_back(records: list[KmsgRecord]) -> None:
    assert parse_records(b"".join(format_record(r) for r in records)) == (records, 0)


LABELS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20).map(
    lambda label: label.strip("-") or "x")
HOSTNAMES = st.lists(LABELS, min_size=1, max_size=4).map(".".join)


def _ipv6_forms(address: ipaddress.IPv6Address) -> st.SearchStrategy[str]:
    return st.sampled_from([address.compressed, address.exploded, address.compressed.upper(),
                            f"{address.compressed}%eth0"])


SERVERS = st.one_of(HOSTNAMES, st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).flatmap(_ipv6_forms))


@SOME
@given(SERVERS, st.sampled_from(["nfs", "lockd"]), st.sampled_from([STILL_TRYING, TIMED_OUT, "OK"]))
def test_fuzz_server_names(server: str, program: str, what: str) -> None:
    text = f"{program}: server {server} " + ("OK" if what == "OK" else f"not responding, {what}")
    event = classify_message(text)
    down, up = (NFS_NOT_RESPONDING, NFS_OK) if program == "nfs" else (LOCKD_NOT_RESPONDING, LOCKD_OK)
    if what == "OK":
        assert event == KernelEvent(up, server=server)
    else:
        assert event == KernelEvent(down, server=server, detail=what)
    record = parse_record(f"5,1,1,-;{text}\n")
    assert classify(record) == event
    assert classify(KmsgRecord(1, 5, 1, 1, "-", text)) is None
