"""Snapshot of the kernel's panic behaviour: panic sysctls, lockup counters, pstore, IO PSI."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

from panicwatch.parsers import procfs, pstore
from panicwatch.reader import HostReader, describe_error

# kernel.* sysctls that decide whether a lockup, oops or warning becomes a panic (and so a dump).
PANIC_SYSCTLS = (
    "panic", "panic_on_oops", "softlockup_panic", "hardlockup_panic", "hung_task_panic",
    "hung_task_timeout_secs", "panic_on_warn", "panic_on_rcu_stall", "nmi_watchdog",
    "watchdog", "watchdog_thresh", "unknown_nmi_panic", "panic_on_io_nmi", "sysrq",
)
# kind -> where the kernel counts it (6.x: /sys/kernel/*_count; hung tasks under /proc/sys).
LOCKUP_COUNTERS = {
    "soft_lockup": ("sys", "softlockup_count"),
    "hard_lockup": ("sys", "hardlockup_count"),
    "rcu_stall": ("sys", "rcu_stall_count"),
    "oops": ("sys", "oops_count"),
    "warn": ("sys", "warn_count"),
    "hung_task": ("sysctl", "kernel.hung_task_detect_count"),
}


@dataclass(frozen=True)
class KernelState:
    settings: dict[str, int]  # only the sysctls this kernel has
    lockups: dict[str, int]
    pstore_records: Counter[tuple[str, str]]
    io_pressure: procfs.Pressure | None


def read_kernel(reader: HostReader) -> KernelState:
    host = reader.host
    settings = {}
    for name in PANIC_SYSCTLS:
        value = reader.integer(host.sysctl(f"kernel.{name}"))
        if value is not None:
            settings[name] = value
    lockups = {}
    for kind, (where, name) in LOCKUP_COUNTERS.items():
        path = host.sys_kernel(name) if where == "sys" else host.sysctl(name)
        value = reader.integer(path)
        if value is not None:
            lockups[kind] = value
    records: Counter[tuple[str, str]] = Counter()
    try:
        records = pstore.count_records(os.listdir(host.pstore()))
    except FileNotFoundError:
        pass  # pstore not mounted
    except OSError as e:
        reader.problem(describe_error(e))
    pressure = reader.parsed(host.pressure("io"), procfs.parse_pressure)
    return KernelState(settings, lockups, records, pressure)
