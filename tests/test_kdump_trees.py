"""Exact metric values for every fixture tree (in-process scrape of the real registry)."""

from __future__ import annotations

import os

from conftest import names, scrape, scrape_text, value
from trees import RAM_16G, MiB


def p(name: str) -> str:
    return f"panicwatch_{name}"


def crash_info(samples) -> dict[str, tuple[str, ...]]:
    """vmcore_crash_info by dump: (title, kind, function, module, kernel_release)."""
    found = {}
    for labels in names(samples, p("vmcore_crash_info")):
        d = dict(labels)
        found[d["dump"]] = tuple(d[k] for k in ("title", "kind", "function", "module",
                                                "kernel_release"))
    return found


def checks(samples) -> dict[str, float]:
    return {dict(labels)["check"]: v for labels, v in names(samples, p("readiness_check")).items()}


def successes(samples) -> dict[str, float]:
    return {dict(lb)["collector"]: v for lb, v in names(samples, p("collector_success")).items()}


def test_rhel9_armed(tree):
    root = tree("rhel9_armed")
    s = scrape(root)
    assert successes(s) == {"kdump": 1, "vmcores": 1, "kernel": 1, "readiness": 1, "nfs": 1, "rpc": 1,
                            "nfs_sockets": 1, "blocked_tasks": 1}
    assert value(s, p("kdump_loaded")) == 1
    assert value(s, p("kdump_crash_memory_reserved_bytes")) == 256 * MiB
    assert value(s, p("kdump_crash_memory_requested_bytes")) == 256 * MiB
    # kexec-tools x86_64 (RHEL 9): 4G-64G:256M
    assert value(s, p("kdump_crash_memory_recommended_bytes")) == 256 * MiB
    assert value(s, p("kdump_service_enabled")) == 1
    assert value(s, p("kdump_dump_target_info"), path="/var/crash", type="local") == 1
    st = os.statvfs(root / "var/crash")
    free = value(s, p("kdump_dump_target_free_bytes"), path="/var/crash", type="local")
    assert abs(free - st.f_bavail * st.f_frsize) < 64 * MiB  # the disk is live
    assert value(s, p("kdump_test_success")) == 1
    assert value(s, p("kdump_test_timestamp_seconds")) == 1714521600.123456789
    assert value(s, p("vmcores")) == 0
    assert value(s, p("vmcores_incomplete")) == 0
    assert value(s, p("vmcore_bytes")) == 0
    assert value(s, p("vmcore_newest_timestamp_seconds")) is None
    assert value(s, p("pstore_records"), backend="efi_pstore", type="dmesg") == 2
    assert value(s, p("kernel_panic_setting"), setting="softlockup_panic") == 1
    assert value(s, p("kernel_panic_setting"), setting="sysrq") == 16
    assert len(names(s, p("kernel_panic_setting"))) == 14
    assert value(s, p("kernel_lockups_total"), kind="hung_task") == 0
    assert value(s, p("pressure_io_stalled_seconds_total"), kind="some") == 123.456789
    assert value(s, p("pressure_io_stalled_seconds_total"), kind="full") == 23.456789
    assert checks(s) == {
        "crash_kernel_loaded": 1, "crash_memory_reserved": 1, "crash_memory_sufficient": 1,
        "kdump_enabled_at_boot": 1, "dump_target_ready": 1 if free >= RAM_16G * 0.1 else 0,
        "no_vmcore_pending": 1, "soft_lockup_panics": 1, "hung_task_panics": 1,
        "hard_lockup_panics": 1, "kdump_tested": 1,
    }


def test_rhel9_armed_is_ready_without_the_free_space_rule(tree):
    s = scrape(tree("rhel9_armed"), collector_kdump_min_free_ratio=0)
    assert value(s, p("panic_ready")) == 1


def test_dump_target_without_room_fails(tree):
    # 64 TiB of RAM at the default ratio 0.1 needs 6.4 TiB free: no test disk has that.
    root = tree("rhel9_armed")
    (root / "proc/iomem").write_text("00000000-3fffffffffff : System RAM\n")
    s = scrape(root)
    assert checks(s)["dump_target_ready"] == 0
    assert value(s, p("panic_ready")) == 0


def test_fedora_vmcores(tree):
    s = scrape(tree("fedora_vmcores"))
    assert value(s, p("vmcores")) == 2
    assert value(s, p("vmcores_incomplete")) == 1
    assert value(s, p("vmcore_bytes")) == 50 * MiB  # the kdumpctl test dump is not counted
    # 2024-05-02 10:00:00 in Europe/Berlin (CEST, UTC+2) = 08:00:00 UTC
    assert value(s, p("vmcore_newest_timestamp_seconds")) == 1714636800
    assert value(s, p("last_panic_info"), reason="softlockup: hung tasks", kind="soft_lockup",
                 dump="127.0.0.1-2024-05-02-10:00:00", title="BUG: soft lockup in nfs_access_get_cached",
                 kernel_release="5.14.0-427.el9.x86_64") == 1
    # The incomplete capture's partial dmesg is read too: it is all there is of that crash.
    assert crash_info(s) == {
        "127.0.0.1-2024-05-02-10:00:00": ("BUG: soft lockup in nfs_access_get_cached",
                                          "soft_lockup", "nfs_access_get_cached", "nfs",
                                          "5.14.0-427.el9.x86_64"),
        "127.0.0.1-2024-05-01-03:12:45": ("kernel panic: sysrq triggered crash", "sysrq", "", "",
                                          "5.14.0-427.el9.x86_64"),
    }
    assert value(s, p("kdump_test_success")) == 0
    assert value(s, p("kdump_test_timestamp_seconds")) == 1714600000
    assert checks(s)["no_vmcore_pending"] == 0
    assert checks(s)["kdump_tested"] == 0
    assert value(s, p("kdump_crash_memory_requested_bytes")) == 256 * MiB


def test_ubuntu_armed_with_a_dump(tree):
    s = scrape(tree("ubuntu_armed_dumps"), collector_kdump_min_free_ratio=0)
    assert value(s, p("kdump_loaded")) == 1
    assert value(s, p("kdump_crash_memory_reserved_bytes")) == 512 * MiB
    assert value(s, p("kdump_crash_memory_requested_bytes")) == 512 * MiB
    assert value(s, p("kdump_crash_memory_recommended_bytes")) == 512 * MiB
    assert value(s, p("kdump_service_enabled")) == 1
    assert value(s, p("vmcores")) == 1
    assert value(s, p("vmcores_incomplete")) == 0
    assert value(s, p("vmcore_bytes")) == 64 * MiB
    # No /etc/localtime in the tree: UTC. 2024-05-01 03:12 UTC.
    assert value(s, p("vmcore_newest_timestamp_seconds")) == 1714533120
    # A hung-task report cut before its call trace names no function: syzbot's "corrupted".
    assert value(s, p("last_panic_info"), reason="hung_task: blocked tasks", kind="hung_task",
                 dump="202405010312", title="INFO: task hung in corrupted",
                 kernel_release="6.8.0-31-generic") == 1
    assert value(s, p("kdump_test_success")) is None
    assert checks(s)["no_vmcore_pending"] == 0
    assert "kdump_tested" not in checks(s)  # not a kdump-utils host: skipped
    assert value(s, p("panic_ready")) == 1  # a waiting dump is a warning, not unreadiness


def test_ubuntu_disarmed(tree):
    s = scrape(tree("ubuntu_disarmed"), collector_kdump_min_free_ratio=0)
    assert value(s, p("kdump_loaded")) == 0
    assert value(s, p("kdump_crash_memory_reserved_bytes")) == 192 * MiB
    assert value(s, p("kdump_crash_memory_requested_bytes")) == 192 * MiB
    assert value(s, p("kdump_crash_memory_recommended_bytes")) == 192 * MiB  # 22.04: 512M-:192M
    assert value(s, p("kdump_service_enabled")) == 0
    c = checks(s)
    assert c["crash_kernel_loaded"] == 0
    assert c["kdump_enabled_at_boot"] == 0
    assert c["crash_memory_reserved"] == 1
    assert c["soft_lockup_panics"] == 0
    assert value(s, p("panic_ready")) == 0


def test_reservation_failed(tree):
    s = scrape(tree("debian_reservation_failed"), collector_kdump_min_free_ratio=0)
    assert value(s, p("kdump_crash_memory_requested_bytes")) == 512 * MiB
    assert value(s, p("kdump_crash_memory_reserved_bytes")) == 0
    assert value(s, p("kdump_crash_memory_recommended_bytes")) == 128 * MiB  # Debian 384M-:128M
    assert checks(s)["crash_memory_reserved"] == 0
    assert value(s, p("panic_ready")) == 0


def test_sles_split_reservation_and_two_layouts(tree):
    s = scrape(tree("sles_dumps"), collector_kdump_min_free_ratio=0)
    # ,high 242M + ,low 72M, both visible in /proc/iomem
    assert value(s, p("kdump_crash_memory_requested_bytes")) == 314 * MiB
    assert value(s, p("kdump_crash_memory_reserved_bytes")) == (0x2F7FFFFF - 0x2B000000 + 1) + (
        0x43E1FFFFF - 0x42F000000 + 1)
    assert value(s, p("kdump_crash_memory_recommended_bytes")) is None
    assert value(s, p("kdump_dump_target_info"), path="/var/crash", type="local") == 1
    assert value(s, p("vmcores")) == 2
    assert value(s, p("vmcore_bytes")) == 50 * MiB
    assert value(s, p("vmcore_newest_timestamp_seconds")) == 1714770420  # 2024-05-03 21:07 UTC
    title = "BUG: unable to handle kernel NULL pointer dereference in nfs4_do_close"
    assert value(s, p("last_panic_info"), reason="Fatal exception", kind="null_pointer",
                 dump="2024-05-03-21-07", title=title,
                 kernel_release="5.14.21-150500.55.39-default") == 1
    assert crash_info(s)["2024-05-03-21-07"] == (title, "null_pointer", "nfs4_do_close", "nfsv4",
                                                 "5.14.21-150500.55.39-default")
    assert "crash_memory_sufficient" not in checks(s)


def test_ppc64le_fadump(tree):
    s = scrape(tree("ppc64le_fadump"), collector_kdump_min_free_ratio=0)
    assert value(s, p("kdump_loaded")) == 1
    assert value(s, p("kdump_crash_memory_reserved_bytes")) == 768 * MiB
    assert value(s, p("kdump_crash_memory_requested_bytes")) == 768 * MiB
    assert value(s, p("kdump_crash_memory_recommended_bytes")) == 768 * MiB  # fadump table
    assert successes(s)["kdump"] == 1
    assert value(s, p("panic_ready")) == 1


def test_too_small_machine(tree):
    s = scrape(tree("too_small"), collector_kdump_min_free_ratio=0)
    assert value(s, p("kdump_crash_memory_requested_bytes")) == 0
    assert value(s, p("kdump_crash_memory_reserved_bytes")) == 0
    assert value(s, p("kdump_crash_memory_recommended_bytes")) == 0
    c = checks(s)
    assert c["crash_memory_reserved"] == 1  # a request that resolves to 0 is not a failure
    assert c["crash_kernel_loaded"] == 0
    assert "crash_memory_sufficient" not in c


def test_nfs_dump_target_is_never_touched(tree):
    s = scrape(tree("nfs_target"))
    assert value(s, p("kdump_dump_target_info"), path="/var/crash", type="local") == 1
    assert not names(s, p("kdump_dump_target_free_bytes"))
    assert value(s, p("vmcores")) is None
    assert "dump_target_ready" not in checks(s)
    assert successes(s)["kdump"] == 1


def test_ssh_dump_target(tree):
    s = scrape(tree("ssh_target"))
    assert value(s, p("kdump_dump_target_info"), path="kdump@dumphost:/var/crash",
                 type="ssh") == 1
    assert value(s, p("vmcores")) is None
    assert value(s, p("panic_ready")) == 1


def test_garbled_files_fail_one_collector_and_lose_nothing_else(tree):
    s = scrape(tree("garbled"))
    ok = successes(s)
    assert ok["kdump"] == 0
    assert ok["kernel"] == 0  # /proc/pressure/io garbled
    assert ok["vmcores"] == 1
    # everything else still there: /proc/iomem still gives the reservation
    assert value(s, p("kdump_crash_memory_reserved_bytes")) == 256 * MiB
    assert value(s, p("kdump_loaded")) == 1
    assert value(s, p("kernel_panic_setting"), setting="softlockup_panic") == 1
    assert value(s, p("pressure_io_stalled_seconds_total"), kind="some") is None


def test_nfs_mounted_inside_the_crash_dir_is_not_listed(tree):
    root = tree("ubuntu_armed_dumps")
    mi = root / "proc/1/mountinfo"
    mi.write_text(mi.read_text() + "41 22 0:46 / /var/crash/202405010312 rw - nfs4 filer:/x rw\n")
    s = scrape(root, collector_kdump_min_free_ratio=0)
    assert value(s, p("vmcores")) == 0  # the NFS-mounted dump dir is skipped, not listed


def test_oversized_or_garbled_mount_table_fails_closed(tree):
    root = tree("rhel9_armed")
    mi = root / "proc/1/mountinfo"
    mi.write_text("not a mountinfo line\n" + mi.read_text())
    s = scrape(root)
    assert not names(s, p("kdump_dump_target_free_bytes"))
    assert successes(s)["kdump"] == 0


def test_each_dump_log_is_parsed_once_and_again_when_it_changes(tree, monkeypatch):
    import panicwatch.triage.dumps as dumps_module
    from panicwatch.collectors.registry import build_registry
    from panicwatch.exposition import render_all
    from panicwatch.settings import Settings

    parsed: list[int] = []
    real = dumps_module.parse_crash_report
    monkeypatch.setattr(dumps_module, "parse_crash_report",
                        lambda log: parsed.append(len(log)) or real(log))
    root = tree("sles_dumps")
    registry = build_registry(Settings(path_rootfs=root, collector_kdump_min_free_ratio=0))

    def crashes() -> dict[str, tuple[str, ...]]:
        return crash_info(scrape_text(render_all(registry).decode()))

    first = crashes()
    assert len(parsed) == 2  # both dumps' logs
    assert crashes() == first and len(parsed) == 2  # unchanged: nothing parsed again
    log = root / "var/crash/2023-11-20-08:15/dmesg.txt"
    log.write_text(log.read_text().replace("sysrq: Trigger a crash\n", "") + (
        "[  100.000030] Kernel panic - not syncing: Out of memory: system-wide panic_on_oom "
        "is enabled\n"))
    again = crashes()
    assert len(parsed) == 3  # only the changed log
    assert again["2023-11-20-08:15"][:2] == (  # the log's last panic is the dump's
        "kernel panic: Out of memory: system-wide panic_on_oom is enabled", "oom")
    assert again["2024-05-03-21-07"] == first["2024-05-03-21-07"]
    (root / "var/crash/2023-11-20-08:15/dmesg.txt").unlink()
    assert crashes()["2023-11-20-08:15"] == ("", "unknown", "", "", "")


def test_an_unreadable_or_unparsable_log_costs_only_its_own_dump(tree, monkeypatch):
    import panicwatch.triage.dumps as dumps_module

    root = tree("sles_dumps")
    (root / "var/crash/2023-11-20-08:15/dmesg.txt").chmod(0)
    real = dumps_module.parse_crash_report

    def parse(log: str):
        if "nfs4_do_close" in log:
            raise ValueError("a parser bug")
        return real(log)

    monkeypatch.setattr(dumps_module, "parse_crash_report", parse)
    s = scrape(root, collector_kdump_min_free_ratio=0)
    if os.geteuid() != 0:  # root reads a mode-0 file anyway
        assert crash_info(s)["2023-11-20-08:15"] == ("", "unknown", "", "", "")
    assert crash_info(s)["2024-05-03-21-07"] == ("", "unknown", "", "", "")
    assert value(s, p("vmcores")) == 2
    assert value(s, p("collector_success"), collector="vmcores") == 0
    assert value(s, p("collector_success"), collector="kdump") == 1
