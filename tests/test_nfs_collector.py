"""The nfs collector on fixture mountstats: exact values, the op selection, the cardinality
controls, and a malformed block that loses only its own mount."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from conftest import names, scrape_text, value
from panicwatch.collectors.base import PanicwatchCollector
from panicwatch.collectors.nfs import NfsCollector
from panicwatch.collectors.registry import host_of
from panicwatch.exposition import render_all
from panicwatch.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "mountstats"


class Scraper:
    """The nfs collector on a fake procfs, scraped as the exporter does."""

    def __init__(self, root: Path, **settings: object) -> None:
        self.root = root
        self.settings = Settings(path_rootfs=root, **settings)
        self.registry = CollectorRegistry()
        self.registry.register(PanicwatchCollector(host_of(self.settings),
                                                   [NfsCollector(self.settings)]))

    def write(self, *fixtures: str, text: str = "") -> None:
        body = "".join((FIXTURES / f).read_text() for f in fixtures) + text
        (self.root / "proc/self/mountstats").write_text(body)

    def scrape(self):
        return scrape_text(render_all(self.registry).decode())


@pytest.fixture
def fake_proc(tmp_path: Path) -> Path:
    (tmp_path / "proc/self").mkdir(parents=True)
    return tmp_path


def p(name: str) -> str:
    return f"panicwatch_{name}"


def ops_of(samples, mountpoint: str) -> set[str]:
    return {dict(lb)["op"] for lb in names(samples, p("nfs_operations_total"))
            if dict(lb)["mountpoint"] == mountpoint}


def test_nfsv42_mount_exact_values(fake_proc):
    s = Scraper(fake_proc)
    s.write("debian12_v42.txt")
    m = s.scrape()
    mp = "/srv/projects"
    assert value(m, p("nfs_mount_info"), mountpoint=mp, export="/srv/projects",
                 server="files.lab.example", version="4.2", proto="tcp") == 1
    assert value(m, p("nfs_mount_age_seconds"), mountpoint=mp) == 3605
    assert value(m, p("nfs_operations_total"), mountpoint=mp, op="READ") == 1281923
    assert value(m, p("nfs_operation_transmissions_total"), mountpoint=mp, op="READ") == 1281925
    assert value(m, p("nfs_operation_major_timeouts_total"), mountpoint=mp, op="WRITE") == 1
    # milliseconds in the file, seconds in the metrics
    assert value(m, p("nfs_operation_queue_seconds_total"), mountpoint=mp, op="READ") == 3.211
    assert value(m, p("nfs_operation_rtt_seconds_total"), mountpoint=mp, op="READ") == 2514.822
    assert value(m, p("nfs_operation_execute_seconds_total"), mountpoint=mp, op="READ") == 2561.307
    assert value(m, p("nfs_operation_errors_total"), mountpoint=mp, op="OPEN") == 1022
    assert value(m, p("nfs_read_bytes_total"), mountpoint=mp, kind="normal") == 167851724288
    assert value(m, p("nfs_read_bytes_total"), mountpoint=mp, kind="server") == 167851724288
    assert value(m, p("nfs_write_bytes_total"), mountpoint=mp, kind="direct") == 0
    assert value(m, p("nfs_pages_total"), mountpoint=mp, direction="write") == 22538302
    assert value(m, p("nfs_transport_sends_total"), mountpoint=mp) == 7181543
    assert value(m, p("nfs_transport_connects_total"), mountpoint=mp) == 1
    assert value(m, p("nfs_transport_idle_seconds"), mountpoint=mp) == 1
    assert value(m, p("nfs_transport_pending_queue_sum_total"), mountpoint=mp) == 1220331
    assert value(m, p("nfs_parse_errors_total")) == 0
    assert value(m, p("collector_success"), collector="nfs") == 1
    # not by default: per-op bytes and events
    assert not names(m, p("nfs_operation_sent_bytes_total"))
    assert not names(m, p("nfs_events_total"))


def test_default_ops_are_the_common_ones_plus_those_that_move(fake_proc):
    s = Scraper(fake_proc)
    s.write("debian12_v42.txt")
    mp = "/srv/projects"
    common = {"READ", "WRITE", "COMMIT", "OPEN", "CLOSE", "SETATTR", "ACCESS", "GETATTR",
              "LOOKUP", "READDIR"}  # the always-on set as NFSv4 has it (zeros included)
    assert ops_of(s.scrape(), mp) == common
    # LOCK (2196 so far) is counted again: in use now, exported from this scrape on
    text = (FIXTURES / "debian12_v42.txt").read_text()
    s.write(text=text.replace("LOCK: 2196 2196 0 551196", "LOCK: 2197 2197 0 551447"))
    m = s.scrape()
    assert ops_of(m, mp) == common | {"LOCK"}
    assert value(m, p("nfs_operations_total"), mountpoint=mp, op="LOCK") == 2197
    # and kept once it stops moving, so its series does not flap
    assert ops_of(s.scrape(), mp) == common | {"LOCK"}


def test_all_ops_op_bytes_and_events(fake_proc):
    s = Scraper(fake_proc, collector_nfs_all_ops=True, collector_nfs_op_bytes=True, collector_nfs_events=True)
    s.write("debian12_v42.txt")
    m = s.scrape()
    mp = "/srv/projects"
    assert len(ops_of(m, mp)) == 69
    assert value(m, p("nfs_operations_total"), mountpoint=mp, op="LOCK") == 2196
    assert value(m, p("nfs_operation_sent_bytes_total"), mountpoint=mp, op="WRITE") == 92318870528
    assert value(m, p("nfs_operation_received_bytes_total"), mountpoint=mp, op="READ") == 167851724288
    assert value(m, p("nfs_events_total"), mountpoint=mp, event="inodevalidate") == 4411102
    assert value(m, p("nfs_events_total"), mountpoint=mp, event="pnfswrite") == 0
    assert len(names(m, p("nfs_events_total"))) == 27


def test_old_kernel_without_errors_field(fake_proc):
    s = Scraper(fake_proc, collector_nfs_events=True)
    s.write("rhel5_v3_statvers10.txt")
    m = s.scrape()
    assert len(names(m, p("nfs_events_total"))) == 25
    assert not names(m, p("nfs_operation_errors_total"))  # 8-value op lines: no errors field
    assert {dict(lb)["op"] for lb in names(m, p("nfs_operations_total"))} == {
        "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READ", "WRITE", "READDIR", "READDIRPLUS",
        "COMMIT"}


def test_wrapped_counters_are_exported_as_they_are(fake_proc):
    s = Scraper(fake_proc, collector_nfs_all_ops=True)
    s.write("el7_v3_wrapped.txt")
    m = s.scrape()
    assert 18446744073709551615 in m.values()
    assert value(m, p("collector_success"), collector="nfs") == 1


def test_nconnect_transports_summed_or_apart(fake_proc):
    s = Scraper(fake_proc)
    s.write("nconnect4.txt")
    m = s.scrape()
    assert value(m, p("nfs_transport_sends_total"), mountpoint="/scratch") == (
        2000061 + 2000050 + 2000055 + 2000048)
    assert value(m, p("nfs_transport_receives_total"), mountpoint="/scratch") == (
        2000061 + 2000050 + 2000054 + 2000048)
    assert value(m, p("nfs_transport_idle_seconds"), mountpoint="/scratch") == 0  # the least
    assert value(m, p("nfs_transport_max_slots"), mountpoint="/scratch") == 128
    s = Scraper(fake_proc, collector_nfs_per_transport=True)
    m = s.scrape()
    assert value(m, p("nfs_transport_idle_seconds"), mountpoint="/scratch", transport="2") == 2
    assert value(m, p("nfs_transport_sends_total"), mountpoint="/scratch", transport="3") == 2000048
    assert len(names(m, p("nfs_transport_sends_total"))) == 4


def test_udp_transport_has_no_connects(fake_proc):
    s = Scraper(fake_proc)
    s.write("udp_v3.txt")
    m = s.scrape()
    sends = {dict(lb)["mountpoint"]: v for lb, v in names(m, p("nfs_transport_sends_total")).items()}
    assert sends == {"/opt/tools": 127413, "/mnt/data": 31007}
    assert not names(m, p("nfs_transport_connects_total"))
    assert value(m, p("nfs_transport_max_slots"), mountpoint="/mnt/data") == 16
    assert value(m, p("nfs_transport_max_slots"), mountpoint="/opt/tools") is None


def test_mount_and_op_filters(fake_proc):
    s = Scraper(fake_proc, collector_nfs_mount_exclude="^/(home|archive)$",
                collector_nfs_op_include="^(READ|WRITE)$")
    s.write("nconnect4.txt", "truncated.txt")
    m = s.scrape()
    mounts = {dict(lb)["mountpoint"] for lb in names(m, p("nfs_mount_info"))}
    assert mounts == {"/srv/projects", "/scratch"}
    assert {dict(lb)["op"] for lb in names(m, p("nfs_operations_total"))} == {"READ", "WRITE"}


def test_truncated_block_loses_only_its_mount_and_is_logged_once(fake_proc, caplog):
    caplog.set_level(logging.WARNING, logger="panicwatch.collector")
    s = Scraper(fake_proc)
    s.write("nconnect4.txt", "truncated.txt")
    m = s.scrape()
    mounts = {dict(lb)["mountpoint"] for lb in names(m, p("nfs_mount_info"))}
    assert mounts == {"/scratch", "/srv/projects", "/home"}  # /archive was cut short
    assert value(m, p("nfs_parse_errors_total")) == 1
    assert value(m, p("collector_success"), collector="nfs") == 0
    m = s.scrape()
    assert value(m, p("nfs_parse_errors_total")) == 2  # counts every scrape that skipped it
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "/archive" in warnings[0] and "mountstats" in warnings[0]


def test_same_export_on_two_mount_points_stays_apart(fake_proc):
    block = (FIXTURES / "nconnect4.txt").read_text()
    s = Scraper(fake_proc)
    s.write(text=block + block.replace("mounted on /scratch ", "mounted on /scratch2 "))
    m = s.scrape()
    info = names(m, p("nfs_mount_info"))
    assert {dict(lb)["mountpoint"] for lb in info} == {"/scratch", "/scratch2"}
    assert {dict(lb)["export"] for lb in info} == {"/exports/scratch"}


def test_over_mounted_mount_point_exports_the_visible_mount(fake_proc):
    block = (FIXTURES / "nconnect4.txt").read_text()
    over = block.replace("storage01:/exports/scratch", "storage02:/exports/other").replace(
        "\tage:\t86400", "\tage:\t60")
    s = Scraper(fake_proc)
    s.write(text=block + over)
    m = s.scrape()
    [labels] = names(m, p("nfs_mount_info"))
    assert dict(labels)["server"] == "storage02"
    assert value(m, p("nfs_mount_age_seconds"), mountpoint="/scratch") == 60


def test_escaped_mount_points_are_valid_label_values(fake_proc):
    block = (FIXTURES / "nconnect4.txt").read_text().replace(
        "mounted on /scratch ", "mounted on /mnt/a\\040b\\012\\134\"c ")
    s = Scraper(fake_proc)
    s.write(text=block)
    m = s.scrape()
    assert value(m, p("nfs_mount_age_seconds"), mountpoint='/mnt/a b\n\\"c') == 86400


def test_no_nfs_client(fake_proc):
    s = Scraper(fake_proc)
    s.write(text="device proc mounted on /proc with fstype proc\n")
    m = s.scrape()
    assert value(m, p("collector_success"), collector="nfs") == 1
    assert not names(m, p("nfs_mount_info"))


def test_missing_mountstats_fails_the_collector(fake_proc):
    m = Scraper(fake_proc).scrape()
    assert value(m, p("collector_success"), collector="nfs") == 0


def test_mount_points_joined_to_server_addresses(fake_proc):
    (fake_proc / "proc/1").mkdir(parents=True)
    (fake_proc / "proc/1/mountinfo").write_text(
        "22 1 253:0 / / rw - xfs /dev/vda1 rw\n"
        "40 22 0:50 / /srv/a rw - nfs4 filer:/a rw,vers=4.2,addr=192.168.122.1\n"
        "41 22 0:51 / /srv/b rw - nfs4 filer:/b rw,vers=4.2,port=20490,addr=::ffff:192.168.122.1\n"
        "42 22 0:52 / /srv/c rw - nfs filer:/c rw,vers=3,addr=filer.example\n")
    s = Scraper(fake_proc).scrape()
    info = {dict(lb)["mountpoint"]: (dict(lb)["server"], dict(lb)["port"])
            for lb in names(s, "panicwatch_nfs_mount_server_info")}
    # /srv/c names its server by hostname: never resolved on the scrape path
    assert info == {"/srv/a": ("192.168.122.1", "2049"), "/srv/b": ("192.168.122.1", "20490")}
    # the mount filters apply here as to every nfs family
    s = Scraper(fake_proc, collector_nfs_mount_exclude="^/srv/b$").scrape()
    assert {dict(lb)["mountpoint"] for lb in names(s, "panicwatch_nfs_mount_server_info")} == {
        "/srv/a"}
