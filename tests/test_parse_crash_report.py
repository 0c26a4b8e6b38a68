"""Crash reports: the title, kind and panic reason of the crash in a kernel log."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from panicwatch.parsers.crash_report import (
    KINDS,
    MAX_REASON,
    CrashReport,
    normalize_reason,
    parse_crash_report,
)

FIXTURES = Path(__file__).parent / "fixtures"


def assert_bounded(report: CrashReport) -> None:
    """Labels built from a report stay short and printable whatever the log held."""
    assert 0 < len(report.title) <= 120 and report.title.isprintable()
    assert len(report.reason) <= MAX_REASON and not any(ch.isdecimal() for ch in report.reason)
    assert report.kind in KINDS
    for value in (report.function, report.module, report.kernel_release, report.comm):
        assert value is None or (0 < len(value) <= 120 and value.isprintable())
    assert len(report.stack) <= 32 and all(f.isprintable() for f in report.stack)
    assert len(report.signature) == 12


def reason_and_kind(log: str) -> tuple[str, str]:
    report = parse_crash_report(log)
    assert report is not None
    return report.reason, report.kind

BOOT = """\
[    0.000000] Linux version 6.8.0-31-generic (buildd@lcy02-amd64-080) (x86_64-linux-gnu-gcc-13) #31-Ubuntu SMP
[    0.000000] Command line: BOOT_IMAGE=/vmlinuz-6.8.0-31-generic root=/dev/sda1 ro crashkernel=512M
[    1.234567] systemd[1]: Detected virtualization kvm.
[   12.345678] EXT4-fs (sda1): mounted filesystem 5c2a5c2e-1b1a-4d6e-9d3f-0e8f0e0f0a0b r/w with ordered data mode.
"""  # noqa: E501

SYSRQ = BOOT + """\
[  123.456789] sysrq: Trigger a crash
[  123.456801] Kernel panic - not syncing: sysrq triggered crash
[  123.456822] CPU: 2 PID: 4321 Comm: bash Kdump: loaded Not tainted 6.8.0-31-generic #31-Ubuntu
[  123.456840] Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.3-debian-1.16.3-2 04/01/2014
[  123.456851] Call Trace:
[  123.456860]  <TASK>
[  123.456871]  dump_stack_lvl+0x48/0x70
[  123.456884]  panic+0x33e/0x370
[  123.456897]  sysrq_handle_crash+0x1a/0x20
[  123.456910]  __handle_sysrq+0xd8/0x1d0
[  123.456922]  write_sysrq_trigger+0x2b/0x40
[  123.456934]  </TASK>
"""

SOFT_LOCKUP = BOOT + """\
[  456.789012] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [stress:1234]
[  456.789034] Modules linked in: nfsd auth_rpcgss nfs_acl lockd grace sunrpc
[  456.789050] CPU: 1 PID: 1234 Comm: stress Kdump: loaded Not tainted 5.14.0-427.el9.x86_64 #1
[  456.789067] RIP: 0010:native_queued_spin_lock_slowpath+0x21/0x30
[  456.789101] Call Trace:
[  456.789110]  <IRQ>
[  456.789120]  watchdog_timer_fn+0x1b3/0x210
[  456.789130]  </IRQ>
[  456.789201] Kernel panic - not syncing: softlockup: hung tasks
[  456.789222] CPU: 1 PID: 1234 Comm: stress Kdump: loaded Tainted: G             L     -------  ---  5.14.0
"""

HARD_LOCKUP = BOOT + """\
[  789.012345] watchdog: Watchdog detected hard LOCKUP on cpu 3
[  789.012356] Modules linked in: xfs libcrc32c
[  789.012370] CPU: 3 PID: 0 Comm: swapper/3 Kdump: loaded Not tainted 6.8.0-31-generic #31-Ubuntu
[  789.012390] RIP: 0010:intel_idle+0x59/0xa0
[  789.012456] Kernel panic - not syncing: Hard LOCKUP
[  789.012470] CPU: 3 PID: 0 Comm: swapper/3 Kdump: loaded Not tainted 6.8.0-31-generic #31-Ubuntu
"""

HUNG_TASK = BOOT + """\
[ 1000.123456] INFO: task nfsd:812 blocked for more than 120 seconds.
[ 1000.123470]       Not tainted 5.14.0-427.el9.x86_64 #1
[ 1000.123480] "echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.
[ 1000.123490] task:nfsd            state:D stack:0     pid:812   ppid:2      flags:0x00004000
[ 1000.123500] Call Trace:
[ 1000.123510]  __schedule+0x21b/0x550
[ 1000.123520]  schedule+0x2d/0x70
[ 1000.123600] Kernel panic - not syncing: hung_task: blocked tasks
[ 1000.123620] CPU: 0 PID: 38 Comm: khungtaskd Kdump: loaded Not tainted 5.14.0-427.el9.x86_64 #1
"""

RCU_STALL = BOOT + """\
[ 2100.000001] rcu: INFO: rcu_preempt self-detected stall on CPU
[ 2100.000010] rcu: 	3-....: (20999 ticks this GP) idle=2b4c/1/0x4000000000000000 softirq=5051/5051 fqs=5250
[ 2100.000020] rcu: 	(t=21000 jiffies g=88389 q=1234 ncpus=8)
[ 2100.000030] CPU: 3 PID: 5678 Comm: spin Kdump: loaded Not tainted 6.8.0-31-generic #31-Ubuntu
[ 2100.000100] Kernel panic - not syncing: RCU Stall
"""  # noqa: E501

NULL_POINTER = BOOT + """\
[  321.000001] BUG: kernel NULL pointer dereference, address: 0000000000000008
[  321.000010] #PF: supervisor read access in kernel mode
[  321.000020] #PF: error_code(0x0000) - not-present page
[  321.000030] PGD 0 P4D 0
[  321.000040] Oops: 0000 [#1] PREEMPT SMP NOPTI
[  321.000050] CPU: 5 PID: 2345 Comm: insmod Kdump: loaded Tainted: G           OE      6.8.0-31-generic #31
[  321.000060] Hardware name: Dell Inc. PowerEdge R650/0PYXKY, BIOS 1.8.2 12/01/2022
[  321.000070] RIP: 0010:broken_init+0x15/0x30 [broken]
[  321.000080] Code: 90 90 90 90 90 90 90 90 90 90 90 f3 0f 1e fa 0f 1f 44 00 00 55 48 8b 04 25 08 00 00 00
[  321.000090] RSP: 0018:ffffb3c1c0d3bc40 EFLAGS: 00010246
[  321.000100] RAX: 0000000000000000 RBX: 0000000000000000 RCX: 0000000000000000
[  321.000110] CR2: 0000000000000008 CR3: 0000000112d8e006 CR4: 00000000007706f0
[  321.000120] Call Trace:
[  321.000130]  <TASK>
[  321.000140]  ? show_regs+0x6d/0x80
[  321.000150]  ? __die+0x24/0x80
[  321.000160]  ? page_fault_oops+0x99/0x1b0
[  321.000170]  ? do_user_addr_fault+0x2ee/0x6b0
[  321.000180]  ? exc_page_fault+0x83/0x1b0
[  321.000190]  ? asm_exc_page_fault+0x27/0x30
[  321.000200]  do_one_initcall+0x5e/0x310
[  321.000210]  do_init_module+0x60/0x240
[  321.000220]  </TASK>
[  321.000230] Modules linked in: broken(OE+) xfs nvme
[  321.000240] CR2: 0000000000000008
[  321.000250] ---[ end trace 0000000000000000 ]---
[  321.000260] RIP: 0010:broken_init+0x15/0x30 [broken]
[  321.000300] Kernel panic - not syncing: Fatal exception
[  321.000310] Kernel Offset: 0x2a00000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)
"""  # noqa: E501

PAGE_FAULT = BOOT + """\
[  654.000001] BUG: unable to handle page fault for address: ffffc90000a7b000
[  654.000010] #PF: supervisor write access in kernel mode
[  654.000020] #PF: error_code(0x0002) - not-present page
[  654.000030] PGD 100000067 P4D 100000067 PUD 1001b2067 PMD 10a9a4067 PTE 0
[  654.000040] Oops: 0002 [#1] PREEMPT SMP NOPTI
[  654.000050] CPU: 0 PID: 999 Comm: kworker/0:2 Not tainted 6.8.0-31-generic #31-Ubuntu
[  654.000060] RIP: 0010:memcpy_orig+0x31/0x140
[  654.000070] Call Trace:
[  654.000080]  <TASK>
[  654.000090]  process_one_work+0x178/0x350
[  654.000100]  </TASK>
[  654.000200] Kernel panic - not syncing: Fatal exception in interrupt
"""

GPF = BOOT + """\
[  777.000001] general protection fault, probably for non-canonical address 0xdead000000000122: 0000 [#1] PREEMPT SMP NOPTI
[  777.000010] CPU: 6 PID: 3141 Comm: kworker/6:1 Kdump: loaded Not tainted 6.1.0-18-amd64 #1  Debian 6.1.76-1
[  777.000020] RIP: 0010:list_del+0x1c/0x60
[  777.000030] Call Trace:
[  777.000040]  <TASK>
[  777.000050]  release_task+0x2a/0x40
[  777.000060]  </TASK>
[  777.000100] Kernel panic - not syncing: Fatal exception
"""  # noqa: E501

KERNEL_BUG = BOOT + """\
[  888.000001] ------------[ cut here ]------------
[  888.000010] kernel BUG at mm/slub.c:123!
[  888.000020] invalid opcode: 0000 [#1] PREEMPT SMP NOPTI
[  888.000030] CPU: 4 PID: 2718 Comm: kswapd0 Kdump: loaded Not tainted 5.14.0-427.el9.x86_64 #1
[  888.000040] RIP: 0010:__slab_free+0x2a5/0x2f0
[  888.000050] Call Trace:
[  888.000060]  <TASK>
[  888.000070]  kmem_cache_free+0x2b5/0x2d0
[  888.000080]  </TASK>
[  888.000100] Kernel panic - not syncing: Fatal exception
"""

KERNEL_BUG_OOPS_PREFIX = BOOT + """\
[  888.000001] ------------[ cut here ]------------
[  888.000010] kernel BUG at mm/slub.c:123!
[  888.000020] Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI
[  888.000030] CPU: 4 PID: 2718 Comm: kswapd0 Kdump: loaded Not tainted 6.10.0 #1
[  888.000040] RIP: 0010:__slab_free+0x2a5/0x2f0
[  888.000100] Kernel panic - not syncing: Fatal exception
"""

WARNING = BOOT + """\
[  999.000001] ------------[ cut here ]------------
[  999.000010] WARNING: CPU: 2 PID: 345 at net/core/dev.c:3186 skb_warn_bad_offload+0x7a/0xe0
[  999.000020] Modules linked in: bonding tls
[  999.000030] CPU: 2 PID: 345 Comm: ksoftirqd/2 Kdump: loaded Not tainted 6.8.0-31-generic #31-Ubuntu
[  999.000040] RIP: 0010:skb_warn_bad_offload+0x7a/0xe0
[  999.000100] Kernel panic - not syncing: kernel: panic_on_warn set ...
"""

INIT_KILLED = BOOT + """\
[    3.210000] Run /sbin/init as init process
[    3.456789] init[1]: segfault at 0 ip 00007f1c2a3b4c5d sp 00007ffd1e2f3a40 error 4 in libc.so.6[7f1c2a300000+195000]
[    3.456900] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009
[    3.457000] CPU: 0 PID: 1 Comm: init Not tainted 6.8.0-31-generic #31-Ubuntu
"""  # noqa: E501


@pytest.mark.parametrize(
    ("dmesg", "reason", "kind"),
    [
        pytest.param(SYSRQ, "sysrq triggered crash", "sysrq", id="sysrq"),
        pytest.param(SOFT_LOCKUP, "softlockup: hung tasks", "soft_lockup", id="soft_lockup"),
        pytest.param(HARD_LOCKUP, "Hard LOCKUP", "hard_lockup", id="hard_lockup"),
        pytest.param(HUNG_TASK, "hung_task: blocked tasks", "hung_task", id="hung_task"),
        pytest.param(RCU_STALL, "RCU Stall", "rcu_stall", id="rcu_stall"),
        pytest.param(NULL_POINTER, "Fatal exception", "null_pointer", id="null_pointer"),
        pytest.param(PAGE_FAULT, "Fatal exception in interrupt", "page_fault", id="page_fault"),
        pytest.param(GPF, "Fatal exception", "general_protection", id="general_protection"),
        pytest.param(KERNEL_BUG, "Fatal exception", "kernel_bug", id="kernel_bug"),
        pytest.param(KERNEL_BUG_OOPS_PREFIX, "Fatal exception", "kernel_bug", id="kernel_bug_oops_prefix"),
        pytest.param(WARNING, "kernel: panic_on_warn set", "warning", id="warning"),
        pytest.param(INIT_KILLED, "Attempted to kill init! exitcode", "init_killed", id="init_killed"),
    ],
)
def test_panics(dmesg: str, reason: str, kind: str) -> None:
    assert reason_and_kind(dmesg) == (reason, kind)


@pytest.mark.parametrize(
    ("message", "reason", "kind"),
    [
        ("Out of memory: system-wide panic_on_oom is enabled",
         "Out of memory: system-wide panic_on_oom is enabled", "oom"),
        ("Out of memory and no killable processes...", "Out of memory and no killable processes", "oom"),
        ("Fatal machine check", "Fatal machine check", "machine_check"),
        ("VFS: Unable to mount root fs on unknown-block(0,0)",
         "VFS: Unable to mount root fs on unknown-block(,)", "no_root_fs"),
        ("panic_on_warn set ...", "panic_on_warn set", "warning"),
        ("SysRq triggered crash", "SysRq triggered crash", "sysrq"),
        ("Watchdog detected hard LOCKUP on cpu 7", "Watchdog detected hard LOCKUP on cpu", "hard_lockup"),
        ("something odd happened", "something odd happened", "other"),
        ("Fatal exception", "Fatal exception", "other"),
    ],
)
def test_kind_from_message(message: str, reason: str, kind: str) -> None:
    dmesg = BOOT + f"[  100.000000] Kernel panic - not syncing: {message}\n"
    assert reason_and_kind(dmesg) == (reason, kind)


def test_no_report_is_none_and_a_report_without_panic_has_no_reason() -> None:
    assert parse_crash_report(BOOT) is None
    assert parse_crash_report("") is None
    # An Oops without a panic (panic_on_oops=0) is still the crash, but nothing panicked.
    no_panic = parse_crash_report(
        NULL_POINTER.replace("Kernel panic - not syncing: Fatal exception", ""))
    assert no_panic is not None
    assert no_panic.title == "BUG: unable to handle kernel NULL pointer dereference in broken_init"
    assert (no_panic.panicked, no_panic.panic_message, no_panic.reason) == (False, None, "unknown")


def test_two_panics_last_one_wins() -> None:
    # e.g. a dmesg that kept the previous boot's panic before this one's.
    assert reason_and_kind(SYSRQ + HUNG_TASK) == ("hung_task: blocked tasks", "hung_task")
    assert reason_and_kind(HUNG_TASK + SYSRQ) == ("sysrq triggered crash", "sysrq")


def test_earlier_panic_context_is_not_used() -> None:
    # The NULL dereference belongs to the first panic; the second one's cause is unknown.
    dmesg = NULL_POINTER + "[  400.000000] Kernel panic - not syncing: Fatal exception\n"
    assert reason_and_kind(dmesg) == ("Fatal exception", "other")


def test_oops_without_a_described_fault() -> None:
    dmesg = BOOT + """\
[  100.000000] Oops: 0000 [#1] SMP
[  100.000010] CPU: 0 PID: 1 Comm: x Not tainted 6.8.0 #1
[  100.000020] Kernel panic - not syncing: Fatal exception
"""
    assert reason_and_kind(dmesg) == ("Fatal exception", "oops")


def test_fault_before_the_oops_is_its_report() -> None:
    filler = "".join(f"[  100.{i:06d}] filler line {i}\n" for i in range(11))
    dmesg = BOOT + (
        "[   99.000000] BUG: kernel NULL pointer dereference, address: 0000000000000008\n"
        + filler
        + "[  101.000000] Oops: 0000 [#1] SMP\n"
        "[  101.000010] Kernel panic - not syncing: Fatal exception\n"
    )
    # The BUG: line starts the report that the Oops line continues, however far apart.
    assert reason_and_kind(dmesg) == ("Fatal exception", "null_pointer")


def test_warning_then_fault_picks_the_fault() -> None:
    dmesg = BOOT + """\
[  100.000000] BUG: unable to handle page fault for address: ffffc90000a7b000
[  100.000010] Oops: 0002 [#1] SMP
[  100.000020] WARNING: CPU: 0 PID: 1 at kernel/exit.c:812 do_exit+0x8f3/0xb00
[  100.000030] Kernel panic - not syncing: Fatal exception
"""
    assert reason_and_kind(dmesg) == ("Fatal exception", "page_fault")


def test_arm64_internal_error_paging_request() -> None:
    dmesg = BOOT + """\
[  200.000000] Unable to handle kernel paging request at virtual address ffff800081234000
[  200.000010] Mem abort info:
[  200.000020]   ESR = 0x0000000096000007
[  200.000030] Internal error: Oops: 0000000096000007 [#1] PREEMPT SMP
[  200.000040] Modules linked in: xfs
[  200.000050] Kernel panic - not syncing: Oops: Fatal exception
"""
    assert reason_and_kind(dmesg) == ("Oops: Fatal exception", "page_fault")


def test_arm64_null_pointer() -> None:
    dmesg = BOOT + """\
[  200.000000] Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008
[  200.000010] Mem abort info:
[  200.000020]   ESR = 0x0000000096000005
[  200.000030] Internal error: Oops: 0000000096000005 [#1] PREEMPT SMP
[  200.000040] Modules linked in: xfs
[  200.000050] Kernel panic - not syncing: Oops: Fatal exception
"""
    assert reason_and_kind(dmesg) == ("Oops: Fatal exception", "null_pointer")


def test_rhel7_sysrq_crash() -> None:
    dmesg = BOOT + """\
[  500.000000] SysRq : Trigger a crash
[  500.000010] BUG: unable to handle kernel NULL pointer dereference at           (null)
[  500.000020] IP: [<ffffffff8144ef26>] sysrq_handle_crash+0x16/0x20
[  500.000030] PGD 8000000012a4e067 PUD 12a4f067 PMD 0
[  500.000040] Oops: 0002 [#1] SMP
[  500.000050] CPU: 0 PID: 1234 Comm: bash Not tainted 3.10.0-1160.el7.x86_64 #1
[  500.000100] Kernel panic - not syncing: Fatal exception
"""
    assert reason_and_kind(dmesg)[1] == "sysrq"


def test_sysrq_with_old_prefix_format() -> None:
    # 4.20-5.6 printed "sysrq: SysRq : Trigger a crash".
    dmesg = BOOT + """\
[  500.000000] sysrq: SysRq : Trigger a crash
[  500.000010] Oops: 0002 [#1] SMP
[  500.000100] Kernel panic - not syncing: Fatal exception
"""
    assert reason_and_kind(dmesg) == ("Fatal exception", "sysrq")


def test_syslog_prefix_and_crlf() -> None:
    dmesg = "<0>[  100.000000] Kernel panic - not syncing: hung_task: blocked tasks\r\n"
    assert reason_and_kind(dmesg) == ("hung_task: blocked tasks", "hung_task")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("Attempted to kill init! exitcode=0x0000000b", "Attempted to kill init! exitcode"),
        ("Fatal exception", "Fatal exception"),
        ("stack-protector: Kernel stack is corrupted in: do_one_initcall+0x1a2/0x1c0",
         "stack-protector: Kernel stack is corrupted in: do_one_initcall"),
        ("corrupted stack end detected inside scheduler [kworker/3:1:1234]",
         "corrupted stack end detected inside scheduler"),
        ("   12345   ", "unknown"),
        ("", "unknown"),
        ("CPU 3 stuck at ffffffff81234567 for 22s", "CPU stuck at for s"),
        ("x" * 150, "x" * 100),
    ],
)
def test_normalize_reason(message: str, reason: str) -> None:
    assert normalize_reason(message) == reason


def test_reason_is_bounded() -> None:
    dmesg = "[  1.0] Kernel panic - not syncing: " + "word " * 100
    reason = reason_and_kind(dmesg)[0]
    assert len(reason) == MAX_REASON == 100
    assert reason == ("word " * 20)[:100]


@given(st.text())
def test_never_raises_on_arbitrary_text(text: str) -> None:
    result = parse_crash_report(text)
    if result is not None:
        assert_bounded(result)


LINES = st.sampled_from([
    "Oops: 0000 [#1] SMP", "BUG: kernel NULL pointer dereference, address: 0000000000000008",
    "kernel BUG at mm/slub.c:123!", "WARNING: CPU: 1 PID: 2 at x.c:3 f+0x1/0x2", "sysrq: Trigger a crash",
    "watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [stress:1234]", "random line 0xdeadbeef",
])


@given(st.lists(st.one_of(LINES, st.text()), max_size=30), st.text())
def test_never_raises_on_panic_logs(lines: list[str], message: str) -> None:
    dmesg = "\n".join([*lines, f"[  1.000000] Kernel panic - not syncing: {message}"])
    result = parse_crash_report(dmesg)
    assert result is not None
    assert_bounded(result)
    assert result.kind in KINDS


# --- property tests: noise, interleaving, truncation ---------------------------------------

# A line of noise is anything that is not itself part of a report: no report header, panic,
# trace start or end marker (those would be another report, by design).
_MARKERS = ("BUG", "WARNING", "INFO:", "Unable to handle", "general protection", "stack segment",
            "Kernel panic", "PANIC", "kernel BUG", "Kernel BUG", "divide", "invalid opcode",
            "UBSAN", "unregister_netdevice", "VFS:", "Internal error", "Unhandled fault",
            "Alignment trap", "end trace", "Call T", "Call t", "Backtrace", "backtrace",
            "Sending NMI", "Linux version", "sysrq", "SysRq", "Oops", "Disabling lock")
_FRAME_LIKE = re.compile(r"^\s*(?:\[<?[0-9a-fx]+>?\] ){0,2}[A-Za-z0-9_]+[.+]")
NOISE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"),
                max_size=60).filter(lambda line: not any(m in line for m in _MARKERS)
                                    and not _FRAME_LIKE.match(line))

EMBEDDED = {
    "null_pointer": (NULL_POINTER.removeprefix(BOOT),
                     "BUG: unable to handle kernel NULL pointer dereference in broken_init"),
    "general_protection": (GPF.removeprefix(BOOT), "general protection fault in release_task"),
    "warning": (WARNING.removeprefix(BOOT), "WARNING in skb_warn_bad_offload"),
    "sysrq": (SYSRQ.removeprefix(BOOT), "kernel panic: sysrq triggered crash"),
}
for _name, _expected in json.loads(
        (Path(__file__).parent / "fixtures/crash_logs/expected.json").read_text()).items():
    _log = (Path(__file__).parent / "fixtures/crash_logs" / _name).read_text()
    EMBEDDED[_name] = (_log if _log.endswith("\n") else _log + "\n", _expected["title"])


@given(st.sampled_from(sorted(EMBEDDED)), st.lists(NOISE, max_size=40),
       st.lists(NOISE, max_size=40), st.booleans())
def test_report_in_noise_keeps_its_title(name: str, before: list[str], after: list[str],
                                         stamped: bool) -> None:
    report, title = EMBEDDED[name]
    alone = parse_crash_report(report)
    assert alone is not None and alone.title == title

    def line(i: int, text: str) -> str:
        return f"[   50.{i:06d}] {text}" if stamped else text

    log = ("\n".join(line(i, t) for i, t in enumerate(before)) + "\n" + report
           + "\n".join(line(i, t) for i, t in enumerate(after)))
    embedded = parse_crash_report(log)
    assert embedded is not None
    assert (embedded.title, embedded.kind, embedded.function, embedded.module) == (
        alone.title, alone.kind, alone.function, alone.module)


def _with_caller(report: str, caller: str) -> list[str]:
    return [re.sub(r"^(\[ *\d+\.\d+\])", rf"\1[{caller}]", ln) for ln in report.splitlines()]


@given(st.sampled_from(sorted(EMBEDDED)), st.lists(st.tuples(st.integers(0, 60), NOISE),
                                                    max_size=40))
def test_other_cpus_interleaved_do_not_change_the_title(name: str,
                                                        noise: list[tuple[int, str]]) -> None:
    """With caller ids (CONFIG_PRINTK_CALLER) lines of other CPUs and tasks may land anywhere
    in the report; only the report's own caller's lines make it."""
    report, title = EMBEDDED[name]
    lines = _with_caller(report, "  T4321")
    for at, text in sorted(noise, reverse=True):
        lines.insert(min(at, len(lines)), f"[   60.000000][    C{at % 4}] {text}")
    got = parse_crash_report("\n".join(lines) + "\n")
    assert got is not None and got.title == title


@given(st.sampled_from(sorted(EMBEDDED)), st.integers(0, 2000))
def test_a_log_cut_anywhere_gives_what_it_can(name: str, cut: int) -> None:
    report, _ = EMBEDDED[name]
    got = parse_crash_report(report[:cut])
    if got is not None:
        assert_bounded(got)


# --- real crash logs: what kdump-tools saved beside each dump the e2e run made (tests/e2e) -----

REAL_CRASHES = sorted((FIXTURES / "real").glob("*/crashes/*.dmesg"))


def real_expected(log: Path) -> dict[str, object]:
    """The expected triage of a real log: crashes/expected.json beside it, by file name."""
    expected = json.loads((log.parent / "expected.json").read_text())
    assert log.name in expected, f"{log}: no expected triage in {log.parent / 'expected.json'}"
    return expected[log.name]


@pytest.mark.parametrize("log", REAL_CRASHES,
                         ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_real_crash_log(log: Path) -> None:
    expected = dict(real_expected(log))
    expected.pop("why")
    stack = expected.pop("stack_contains")
    got = parse_crash_report(log.read_text())
    assert got is not None
    assert {k: getattr(got, k) for k in expected} == expected
    n = len(stack)
    assert any(got.stack[i:i + n] == tuple(stack) for i in range(len(got.stack))), got.stack
    assert_bounded(got)


def test_every_real_crash_kind_was_captured() -> None:
    """Each kernel's e2e run saved the five crashes it makes (tests/e2e/test_real_kernel.py)."""
    by_release: dict[str, set[str]] = {}
    for log in REAL_CRASHES:
        by_release.setdefault(log.parent.parent.name, set()).add(str(real_expected(log)["kind"]))
    assert by_release and all(kinds == {"sysrq", "hung_task", "soft_lockup", "null_pointer", "oom"}
                              for kinds in by_release.values()), by_release


HUNG = """\
[{t}] INFO: task {comm}:{pid} blocked for more than 120 seconds.
[{t}]       Not tainted 6.1.0-50-amd64 #1 Debian 6.1.176-1
[{t}] task:{comm}         state:D stack:0     pid:{pid}   ppid:1      flags:0x00000002
[{t}] Call Trace:
[{t}]  <TASK>
[{t}]  __schedule+0x34d/0x9e0
[{t}]  schedule+0x5a/0xd0
[{t}]  {fn}+0x1e/0x90 [nfs]
[{t}]  do_fsync+0x38/0x70
[{t}]  __x64_sys_fsync+0x10/0x20
[{t}]  do_syscall_64+0x5d/0xb0
[{t}]  entry_SYSCALL_64_after_hwframe+0x6e/0xd8
[{t}]  </TASK>
"""
HUNG_PANIC = "[{t}] Kernel panic - not syncing: hung_task: blocked tasks\n"


@pytest.mark.parametrize(("second_at", "named"), [
    ("171.000100", "nfs_flush_a"),  # printed in the same scan: one crash, the first names it
    ("181.000000", "nfs_flush_b"),  # 10 s later: the first was lived through
])
def test_a_stall_report_lived_through_is_skipped(second_at: str, named: str) -> None:
    log = (HUNG.format(t="171.000000", comm="a", pid=1, fn="nfs_flush_a")
           + HUNG.format(t=second_at, comm="b", pid=2, fn="nfs_flush_b")
           + HUNG_PANIC.format(t=second_at))
    got = parse_crash_report(log)
    assert got is not None
    assert (got.title, got.pid, got.panicked) == (f"INFO: task hung in {named}",
                                                  1 if named == "nfs_flush_a" else 2, True)


def test_stall_reports_without_timestamps_keep_the_first() -> None:
    log = "".join(HUNG.format(t="0", comm=c, pid=p, fn=f"nfs_flush_{c}").replace("[0] ", "")
                  for c, p in (("a", 1), ("b", 2))) + "Kernel panic - not syncing: hung_task\n"
    got = parse_crash_report(log)
    assert got is not None and (got.title, got.pid) == ("INFO: task hung in nfs_flush_a", 1)


# --- fixtures written from the kernel's printk formats, one per kind and architecture -------

CRASH_LOGS = FIXTURES / "crash_logs"
EXPECTED = json.loads((CRASH_LOGS / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_crash_log_fixture(name: str) -> None:
    expected = {k: v for k, v in EXPECTED[name].items() if k != "why"}
    got = parse_crash_report((CRASH_LOGS / name).read_text())
    assert got is not None
    assert {k: getattr(got, k) for k in expected} == expected
    assert_bounded(got)


def test_every_kind_and_architecture_has_a_fixture() -> None:
    kinds = {e["kind"] for e in EXPECTED.values()}
    assert {"soft_lockup", "hung_task", "rcu_stall", "oom", "warning", "null_pointer",
            "page_fault", "general_protection", "kernel_bug", "deadlock", "sysrq",
            "scheduling_while_atomic", "bad_page", "hard_lockup", "machine_check"} <= kinds
    assert {name.split("/")[0] for name in EXPECTED} == {"x86_64", "arm64", "ppc64le"}


def test_a_symbolized_report_is_one_report() -> None:
    """syzbot and scripts/decode_stacktrace.sh print a line once per inlined function, the
    last with the real frame: the repeated header does not start another report."""
    log = """\
------------[ cut here ]------------
WARNING: CPU: 1 PID: 812 at fs/nfs/pagelist.c:300 nfs_page_group_destroy fs/nfs/pagelist.c:300 [inline]
WARNING: CPU: 1 PID: 812 at fs/nfs/pagelist.c:300 nfs_release_request+0x9a/0xc0 fs/nfs/pagelist.c:450
Modules linked in: nfsv4 nfs
CPU: 1 PID: 812 Comm: kworker/u8:3 Not tainted 6.1.0-13-amd64 #1 Debian 6.1.55-1
RIP: 0010:nfs_page_group_destroy fs/nfs/pagelist.c:300 [inline]
RIP: 0010:nfs_release_request+0x9a/0xc0 fs/nfs/pagelist.c:450
Call Trace:
 <TASK>
 nfs_commit_release_pages+0x1d5/0x230 fs/nfs/write.c:1800
 rpc_free_task+0x39/0x70 net/sunrpc/sched.c:1178
 </TASK>
"""
    got = parse_crash_report(log)
    assert got is not None
    assert (got.title, got.function, got.corrupted) == (
        "WARNING in nfs_release_request", "nfs_release_request", False)


def test_real_hung_task_from_an_nfs_stall_on_debian_6_1() -> None:
    """The incident the project comes from, on a real kernel (tests/e2e, scenario 6): an
    fsync on an NFSv4.2 mount whose server stopped answering, hung_task_panic=1."""
    log = (FIXTURES / "real/6.1.0-50-amd64/crashes/hung_task_nfs.dmesg").read_text()
    got = parse_crash_report(log)
    assert got is not None
    assert (got.title, got.kind, got.function, got.module) == (
        "INFO: task hung in nfs_file_fsync", "hung_task", "nfs_file_fsync", "nfs")
    assert (got.kernel_release, got.tainted, got.comm, got.panicked, got.reason) == (
        "6.1.0-50-amd64", "", "python3", True, "hung_task: blocked tasks")
    assert got.stack[3:8] == ("folio_wait_bit_common", "folio_wait_writeback",
                              "__filemap_fdatawait_range", "file_write_and_wait_range",
                              "nfs_file_fsync")
