"""Panic readiness: one list of named checks, each with a severity and the exact fix.

The same checks feed ``panicwatch_readiness_check``/``panicwatch_panic_ready``, the
landing page and ``panicwatch check``. Evaluation is pure; ``assess`` does the reading.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from panicwatch.host import Host
from panicwatch.parsers import distro
from panicwatch.reader import HostReader
from panicwatch.snapshots.kdump import KdumpState, read_kdump
from panicwatch.snapshots.kernel import KernelState, read_kernel
from panicwatch.snapshots.vmcores import Dump, VmcoreInventory, read_inventory

CRITICAL, WARNING, INFO = "critical", "warning", "info"
SYSCTL_DROPIN = "/etc/sysctl.d/90-panic-on-lockup.conf"


@dataclass(frozen=True)
class Check:
    name: str
    severity: str
    passed: bool | None  # None: could not be evaluated here (skipped)
    detail: str
    fix: str = ""

    @property
    def status(self) -> str:
        return {True: "pass", False: "fail", None: "skip"}[self.passed]


@dataclass(frozen=True)
class Report:
    checks: list[Check]
    problems: list[str]
    kdump: KdumpState

    @property
    def complete(self) -> bool:
        """The essential inputs (/proc/cmdline, the RAM size) could be read."""
        return self.kdump.complete

    @property
    def ready(self) -> bool:
        """Panic-ready: no critical check failed (a skipped one does not count against)."""
        return not any(c.passed is False and c.severity == CRITICAL for c in self.checks)


def gib(size: int | float) -> str:
    return f"{size / (1 << 30):.2f} GiB" if size >= 1 << 30 else f"{size / (1 << 20):.0f} MiB"


def _family(k: KdumpState) -> str:
    return distro.family(k.os_release)


def _suggested_crashkernel(k: KdumpState) -> str:
    if k.recommendation and k.recommendation.size:
        return k.recommendation.table
    return "256M"


def set_crashkernel_fix(k: KdumpState, value: str) -> str:
    family = _family(k)
    if family == "rhel":
        return f'grubby --update-kernel=ALL --args="crashkernel={value}" && reboot'
    if family == "debian":
        return (f"set crashkernel={value} in GRUB_CMDLINE_LINUX_DEFAULT "
                "(/etc/default/grub.d/kdump-tools.cfg), then update-grub && reboot")
    if family == "suse":
        return "set KDUMP_CRASHKERNEL (yast kdump, or `kdumptool calibrate` for sizes), then reboot"
    return f"add crashkernel={value} to the kernel command line in the boot loader, then reboot"


def enable_fix(k: KdumpState) -> str:
    unit = k.service.unit
    if unit is None:
        return {
            "rhel": "dnf install kdump-utils (kexec-tools on RHEL 8/9) && systemctl enable --now kdump",
            "debian": "apt install kdump-tools && systemctl enable --now kdump-tools",
            "suse": "zypper install kdump && systemctl enable --now kdump",
        }.get(_family(k), "install the distribution's kdump package and enable its service")
    steps = []
    if k.service.masked:
        steps.append(f"systemctl unmask {unit}")
    if k.service.use_kdump is False:
        steps.append("set USE_KDUMP=1 in /etc/default/kdump-tools")
    if not k.service.enabled:
        steps.append(f"systemctl enable {unit}")
    # restart, not start: the kdump units are oneshot with RemainAfterExit, so after a
    # `kexec -p -u` the unit is still "active" and a start would load nothing (seen on Debian)
    steps.append(f"systemctl restart {unit}")
    return " && ".join(steps)


def check_loaded(k: KdumpState) -> Check:
    name = "crash_kernel_loaded"
    if k.loaded:
        how = "fadump registered" if k.fadump else "crash kernel loaded (kexec_crash_loaded=1)"
        return Check(name, CRITICAL, True, how)
    if not k.supported:
        return Check(name, CRITICAL, False,
                     "this kernel has no crash dump support (no /sys/kernel/kexec_crash_loaded)",
                     "boot a kernel built with CONFIG_KEXEC and CONFIG_CRASH_DUMP "
                     "(distribution kernels are)")
    if k.reserved_bytes == 0 and not k.fadump:
        return Check(name, CRITICAL, False, "no crash kernel loaded: no memory is reserved for one",
                     f"{set_crashkernel_fix(k, _suggested_crashkernel(k))}; then "
                     + enable_fix(k))
    unit = k.service.unit or "kdump"
    what = "fadump is not registered" if k.fadump else "no crash kernel is loaded"
    return Check(name, CRITICAL, False, f"{what}: a panic now would leave no dump",
                 f"{enable_fix(k)}; if it fails: journalctl -u {unit}")


def check_reserved(k: KdumpState) -> Check:
    name = "crash_memory_reserved"
    req, reserved = k.request, k.reserved_bytes
    value = _suggested_crashkernel(k)
    if req.error:
        return Check(name, CRITICAL, False,
                     f"crashkernel={req.argument} is invalid ({req.error}): nothing is reserved",
                     set_crashkernel_fix(k, value))
    if not req.resolved and req.present:
        return Check(name, CRITICAL, None,
                     f"RAM size unknown: cannot tell what crashkernel={req.argument} asks for")
    if not req.present:
        if reserved:
            return Check(name, CRITICAL, True, f"{gib(reserved)} reserved (no crashkernel= given)")
        return Check(name, CRITICAL, False,
                     "no crashkernel= on the kernel command line: no memory is reserved",
                     set_crashkernel_fix(k, value))
    if req.total == 0:
        ram = gib(k.system_ram or 0)
        return Check(name, CRITICAL, True,
                     f"crashkernel={req.argument} asks for nothing on this machine's {ram} RAM")
    # Unprivileged readers cannot measure the low part of a split reservation.
    needed = req.size if k.low_unmeasured else req.total
    asked = f"crashkernel={req.argument} asks for {gib(req.total)}"
    if reserved == 0:
        return Check(name, CRITICAL, False,
                     f"{asked} but nothing is reserved (the kernel found no free region: "
                     "dmesg | grep -i crashkernel)",
                     "try a smaller size or crashkernel=<size>,high: "
                     + set_crashkernel_fix(k, req.argument))
    if reserved < needed:
        return Check(name, CRITICAL, False, f"{asked} but only {gib(reserved)} is reserved",
                     set_crashkernel_fix(k, req.argument))
    return Check(name, CRITICAL, True, f"{asked}, {gib(reserved)} reserved")


def check_sufficient(k: KdumpState) -> Check:
    name = "crash_memory_sufficient"
    rec = k.recommendation
    if rec is None or rec.size == 0:
        return Check(name, WARNING, None, "no distribution recommendation for this machine")
    if k.reserved_bytes >= rec.size:
        return Check(name, WARNING, True,
                     f"{gib(k.reserved_bytes)} reserved >= {gib(rec.size)} recommended by {rec.source}")
    return Check(name, WARNING, False,
                 f"{gib(k.reserved_bytes)} reserved < {gib(rec.size)} recommended by {rec.source} "
                 f"for {gib(k.system_ram or 0)} RAM: the capture kernel may run out of memory",
                 set_crashkernel_fix(k, rec.table))


def check_enabled(k: KdumpState) -> Check:
    name = "kdump_enabled_at_boot"
    svc = k.service
    if svc.enabled:
        return Check(name, CRITICAL, True, f"{svc.unit} is enabled")
    if svc.unit is None:
        return Check(name, CRITICAL, False, "no kdump service is installed", enable_fix(k))
    if svc.masked:
        why = "masked"
    elif svc.use_kdump is False:
        why = "switched off (USE_KDUMP is not 1 in /etc/default/kdump-tools)"
    else:
        why = "not enabled"
    return Check(name, CRITICAL, False, f"{svc.unit} is {why}: kdump will not arm after a reboot",
                 enable_fix(k))


def check_target(k: KdumpState, min_free_ratio: float) -> Check:
    name = "dump_target_ready"
    t = k.target
    label = t.target.label
    if t.exists is None:
        return Check(name, CRITICAL, None, t.unchecked_reason or f"{label} not checked")
    if not t.exists:
        if t.target.type == "device":
            fix = f"mount {t.target.device} and create {t.target.path} on it"
        else:
            fix = f"mkdir -p {t.target.path}"
        return Check(name, CRITICAL, False, f"dump directory {label} does not exist", fix)
    if t.free_bytes is None or not k.system_ram:
        return Check(name, CRITICAL, None, f"free space on {label} unknown")
    need = int(k.system_ram * min_free_ratio)
    where = f"{gib(t.free_bytes)} free on {t.local_dir}"
    if t.free_bytes < need:
        return Check(name, CRITICAL, False,
                     f"only {where}, a dump may need {gib(need)} "
                     f"({min_free_ratio:g} x {gib(k.system_ram)} RAM)",
                     f"free space on the filesystem holding {t.local_dir} (old dumps?) or point "
                     f"the dump path ({t.target.config}) at a larger one")
    return Check(name, CRITICAL, True, f"{where} (>= {gib(need)})")


def check_vmcores(inv: VmcoreInventory) -> Check:
    name = "no_vmcore_pending"
    if inv.crash_dir is None:
        return Check(name, WARNING, None, inv.unchecked_reason or "no local crash directory")
    if not inv.dumps:
        return Check(name, WARNING, True, f"no dumps in {inv.crash_dir}")
    newest = inv.newest
    assert newest is not None
    incomplete = sum(d.incomplete for d in inv.dumps)
    extra = f", {incomplete} incomplete" if incomplete else ""
    return Check(name, WARNING, False,
                 f"{len(inv.dumps)} dump(s) waiting in {inv.crash_dir}{extra}, newest {newest.name}",
                 f"see what crashed with `panicwatch triage`, read it ({_read_dump_hint(newest)}), "
                 "then move it off the host or delete it")


def _read_dump_hint(dump: Dump) -> str:
    how = [f"crash vmlinux {dump.core}"] if dump.core else []
    how += [f"less {dump.dmesg}"] if dump.dmesg else []
    return " or ".join(how) or "nothing readable in it: an interrupted capture"


def _sysctl_check(kernel: KernelState, name: str, settings: dict[str, int], what: str) -> Check:
    missing = [s for s in settings if s not in kernel.settings]
    if missing:
        return Check(name, WARNING, None, f"this kernel has no kernel.{missing[0]}")
    wrong = {s: v for s, v in settings.items() if kernel.settings[s] != v}
    if not wrong:
        return Check(name, WARNING, True, f"{what} will panic (and leave a dump)")
    current = ", ".join(f"kernel.{s}={kernel.settings[s]}" for s in wrong)
    sets = " ".join(f"kernel.{s}={v}" for s, v in wrong.items())
    lines = "\\n".join(f"kernel.{s} = {v}" for s, v in wrong.items())
    return Check(name, WARNING, False, f"{what} would freeze the host without a dump ({current})",
                 f"sysctl -w {sets} && printf '{lines}\\n' >> {SYSCTL_DROPIN}")


def check_lockups(kernel: KernelState) -> list[Check]:
    hung = _sysctl_check(kernel, "hung_task_panics", {"hung_task_panic": 1}, "a hung task")
    if hung.passed and kernel.settings.get("hung_task_timeout_secs") == 0:
        hung = Check(hung.name, WARNING, False,
                     "hung task detection is off (kernel.hung_task_timeout_secs=0)",
                     f"sysctl -w kernel.hung_task_timeout_secs=120 && echo "
                     f"'kernel.hung_task_timeout_secs = 120' >> {SYSCTL_DROPIN}")
    return [
        _sysctl_check(kernel, "soft_lockup_panics", {"softlockup_panic": 1}, "a soft lockup"),
        hung,
        _sysctl_check(kernel, "hard_lockup_panics",
                      {"hardlockup_panic": 1, "nmi_watchdog": 1}, "a hard lockup"),
    ]


def check_tested(k: KdumpState) -> Check:
    name = "kdump_tested"
    fix = "kdumpctl test (this panics the host on purpose: do it in a maintenance window)"
    if k.test is None:
        if _family(k) == "rhel":
            return Check(name, INFO, False, "capture was never proven with kdumpctl test", fix)
        return Check(name, INFO, None, "no kdumpctl test record (not a kdump-utils host)")
    if k.test.status == "success":
        return Check(name, INFO, True, "the last kdumpctl test captured a dump")
    return Check(name, INFO, False, f"the last kdumpctl test is {k.test.status}", fix)


def evaluate(k: KdumpState, inv: VmcoreInventory, kernel: KernelState,
             min_free_ratio: float) -> list[Check]:
    return [
        check_loaded(k),
        check_reserved(k),
        check_sufficient(k),
        check_enabled(k),
        check_target(k, min_free_ratio),
        check_vmcores(inv),
        *check_lockups(kernel),
        check_tested(k),
    ]


def report_from(reader: HostReader, min_free_ratio: float) -> Report:
    """The checks on the snapshots ``reader`` reads (or a scrape has read already)."""
    kdump = reader.snapshot(read_kdump)
    checks = evaluate(kdump, reader.snapshot(read_inventory), reader.snapshot(read_kernel),
                      min_free_ratio)
    return Report(checks, list(reader.problems), kdump)


def assess(host: Host, min_free_ratio: float) -> Report:
    return report_from(HostReader(host), min_free_ratio)


class RecentReport:
    """The newest Report, shared: each scrape's readiness collector publishes its own, and the
    landing page reads it, or assesses anew (one request at a time) when it is older than
    ``max_age`` seconds, so no number of page loads can read the host more often than that.
    A scrape publishing never waits for a page's assessment."""

    def __init__(self, max_age: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()  # the report and its time
        self._making = threading.Lock()  # one assessment for the page at a time
        self._report: Report | None = None
        self._made = 0.0

    def publish(self, report: Report) -> None:
        with self._lock:
            self._report, self._made = report, self.clock()

    def _fresh(self) -> tuple[Report, float] | None:
        with self._lock:
            if self._report is None or self.clock() - self._made > self.max_age:
                return None
            return self._report, self.clock() - self._made

    def get(self, make: Callable[[], Report]) -> tuple[Report, float]:
        """The report and its age in seconds."""
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        with self._making:
            fresh = self._fresh()  # made (or published) while this request waited
            if fresh is not None:
                return fresh
            report = make()
            self.publish(report)
            return report, 0.0
