#!/usr/bin/env python3
"""HTTP serving under load: panicwatch against node_exporter, same tree, same run.

Builds a fixture root tree (tests/trees.py, ``nfs_client`` by default: RHEL 9 armed with an
NFSv4.2 mount, so every panicwatch collector has work), then for `panicwatch serve` and
Debian's prometheus-node-exporter (pointed at the same tree; once as shipped, with
``--web.max-requests=40``, and once unlimited) keeps 200 clients scraping /metrics back to
back for a fixed time, each scrape a new connection with ``Accept-Encoding: gzip`` as
Prometheus sends; panicwatch also with TLS and basic auth from a web config, and with
every collector off to show the HTTP layer's own ceiling. Prints requests/s, p50/p99
latency, failures, peak RSS and the most threads the server had, and panicwatch's ratios
to the unlimited node_exporter.

    python3 benchmarks/server_load.py [--clients 200] [--duration 10] [--tree nfs_client]

Needs: apt-get install prometheus-node-exporter; the project venv (make .venv/.installed).
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import bcrypt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import trees  # noqa: E402  (the fixture builders live with the tests)

PANICWATCH = ROOT / ".venv/bin/panicwatch"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
NO_COLLECTORS = [f"--no-collector.{c}" for c in (
    "kdump", "vmcores", "kernel", "readiness", "nfs", "rpc", "nfs_sockets", "blocked_tasks",
    "kernel_log", "canary")]
REQUEST = b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n\r\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def scrape(port: int, timeout: float = 30, tls: ssl.SSLContext | None = None,
           request: bytes = REQUEST) -> tuple[int, int]:
    """One scrape on a new connection: (HTTP status or 0 on a failure, bytes received)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
            s = tls.wrap_socket(raw) if tls else raw
            s.sendall(request)
            chunks = []
            while chunk := s.recv(1 << 16):
                chunks.append(chunk)
            s.close()
    except OSError:
        return 0, 0
    data = b"".join(chunks)
    try:
        return int(data.split(b" ", 2)[1]), len(data)
    except (IndexError, ValueError):
        return 0, len(data)


def wait_ready(port: int, proc: subprocess.Popen[bytes], tls: ssl.SSLContext | None,
               request: bytes) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited with {proc.returncode}")
        if scrape(port, 2, tls, request)[0] == 200:
            return
        time.sleep(0.1)
    raise SystemExit(f"port {port} never answered")


@dataclass
class Result:
    name: str
    requests: int
    failures: int
    seconds: float
    latencies: list[float]
    bytes: int
    peak_rss_kib: int
    max_threads: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


@dataclass(frozen=True)
class Run:
    name: str
    argv: list[str]
    tls: ssl.SSLContext | None = None
    request: bytes = REQUEST


def load(run: Run, clients: int, duration: float) -> Result:
    port = free_port()
    proc = subprocess.Popen([*run.argv, f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, proc, run.tls, run.request)
        for _ in range(5):
            scrape(port, tls=run.tls, request=run.request)  # warm
        latencies: list[float] = []
        failures = 0
        sizes: list[int] = []
        lock = threading.Lock()
        threads = [proc_status(proc.pid, "Threads")]
        stop_at = time.monotonic() + duration
        done = threading.Event()

        def client() -> None:
            nonlocal failures
            while time.monotonic() < stop_at:
                start = time.monotonic()
                status, size = scrape(port, tls=run.tls, request=run.request)
                took = time.monotonic() - start
                with lock:
                    if status == 200:
                        latencies.append(took)
                        sizes.append(size)
                    else:
                        failures += 1

        def sample() -> None:
            while not done.wait(0.05):
                threads.append(proc_status(proc.pid, "Threads"))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        workers = [threading.Thread(target=client) for _ in range(clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        seconds = time.monotonic() - started
        done.set()
        sampler.join()
        return Result(run.name, len(latencies), failures, seconds, latencies,
                      int(statistics.median(sizes)) if sizes else 0,
                      proc_status(proc.pid, "VmHWM"), max(threads))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def tls_and_auth(base: Path) -> tuple[Path, ssl.SSLContext, bytes]:
    """A web config with a self-signed certificate and one bcrypt user (cost 10, as the
    toolkit's docs suggest), the client context, and the request with its credentials."""
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key", "-out",
                    "server.crt", "-days", "1", "-subj", "/CN=localhost"],
                   cwd=base, check=True, capture_output=True)
    hashed = bcrypt.hashpw(b"scrape-secret", bcrypt.gensalt(10)).decode()
    config = base / "web.yml"
    config.write_text("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                      f"basic_auth_users:\n  prometheus: {hashed}\n")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # load, not trust, is measured here
    credentials = base64.b64encode(b"prometheus:scrape-secret")
    request = REQUEST.replace(b"\r\n\r\n", b"\r\nAuthorization: Basic " + credentials
                              + b"\r\n\r\n")
    return config, context, request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--tree", default="nfs_client", choices=sorted(trees.TREES))
    args = parser.parse_args()
    if not os.access(NODE_EXPORTER, os.X_OK):
        raise SystemExit("needs prometheus-node-exporter (apt-get install prometheus-node-exporter)")
    base = Path(tempfile.mkdtemp(prefix="panicwatch-load-"))
    try:
        root = trees.build(args.tree, base / args.tree)
        node = [NODE_EXPORTER, f"--path.rootfs={root}", f"--path.procfs={root / 'proc'}",
                f"--path.sysfs={root / 'sys'}", "--log.level=error"]
        ours = [str(PANICWATCH), "serve", f"--path.rootfs={root}", "--log.level=error"]
        web, tls, authorized = tls_and_auth(base)
        runs = [
            Run("panicwatch", ours),
            Run("panicwatch, TLS + basic auth", [*ours, f"--web.config.file={web}"], tls,
                authorized),
            # The HTTP layer's own ceiling: every collector off, /metrics is build_info only.
            Run("panicwatch, collectors off", [*ours, *NO_COLLECTORS]),
            Run("panicwatch, collectors off, TLS + basic auth",
                [*ours, *NO_COLLECTORS, f"--web.config.file={web}"], tls, authorized),
            Run("node_exporter (max-requests 40)", node),
            Run("node_exporter (unlimited)", [*node, "--web.max-requests=0"]),
        ]
        results = [load(run, args.clients, args.duration) for run in runs]
    finally:
        shutil.rmtree(base)
    print(f"{args.clients} clients, {args.duration:g} s each, tree {args.tree}, "
          f"{os.cpu_count()} CPUs\n")
    print("| server | requests/s | p50 ms | p99 ms | failed | gzip bytes | peak RSS MB "
          "| max threads |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r.name} | {r.rate:.0f} | {r.quantile(0.5) * 1000:.0f} "
              f"| {r.quantile(0.99) * 1000:.0f} | {r.failures} | {r.bytes} "
              f"| {r.peak_rss_kib / 1024:.0f} | {r.max_threads} |")
    ours, ref = results[0], results[-1]
    print(f"\npanicwatch / node_exporter (unlimited): requests/s {ours.rate / ref.rate:.2f}, "
          f"p50 {ours.quantile(0.5) / ref.quantile(0.5):.2f}, "
          f"p99 {ours.quantile(0.99) / ref.quantile(0.99):.2f}, "
          f"peak RSS {ours.peak_rss_kib / ref.peak_rss_kib:.2f}, "
          f"threads {ours.max_threads / ref.max_threads:.2f}")


if __name__ == "__main__":
    sys.exit(main())
