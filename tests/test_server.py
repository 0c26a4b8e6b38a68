"""`panicwatch serve` as a subprocess on a free port, scraped over real HTTP."""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import scrape_text, value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(root: Path, *args: str) -> Iterator[str]:
    with serve_process(root, *args) as (base, _):
        yield base


def healthz_answers(base: str) -> None:
    urllib.request.urlopen(base + "/healthz", timeout=1).read()


@contextmanager
def serve_process(root: Path, *args: str, ready: Callable[[str], None] = healthz_answers
                  ) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`panicwatch serve` on a free port, once ready(base) stops raising OSError."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "exporter")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "panicwatch", "serve", "--web.listen-address",
         f"127.0.0.1:{port}", "--path.rootfs", str(root), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            ready(base)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"serve did not start: {proc.communicate()[1]}") from None
            time.sleep(0.1)
    try:
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def server(tree) -> Iterator[str]:
    with serving(tree("fedora_vmcores")) as base:
        yield base


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_metrics_over_http(server):
    status, headers, body = get(server + "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=")
    s = scrape_text(body.decode())
    assert value(s, "panicwatch_vmcores") == 2
    assert value(s, "panicwatch_kdump_loaded") == 1
    assert value(s, "panicwatch_collector_success", collector="kdump") == 1


def test_metrics_gzip(server):
    status, headers, body = get(server + "/metrics", **{"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert b"panicwatch_vmcores 2.0" in gzip.decompress(body)


@pytest.mark.parametrize("header", ["gzip;q=0", "identity", "gzip;q=0, identity", "*;q=0, identity",
                                    "deflate", "br;q=1, gzip;q=0.5, identity;q=0.8", "gzip;q=nope", ""])
def test_metrics_uncompressed_unless_gzip_is_wanted(server, header):
    status, headers, body = get(server + "/metrics", **{"Accept-Encoding": header})
    assert status == 200 and "Content-Encoding" not in headers
    assert b"panicwatch_vmcores 2.0" in body


@pytest.mark.parametrize("header", ["gzip", "GZIP;Q=0.5", "deflate, gzip;q=1.0", "*",
                                    "gzip;q=0.5, identity;q=0.5", "identity;q=0, *"])
def test_metrics_gzipped_when_gzip_is_wanted(server, header):
    status, headers, body = get(server + "/metrics", **{"Accept-Encoding": header})
    assert (status, headers["Content-Encoding"], headers["Vary"]) == (200, "gzip", "Accept-Encoding")
    assert b"panicwatch_vmcores 2.0" in gzip.decompress(body)


def test_landing_page_reads_the_host_at_most_every_30_s(tree):
    """The page shows the last scrape's report, or one it made itself less than 30 s ago:
    after the first load, a change on the host shows only once a scrape has read it."""
    root = tree("fedora_vmcores")
    with serving(root) as base:
        assert "no dumps in" not in get(base + "/")[2].decode()
        for dump in (root / "var/crash").iterdir():
            shutil.rmtree(dump)
        for _ in range(20):  # a refresh loop: the report it shows is the one made first
            assert "2 dump(s) waiting in /var/crash" in get(base + "/")[2].decode()
        get(base + "/metrics")  # a scrape reads the host, and the page shows what it saw
        assert "no dumps in /var/crash" in get(base + "/")[2].decode()


def test_healthz_landing_and_404(server):
    assert get(server + "/healthz")[0:3:2] == (200, b"ok\n")
    status, headers, body = get(server + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert '<a href="/metrics">Metrics</a>' in page
    assert "Panic readiness: READY, with" in page
    assert "no_vmcore_pending" in page and "2 dump(s) waiting in /var/crash" in page
    assert get(server + "/nope")[0] == 404


def test_concurrent_scrapes_agree(server):
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda _: get(server + "/metrics")[2], range(16)))
    values = {value(scrape_text(b.decode()), "panicwatch_vmcore_bytes") for b in bodies}
    assert values == {50 * (1 << 20)}


def test_bad_files_fail_their_collector_and_the_scrape_is_served(tree):
    root = tree("garbled")
    (root / "proc/sys/kernel/panic_on_oops").write_text("")  # empty
    (root / "etc/kdump.conf").unlink()
    (root / "etc/kdump.conf").mkdir()  # unreadable even for root: EISDIR
    with serving(root) as base:
        status, _, body = get(base + "/metrics")
    assert status == 200
    s = scrape_text(body.decode())
    assert value(s, "panicwatch_collector_success", collector="kdump") == 0
    assert value(s, "panicwatch_collector_success", collector="kernel") == 0
    assert value(s, "panicwatch_kernel_panic_setting", setting="panic_on_oops") is None
    assert value(s, "panicwatch_kernel_panic_setting", setting="softlockup_panic") == 1
    assert value(s, "panicwatch_kdump_loaded") == 1


MOUNTSTATS = Path(__file__).parent / "fixtures" / "mountstats"


@pytest.mark.parametrize("detail", [[], ["--collector.nfs.all-ops", "--collector.nfs.op-bytes",
                                         "--collector.nfs.events",
                                         "--collector.nfs.per-transport"]])
def test_every_metric_passes_promtool(tree, detail):
    """Every family, NFS from every fixture format included, as promtool's linter sees it."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: .ci/run installs Debian's prometheus package"
    root = tree("fedora_vmcores")
    fixtures = sorted(MOUNTSTATS.glob("*.txt"), key=lambda f: f.name == "truncated.txt")
    (root / "proc/self/mountstats").write_text("\n".join(f.read_text() for f in fixtures))
    (root / "proc/net/rpc").mkdir(parents=True)
    (root / "proc/net/rpc/nfs").write_text("net 0 0 0 0\nrpc 1000 2 1000\n")
    with serving(root, *detail) as base:
        status, _, body = get(base + "/metrics")
    assert status == 200
    s = scrape_text(body.decode())
    # distinct mount points (an over-mounted one counts once), /archive (truncated) left out
    assert len([k for k in s if k[0] == "panicwatch_nfs_mount_info"]) == 7
    lint = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
    assert (lint.returncode, lint.stdout, lint.stderr) == (0, b"", b"")


def test_no_collector_canary_runs_no_probes(tree):
    root = tree("nfs_client")
    with serving(root) as base:
        s = scrape_text(get(base + "/metrics")[2].decode())
        assert value(s, "panicwatch_canary_targets") == 1  # the NFS mount of the tree
    with serving(root, "--no-collector.canary") as base:
        s = scrape_text(get(base + "/metrics")[2].decode())
    assert value(s, "panicwatch_collector_success", collector="canary") is None
    assert not [k for k in s if k[0].startswith("panicwatch_canary_")]
    assert value(s, "panicwatch_collector_success", collector="nfs") == 1


def test_landing_page_with_a_dump_whose_name_is_not_utf8(tree):
    root = tree("fedora_vmcores")
    dump = root / os.fsdecode(b"var/crash/127.0.0.1-2024-05-02-\xe9t\xe9")
    dump.mkdir()
    (dump / "vmcore").write_bytes(b"\0" * 512)
    with serving(root) as base:
        status, _, body = get(base + "/")
        assert status == 200
        assert "newest 127.0.0.1-2024-05-02-\\xe9t\\xe9" in body.decode()
        s = scrape_text(get(base + "/metrics")[2].decode())
    assert value(s, "panicwatch_vmcores") == 3
