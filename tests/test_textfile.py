"""`panicwatch metrics --output FILE` for node_exporter's textfile collector: a real
node_exporter (Debian's prometheus-node-exporter) serves what was written, readers never see
half a page, failures leave nothing behind, and the shipped timer and service verify."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import scrape_text, value
from monitoring_stack import free_port
from panicwatch.cli import build_parser, load_settings
from panicwatch.textfile import write_atomically
from test_cli import run
from test_deploy import REPO, service_value, service_values, verify_unit

SERVICE = REPO / "deploy/systemd/panicwatch-textfile.service"
TIMER = REPO / "deploy/systemd/panicwatch-textfile.timer"
DEBIAN_TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"


def node_exporter_binary() -> str:
    found = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node_exporter is not installed (.ci/run installs prometheus-node-exporter)")
        pytest.skip("node_exporter is not installed")
    return found


@pytest.fixture
def node_exporter(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    directory = tmp_path / "textfile"
    directory.mkdir()
    port = free_port()
    proc = subprocess.Popen([node_exporter_binary(), f"--web.listen-address=127.0.0.1:{port}",
                             "--collector.disable-defaults", "--collector.textfile",
                             f"--collector.textfile.directory={directory}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "node_exporter did not start"
                time.sleep(0.05)
        yield url, directory
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def test_node_exporter_serves_the_page(node_exporter, tree):
    url, directory = node_exporter
    root = tree("nfs_client")
    target = directory / "panicwatch.prom"
    r = run("metrics", "--path.rootfs", str(root), "--output", str(target))
    assert (r.returncode, r.stdout) == (0, "")
    assert target.stat().st_mode & 0o777 == 0o644  # node_exporter runs as another user
    assert [p.name for p in directory.iterdir()] == ["panicwatch.prom"]  # no temporary left
    written = scrape_text(target.read_text())
    served = scrape_text(fetch(url))
    assert value(served, "node_textfile_scrape_error") == 0
    assert value(served, "node_textfile_mtime_seconds", file=str(target)) == int(target.stat().st_mtime)
    # every series written is served unchanged (node_exporter adds only its own)
    ours = {k: v for k, v in served.items() if k[0].startswith("panicwatch_")}
    assert ours == written
    assert value(served, "panicwatch_rpc_retransmissions_total") == 87  # the tree's /proc/net/rpc/nfs
    assert value(served, "panicwatch_kdump_loaded") == 1


def test_readers_never_see_half_a_page(tmp_path):
    target = tmp_path / "panicwatch.prom"
    pages = [b"".join(f"panicwatch_x{{n=\"{i}\"}} {version}\n".encode() for i in range(20_000))
             for version in (1, 2)]
    write_atomically(target, [pages[0]])
    stop = threading.Event()
    seen: set[bytes] = set()

    def read_forever() -> None:
        while not stop.is_set():
            seen.add(target.read_bytes())

    reader = threading.Thread(target=read_forever)
    reader.start()
    try:
        for i in range(100):
            write_atomically(target, [pages[i % 2][:200_000], pages[i % 2][200_000:]])
    finally:
        stop.set()
        reader.join()
    assert seen <= set(pages), f"{len(seen - set(pages))} torn reads"
    assert seen == set(pages)  # both were read: the test did race the writer
    assert [p.name for p in tmp_path.iterdir()] == ["panicwatch.prom"]


def test_the_temporary_file_is_hidden_from_node_exporter(tmp_path, monkeypatch):
    target = tmp_path / "panicwatch.prom"
    names: list[str] = []

    def watch(chunks):
        names.extend(p.name for p in tmp_path.iterdir())  # while the page is being written
        yield from chunks

    write_atomically(target, watch([b"panicwatch_up 1\n"]))
    [temporary] = names
    assert temporary.startswith(".panicwatch.prom.") and temporary.endswith(".tmp")
    assert not temporary.endswith(".prom")  # the textfile collector reads *.prom only


def test_a_failed_write_keeps_the_old_page_and_leaves_nothing(tmp_path):
    target = tmp_path / "panicwatch.prom"
    target.write_bytes(b"panicwatch_up 1\n")

    def broken():
        yield b"panicwatch_up 0\n"
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomically(target, broken())
    assert target.read_bytes() == b"panicwatch_up 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["panicwatch.prom"]


def test_unwritable_output_exits_2_with_the_reason(tmp_path):
    r = run("metrics", "--path.rootfs", "/", "--no-collector.nfs_sockets",
            "--output", str(tmp_path / "missing" / "panicwatch.prom"))
    assert r.returncode == 2
    assert r.stderr.splitlines()[-1] == (f"panicwatch metrics: cannot write {tmp_path}/missing/"
                                         "panicwatch.prom: No such file or directory")


def test_timer_and_service_verify(tmp_path):
    result = verify_unit(SERVICE.read_text(), tmp_path, name=SERVICE.name,
                         others={TIMER.name: TIMER.read_text()})
    assert result.clean, result.output


def test_service_writes_where_debian_node_exporter_reads():
    text = SERVICE.read_text()
    argv = shlex.split(service_value(text, "ExecStart") or "")
    assert argv[0] == "/usr/local/bin/panicwatch"
    args = build_parser().parse_args(argv[1:])
    settings = load_settings(args)
    assert (args.command, str(settings.metrics_output)) == (
        "metrics", f"{DEBIAN_TEXTFILE_DIR}/panicwatch.prom")
    # the one writable path is that directory; root without the capabilities that would let
    # it write anywhere else
    assert service_values(text, "ReadWritePaths") == [DEBIAN_TEXTFILE_DIR]
    assert service_value(text, "ProtectSystem") == "strict"
    caps = set((service_value(text, "CapabilityBoundingSet") or "").split())
    assert caps == {"CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE"}
    assert service_value(text, "Type") == "oneshot"
