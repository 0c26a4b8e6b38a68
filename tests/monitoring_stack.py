"""A real monitoring stack on loopback: `panicwatch serve` targets, Prometheus with alerts/ loaded,
Alertmanager routing critical alerts to a webhook served here.

Every process gets a free port and a log file; every wait has a deadline; everything is torn
down in `finally`, and the logs are printed when a test fails so the reason is in the CI output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "alerts" / "panicwatch.rules.yml"
PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
SCRAPE_INTERVAL_S = 1
START_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what: str, ready: Callable[[], Any], timeout: float,
               interval: float = 0.2) -> Any:
    """Poll until ready() returns something truthy; its value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        result = ready()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def http_json(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def responds(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def shortened_for(rules_text: str, duration: str = "1s") -> str:
    """The rules with every `for:` cut to `duration`, so an end-to-end run takes seconds. The real
    durations are what alerts/tests/ unit-tests with promtool; here the path to the pager is the
    point, and expressions, labels and annotations stay byte-for-byte the shipped ones."""
    return re.sub(r"^(\s+)for: \S+$", rf"\g<1>for: {duration}", rules_text, flags=re.M)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(text.splitlines()[-lines:])


def start(name: str, argv: list[str], workdir: Path, ready_url: str,
          env: dict[str, str] | None = None) -> Process:
    log = workdir / f"{name}.log"
    with open(log, "wb") as out:
        popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env=env)
    process = Process(name, popen, log)
    try:
        wait_until(f"{name} ready at {ready_url}",
                   lambda: popen.poll() is not None or responds(ready_url), START_TIMEOUT_S)
        if popen.poll() is not None:
            raise RuntimeError(f"{name} exited with {popen.returncode}\n{process.tail()}")
    except BaseException:
        process.stop()
        raise
    return process


@dataclass
class Webhook:
    """Alertmanager's webhook receiver: every notification it POSTs, in arrival order."""

    url: str
    notifications: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self, alertname: str, status: str, **labels: str) -> list[dict[str, Any]]:
        """The alerts with this name and status (and labels) in any notification so far."""
        with self.lock:
            notes = list(self.notifications)
        return [alert for note in notes for alert in note["alerts"]
                if alert["labels"].get("alertname") == alertname and alert["status"] == status
                and all(alert["labels"].get(k) == v for k, v in labels.items())]


@contextmanager
def webhook_receiver() -> Iterator[Webhook]:
    hook: Webhook

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with hook.lock:
                hook.notifications.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook = Webhook(f"http://127.0.0.1:{server.server_address[1]}/alerts")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


def alertmanager_config(webhook_url: str, severities: str = "critical") -> str:
    """Alerts whose severity matches the regex `severities` go to the webhook, the rest nowhere
    (critical pages; warning would be a ticket queue in real life)."""
    return f"""\
route:
  receiver: blackhole
  group_by: [alertname, instance]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['severity=~"{severities}"']
      receiver: pager
receivers:
  - name: blackhole
  - name: pager
    webhook_configs:
      - url: {webhook_url}
        send_resolved: true
"""


def prometheus_config(targets: dict[str, str], alertmanager: str) -> str:
    static = "".join(f"""
      - targets: ['{address}']
        labels:
          instance: {instance}""" for instance, address in targets.items())
    return f"""\
global:
  scrape_interval: {SCRAPE_INTERVAL_S}s
  scrape_timeout: {SCRAPE_INTERVAL_S}s
  evaluation_interval: {SCRAPE_INTERVAL_S}s
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['{alertmanager}']
scrape_configs:
  - job_name: panicwatch
    static_configs:{static}
"""


@dataclass
class Stack:
    prometheus: str
    alertmanager: str
    webhook: Webhook
    roots: dict[str, Path]
    targets: dict[str, str]  # instance -> host:port of its panicwatch
    processes: list[Process]

    def query_api(self, path: str) -> Any:
        return http_json(self.prometheus + path)["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; raises on a PromQL error with Prometheus's message."""
        url = f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            answer = http_json(url)
        except urllib.error.HTTPError as e:
            raise ValueError(f"{expr}: {json.load(e).get('error')}") from None
        return answer["data"]["result"]

    def logs(self) -> str:
        return "\n".join(p.tail() for p in self.processes)

    def expect(self, what: str, ready: Callable[[], Any], timeout: float) -> Any:
        """wait_until, failing with every process's log so CI shows why."""
        try:
            return wait_until(what, ready, timeout)
        except TimeoutError as e:
            raise AssertionError(f"{e}\n{self.logs()}") from None

    def notification(self, alertname: str, status: str, timeout: float,
                     **labels: str) -> dict[str, Any]:
        found = self.expect(f"webhook: {alertname} {status} {labels}",
                            lambda: self.webhook.received(alertname, status, **labels)[:1],
                            timeout)
        return found[0]


def panicwatch_argv(root: Path, port: int) -> list[str]:
    # a fixture's RPC tasks never complete: they count as stuck after 2 s, not 30
    return [sys.executable, "-m", "panicwatch", "serve", "--web.listen-address",
            f"127.0.0.1:{port}", "--path.rootfs", str(root), "--collector.rpc.stuck-threshold=2"]


@contextmanager
def monitoring_stack(workdir: Path, roots: dict[str, Path]) -> Iterator[Stack]:
    """One `panicwatch serve` per fixture root (named by instance), scraped by Prometheus."""
    assert PROMETHEUS and ALERTMANAGER, (
        "prometheus and alertmanager missing: .ci/run installs Debian's prometheus and "
        "prometheus-alertmanager")
    env = {**os.environ, "PYTHONPATH": str(REPO / "exporter")}
    processes: list[Process] = []
    with ExitStack() as cleanup:
        cleanup.callback(lambda: [p.stop() for p in reversed(processes)])
        hook = cleanup.enter_context(webhook_receiver())
        targets = {}
        for instance, root in roots.items():
            port = free_port()
            processes.append(start(f"panicwatch-{instance}", panicwatch_argv(root, port), workdir,
                                   f"http://127.0.0.1:{port}/healthz", env))
            targets[instance] = f"127.0.0.1:{port}"

        am_dir = workdir / "alertmanager"
        am_dir.mkdir()
        (am_dir / "alertmanager.yml").write_text(alertmanager_config(hook.url))
        am = f"127.0.0.1:{free_port()}"
        processes.append(start("alertmanager", [
            ALERTMANAGER, f"--config.file={am_dir / 'alertmanager.yml'}",
            f"--storage.path={am_dir / 'data'}", f"--web.listen-address={am}",
            "--cluster.listen-address="], am_dir, f"http://{am}/-/ready"))

        prom_dir = workdir / "prometheus"
        prom_dir.mkdir()
        (prom_dir / "rules.yml").write_text(shortened_for(RULES.read_text()))
        (prom_dir / "prometheus.yml").write_text(prometheus_config(targets, am))
        prom = f"127.0.0.1:{free_port()}"
        processes.append(start("prometheus", [
            PROMETHEUS, f"--config.file={prom_dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={prom_dir / 'data'}", f"--web.listen-address={prom}",
            "--rules.alert.resend-delay=1s"], prom_dir, f"http://{prom}/-/ready"))

        stack = Stack(f"http://{prom}", f"http://{am}", hook, roots, targets, processes)
        stack.expect("every target scraped and up", lambda: len(
            stack.query('up{job="panicwatch"} == 1')) == len(roots), START_TIMEOUT_S)
        yield stack
