"""The corners of kdump state: unknown RAM, unreadable config, legacy fadump, masked units,
hostile dump directories, and one read of each snapshot per scrape."""

from __future__ import annotations

import os

import pytest
from prometheus_client import CollectorRegistry

from conftest import names, scrape, scrape_text, value
from panicwatch.collectors.base import PanicwatchCollector
from panicwatch.collectors.registry import build_registry, host_of, make_areas
from panicwatch.exposition import render_all
from panicwatch.settings import Settings
from panicwatch.snapshots import vmcores
from test_kdump_trees import checks, p, successes
from trees import DMESG_SYSRQ, GiB, MiB

ZEROED_IOMEM = (
    "00000000-00000000 : Reserved\n00000000-00000000 : System RAM\n"
    "  00000000-00000000 : Crash kernel\n00000000-00000000 : System RAM\n"
    "  00000000-00000000 : Crash kernel\n"
)


def test_zeroed_iomem_ranges_are_not_a_reservation(tree):
    # Unprivileged, nothing reserved: the zeroed Crash kernel ranges (size 1 each) are not bytes.
    root = tree("unprivileged")
    (root / "sys/kernel/kexec_crash_size").write_text("0\n")
    (root / "sys/kernel/kexec_crash_loaded").write_text("0\n")
    s = scrape(root, collector_kdump_min_free_ratio=0)
    assert value(s, p("kdump_crash_memory_reserved_bytes")) == 0
    assert checks(s)["crash_memory_reserved"] == 0


def test_unprivileged_reader_metrics(tree):
    root = tree("unprivileged")
    (root / "proc/iomem").write_text(ZEROED_IOMEM)
    s = scrape(root, collector_kdump_min_free_ratio=0)
    assert value(s, p("kdump_loaded")) == 1
    assert value(s, p("kdump_crash_memory_reserved_bytes")) == 512 * MiB
    # RAM from MemTotal + the reservation: 15,400,000 KiB + 512M rounds into 4G-64G
    assert value(s, p("kdump_crash_memory_requested_bytes")) == 512 * MiB + 256 * MiB
    assert value(s, p("kdump_crash_memory_recommended_bytes")) == 256 * MiB
    c = checks(s)
    assert c["crash_memory_reserved"] == 1  # the invisible ,low part is not held against it
    assert c["crash_memory_sufficient"] == 1


def test_unknown_ram_leaves_the_request_unresolved(tree):
    root = tree("rhel9_armed")
    (root / "proc/iomem").write_text(ZEROED_IOMEM)
    (root / "proc/meminfo").unlink()
    s = scrape(root, collector_kdump_min_free_ratio=0)
    assert value(s, p("kdump_crash_memory_reserved_bytes")) == 256 * MiB
    assert not names(s, p("kdump_crash_memory_requested_bytes"))
    assert not names(s, p("kdump_crash_memory_recommended_bytes"))
    c = checks(s)
    assert "crash_memory_reserved" not in c  # skipped, not a guess
    assert "crash_memory_sufficient" not in c
    assert successes(s)["kdump"] == 0  # /proc/meminfo is required


def test_kdump_conf_that_cannot_be_read_is_an_unknown_target(tree):
    root = tree("rhel9_armed")
    conf = root / "etc/kdump.conf"
    conf.unlink()
    conf.mkdir()  # EISDIR: a real read error, whoever runs the test (root ignores modes)
    s = scrape(root, collector_kdump_min_free_ratio=0)
    assert value(s, p("kdump_dump_target_info"), path="", type="unknown") == 1
    assert not names(s, p("kdump_dump_target_free_bytes"))
    assert value(s, p("vmcores")) is None  # not counted in a directory that may be wrong
    assert "dump_target_ready" not in checks(s)
    assert successes(s)["kdump"] == 0
    assert successes(s)["vmcores"] == 0


def test_garbled_iomem_line_loses_only_itself(tree):
    root = tree("rhel9_armed")
    iomem = root / "proc/iomem"
    iomem.write_text("this is not an iomem line\n" + iomem.read_text())
    s = scrape(root, collector_kdump_min_free_ratio=0)
    assert value(s, p("kdump_crash_memory_reserved_bytes")) == 256 * MiB
    assert value(s, p("kdump_crash_memory_recommended_bytes")) == 256 * MiB
    assert successes(s)["kdump"] == 0


def _fadump_legacy(root, registered: str):
    """Kernels before 5.x have only /sys/kernel/fadump_* (no fadump/ directory)."""
    for name in ("enabled", "registered", "mem_reserved"):
        (root / f"sys/kernel/fadump/{name}").unlink(missing_ok=True)
    for name in ("fadump_enabled", "fadump_registered"):
        (root / f"sys/kernel/{name}").unlink()
    (root / "sys/kernel/fadump").rmdir()
    (root / "sys/kernel/fadump_enabled").write_text("1\n")
    (root / "sys/kernel/fadump_registered").write_text(registered)


def test_legacy_fadump_files(tree):
    root = tree("ppc64le_fadump")
    _fadump_legacy(root, "1\n")
    s = scrape(root, collector_kdump_min_free_ratio=0)
    assert value(s, p("kdump_loaded")) == 1
    assert value(s, p("kdump_crash_memory_reserved_bytes")) == 0  # no mem_reserved there
    assert successes(s)["kdump"] == 1


def test_fadump_enabled_but_not_registered(tree):
    root = tree("ppc64le_fadump")
    (root / "sys/kernel/fadump/registered").write_text("0\n")
    s = scrape(root, collector_kdump_min_free_ratio=0)
    assert value(s, p("kdump_loaded")) == 0
    assert checks(s)["crash_kernel_loaded"] == 0
    assert value(s, p("panic_ready")) == 0


def test_fadump_reserve_mem_sizes_the_area(tree):
    root = tree("ppc64le_fadump")
    (root / "proc/cmdline").write_text("root=/dev/sda2 ro fadump=on fadump_reserve_mem=1G\n")
    s = scrape(root, collector_kdump_min_free_ratio=0)
    assert value(s, p("kdump_crash_memory_requested_bytes")) == 1 * GiB
    assert checks(s)["crash_memory_reserved"] == 0  # 768M reserved < 1G asked


def test_fadump_ram_comes_from_iomem(tree):
    # 32 GiB of System RAM in iomem while MemTotal says 7.6 GB: the fadump table uses iomem.
    root = tree("ppc64le_fadump")
    (root / "proc/iomem").write_text("00000000-7ffffffff : System RAM\n")
    s = scrape(root, collector_kdump_min_free_ratio=0)
    assert value(s, p("kdump_crash_memory_recommended_bytes")) == 1 * GiB  # 16G-64G:1G
    assert value(s, p("kdump_crash_memory_requested_bytes")) == 1 * GiB


def test_masked_unit_is_not_enabled(tree):
    root = tree("rhel9_armed")
    (root / "etc/systemd/system/kdump.service").symlink_to("/dev/null")
    s = scrape(root, collector_kdump_min_free_ratio=0)
    assert value(s, p("kdump_service_enabled")) == 0
    assert checks(s)["kdump_enabled_at_boot"] == 0


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_dmesg_that_is_not_a_regular_file_is_never_opened(tree, tmp_path, kind):
    root = tree("fedora_vmcores")
    dmesg = root / "var/crash/127.0.0.1-2024-05-02-10:00:00/vmcore-dmesg.txt"
    dmesg.unlink()
    if kind == "fifo":
        os.mkfifo(dmesg)  # opening it for reading would block the scrape forever
    else:
        secret = tmp_path / "secret"
        secret.write_text(DMESG_SYSRQ)
        dmesg.symlink_to(secret)
    s = scrape(root, collector_kdump_min_free_ratio=0)
    info = names(s, p("last_panic_info"))
    assert [dict(labels)["kind"] for labels in info] == ["unknown"]


def test_crash_dir_scan_cap_is_reported(tree, monkeypatch):
    root = tree("rhel9_armed")
    for i in range(5):
        (root / f"var/crash/not-a-dump-{i}").mkdir()
    monkeypatch.setattr(vmcores, "MAX_ENTRIES", 3)
    s = scrape(root, collector_kdump_min_free_ratio=0)
    assert successes(s)["vmcores"] == 0
    assert value(s, p("vmcores")) == 0


def test_each_snapshot_is_read_once_per_scrape(tree, monkeypatch):
    calls = []
    real = vmcores.scan_crash_dir
    monkeypatch.setattr(vmcores, "scan_crash_dir",
                        lambda reader, d: calls.append(d) or real(reader, d))
    root = tree("fedora_vmcores")
    registry = build_registry(Settings(path_rootfs=root, collector_kdump_min_free_ratio=0))
    render_all(registry)
    assert calls == ["/var/crash"]  # vmcores and readiness share one listing
    render_all(registry)
    assert calls == ["/var/crash", "/var/crash"]  # and the next scrape reads afresh


def test_describe_does_no_io(tree, monkeypatch):
    settings = Settings(path_rootfs=tree("rhel9_armed"))
    collector = PanicwatchCollector(host_of(settings), make_areas(settings))

    def no_io(*args, **kwargs):
        raise AssertionError("describe() touched the host")

    monkeypatch.setattr("builtins.open", no_io)
    monkeypatch.setattr(os, "scandir", no_io)
    monkeypatch.setattr(os, "stat", no_io)
    monkeypatch.setattr(os, "statvfs", no_io)
    registry = CollectorRegistry()
    registry.register(collector)  # registration calls describe()
    assert collector.describe() == []
    monkeypatch.undo()
    assert value(scrape_text(render_all(registry).decode()), p("kdump_loaded")) == 1
