"""Whatever the host files say, every scrape is one valid page.

Arbitrary text goes into each input that reaches a label value: mountstats device, mount
point and operation names; mountinfo mount points; kernel log server names; dump directory
names and panic reasons; os-release; kdump.conf. Each time, the whole page must parse with
prometheus_client's parser (Prometheus drops the whole scrape when it does not), hold no
series twice, carry every collector's success, and only the collector that read the input
may fail. promtool check metrics must stay silent on a sample of the pages.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import trees
from conftest import Samples, value
from panicwatch.background.kernel_log import KmsgWatcher
from panicwatch.collectors.base import PanicwatchCollector
from panicwatch.collectors.kernel_log import KernelLogCollector
from panicwatch.collectors.registry import build_registry, host_of, make_areas
from panicwatch.exposition import printable, render_all
from panicwatch.host import Host
from panicwatch.settings import Settings
from test_kernel_log_collector import Datagrams

FIXTURES = Path(__file__).parent / "fixtures"
COLLECTORS = ("kdump", "vmcores", "kernel", "readiness", "nfs", "rpc", "nfs_sockets",
              "blocked_tasks")
EXAMPLES = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
PROMTOOL_EVERY = 15  # examples between two promtool runs (each run is a process)

# Anything at all, and text made of the characters the format and the kernel escape.
nasty = st.text(alphabet=st.sampled_from(' \t\n\\"{}=,#:\x00\x7fü€\u2028'), max_size=12)
anything = st.one_of(st.text(max_size=40), nasty)


def kernel_escaped(text: str) -> str:
    """seq_escape(" \\t\\n\\\\"), as the kernel writes mount points and devices."""
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in text)


class Pages:
    """Scrapes one registry and checks every page; promtool on every PROMTOOL_EVERY-th."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.count = 0
        self.linted = 0

    def scrape(self) -> Samples:
        page = render_all(self.registry)
        text = page.decode("utf-8")  # strict: the page is UTF-8
        samples: Samples = {}
        families = [f.name for f in text_string_to_metric_families(text)]
        assert len(families) == len(set(families)), "a family appears twice"
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                assert key not in samples, f"series twice: {key}"
                samples[key] = s.value
        self.count += 1
        if self.count % PROMTOOL_EVERY == 1:
            lint = subprocess.run(["promtool", "check", "metrics"], input=page,
                                  capture_output=True, timeout=60)
            assert (lint.returncode, lint.stdout, lint.stderr) == (0, b"", b""), text
            self.linted += 1
        return samples


def only_failing(samples: Samples, allowed: set[str]) -> None:
    """Every collector reported, and none failed but those in ``allowed``."""
    for name in COLLECTORS:
        success = value(samples, "panicwatch_collector_success", collector=name)
        assert success in (0, 1), name
        if name not in allowed:
            assert success == 1, name


@pytest.fixture(scope="module")
def nfs_host(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trees.build("nfs_client", tmp_path_factory.mktemp("page") / "root")


def restoring(root: Path, *files: str) -> Callable[[], None]:
    saved = {f: (root / f).read_bytes() for f in files}

    def restore() -> None:
        for f, data in saved.items():
            (root / f).write_bytes(data)

    return restore


def test_baseline_page_is_clean(nfs_host: Path) -> None:
    pages = Pages(build_registry(Settings(path_rootfs=nfs_host)))
    only_failing(pages.scrape(), set())
    assert pages.linted == 1


def test_mountstats_names_never_break_the_page(nfs_host: Path) -> None:
    pages = Pages(build_registry(Settings(path_rootfs=nfs_host, collector_nfs_all_ops=True,
                                          collector_nfs_events=True)))
    restore = restoring(nfs_host, "proc/self/mountstats")
    block = (FIXTURES / "mountstats/debian12_v42.txt").read_text()
    op_name = st.text(min_size=1, max_size=12).filter(
        lambda t: all(not c.isspace() and c != ":" for c in t))

    @EXAMPLES
    @given(device=anything.filter(bool), mountpoint=anything.filter(bool), op=op_name)
    def check(device: str, mountpoint: str, op: str) -> None:
        text = block.replace("files.lab.example:/srv/projects", kernel_escaped(device)).replace(
            "mounted on /srv/projects ", f"mounted on {kernel_escaped(mountpoint)} ").replace(
            "\t     GETATTR:", f"\t     {op}:")
        (nfs_host / "proc/self/mountstats").write_text(text, encoding="utf-8", errors="surrogatepass")
        samples = pages.scrape()
        only_failing(samples, {"nfs"})
        if value(samples, "panicwatch_collector_success", collector="nfs") == 1:
            assert value(samples, "panicwatch_nfs_mount_age_seconds", mountpoint=mountpoint) == 3605
            assert value(samples, "panicwatch_nfs_operations_total", mountpoint=mountpoint,
                         op=op) == 4411270

    try:
        check()
    finally:
        restore()
    assert pages.linted >= 5


def test_mountinfo_mount_points_never_break_the_page(nfs_host: Path) -> None:
    pages = Pages(build_registry(Settings(path_rootfs=nfs_host)))
    restore = restoring(nfs_host, "proc/1/mountinfo")
    table = (nfs_host / "proc/1/mountinfo").read_text()

    @EXAMPLES
    @given(mountpoint=anything.filter(bool), garbage=st.one_of(st.just(""), anything))
    def check(mountpoint: str, garbage: str) -> None:
        text = table.replace(" /srv/projects ", f" /{kernel_escaped(mountpoint)} ")
        (nfs_host / "proc/1/mountinfo").write_text(text + garbage, encoding="utf-8",
                                                   errors="surrogatepass")
        samples = pages.scrape()
        # the mount table is shared: an unreadable line fails every collector that needs it
        only_failing(samples, {"kdump", "vmcores", "readiness", "nfs", "nfs_sockets"})
        if garbage == "" or garbage.isspace():
            only_failing(samples, set())
            assert value(samples, "panicwatch_nfs_mount_server_info", mountpoint="/" + mountpoint,
                         server="192.168.122.1", port="2049") == 1

    try:
        check()
    finally:
        restore()


def test_dump_names_and_panic_reasons_never_break_the_page(nfs_host: Path) -> None:
    pages = Pages(build_registry(Settings(path_rootfs=nfs_host)))
    crash = nfs_host / "var/crash"
    name = st.one_of(
        st.text(min_size=1, max_size=40).filter(lambda t: "/" not in t and "\x00" not in t
                                                 and t not in (".", "..")),
        # names that are not UTF-8 at all: os.scandir hands them over surrogate-escaped
        st.binary(min_size=1, max_size=20).filter(lambda b: b"/" not in b and b"\x00" not in b
                                                  and b not in (b".", b"..")).map(os.fsdecode))

    @EXAMPLES
    @given(name=name, reason=anything)
    def check(name: str, reason: str) -> None:
        shutil.rmtree(crash, ignore_errors=True)
        dump = crash / name
        dump.mkdir(parents=True)
        (dump / "vmcore").write_bytes(b"\x00" * 4096)
        (dump / "vmcore-dmesg.txt").write_text(
            f"[  100.000000] Kernel panic - not syncing: {reason}\n", errors="surrogatepass")
        samples = pages.scrape()
        only_failing(samples, set())
        assert value(samples, "panicwatch_vmcores") == 1
        [info] = [dict(labels) for (n, labels), _ in samples.items()
                  if n == "panicwatch_last_panic_info"]
        assert info["dump"] == printable(name)

    try:
        check()
    finally:
        shutil.rmtree(crash, ignore_errors=True)


def test_os_release_and_kdump_conf_never_break_the_page(nfs_host: Path) -> None:
    pages = Pages(build_registry(Settings(path_rootfs=nfs_host)))
    restore = restoring(nfs_host, "etc/os-release")

    @EXAMPLES
    @given(os_release=anything, path=anything.filter(lambda t: "\n" not in t and "\r" not in t))
    def check(os_release: str, path: str) -> None:
        (nfs_host / "etc/os-release").write_text(os_release, errors="surrogatepass")
        (nfs_host / "etc/kdump.conf").write_text(f"path {path}\ncore_collector makedumpfile\n",
                                                 errors="surrogatepass")
        samples = pages.scrape()
        only_failing(samples, {"kdump", "readiness", "vmcores"})
        targets = [dict(labels) for (n, labels), _ in samples.items()
                   if n == "panicwatch_kdump_dump_target_info"]
        assert len(targets) == 1

    try:
        check()
    finally:
        restore()
        (nfs_host / "etc/kdump.conf").unlink(missing_ok=True)


def test_kernel_log_server_names_never_break_the_page(nfs_host: Path) -> None:
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    watcher = KmsgWatcher(Path("/dev/kmsg"), opener=lambda path, at_end: Datagrams(ours),
                          replay=False)
    settings_ = Settings(path_rootfs=nfs_host)
    registry = CollectorRegistry()
    registry.register(PanicwatchCollector(host_of(settings_),
                                          [*make_areas(settings_), KernelLogCollector(watcher)]))
    pages = Pages(registry)
    watcher.start()
    sequence = iter(range(1, 1_000_000))

    @EXAMPLES
    @given(server=st.binary(min_size=1, max_size=30).filter(
        lambda b: not any(c in b" \t\n\r\x0b\x0c" for c in b)))
    def check(server: bytes) -> None:
        seq = next(sequence)
        # the kernel escapes control bytes, backslash and non-ASCII as \xNN in /dev/kmsg
        escaped = b"".join(b"\\x%02x" % c if c < 0x20 or c >= 0x7F or c == 0x5C else bytes((c,))
                           for c in server)
        kernel.send(b"5,%d,%d,-;nfs: server %s not responding, still trying\n"
                    % (seq, seq * 1000, escaped))
        deadline = time.monotonic() + 5
        while watcher.snapshot().records_seen < seq:
            assert time.monotonic() < deadline, "the watcher did not read the record"
            time.sleep(0.001)
        samples = pages.scrape()
        only_failing(samples, set())
        name = server.decode("utf-8", "surrogateescape")
        if not any(c.isspace() for c in name):  # else not a server name: no event at all
            assert value(samples, "panicwatch_nfs_servers_not_responding",
                         server=printable(name)) == 1

    try:
        check()
    finally:
        watcher.stop()
        kernel.close()


def test_a_page_lives_on_when_a_collector_cannot_render(tmp_path: Path) -> None:
    """A family that cannot be written (a bug, or a value no format holds) is left out: the
    collector is marked failed, its other families stay, the other collectors are untouched."""
    from prometheus_client.core import GaugeMetricFamily

    class Bad:
        name = "bad"

        def collect(self, reader):
            yield GaugeMetricFamily("panicwatch_bad_first", "Fine.", value=1)
            broken = GaugeMetricFamily("panicwatch_bad_second", "Broken.", labels=["x"])
            broken.add_metric(["y"], "NaN?")  # type: ignore[arg-type]
            yield broken
            twice = GaugeMetricFamily("panicwatch_bad_third", "Twice.", labels=["x"])
            twice.add_metric(["y"], 1)
            twice.add_metric(["y"], 2)
            yield twice
            yield GaugeMetricFamily("panicwatch_bad_last", "Fine.", value=4)

    class Good:
        name = "good"

        def collect(self, reader):
            yield GaugeMetricFamily("panicwatch_good", "Fine.", value=2)

    registry = CollectorRegistry()
    registry.register(PanicwatchCollector(Host.from_paths(tmp_path), [Bad(), Good()]))
    samples = Pages(registry).scrape()
    assert value(samples, "panicwatch_collector_success", collector="bad") == 0
    assert value(samples, "panicwatch_collector_success", collector="good") == 1
    assert value(samples, "panicwatch_bad_first") == 1
    assert value(samples, "panicwatch_bad_last") == 4
    assert value(samples, "panicwatch_good") == 2
    assert not [k for k in samples if k[0] in ("panicwatch_bad_second", "panicwatch_bad_third")]


def test_an_over_mounted_mount_point_is_one_series(tmp_path: Path) -> None:
    (tmp_path / "proc/1").mkdir(parents=True)
    (tmp_path / "proc/1/mountinfo").write_text(
        "22 1 253:0 / / rw - xfs /dev/vda1 rw\n"
        "40 22 0:50 / /srv/a rw - nfs4 filer:/a rw,vers=4.2,addr=10.0.0.1\n"
        "41 40 0:51 / /srv/a rw - nfs4 filer2:/a rw,vers=4.2,addr=10.0.0.2\n")
    samples = Pages(build_registry(Settings(path_rootfs=tmp_path))).scrape()
    assert [dict(labels) for (n, labels) in samples if n == "panicwatch_nfs_mount_server_info"] == [
        {"mountpoint": "/srv/a", "server": "10.0.0.2", "port": "2049"}]
