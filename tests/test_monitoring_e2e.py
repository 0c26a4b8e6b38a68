"""The whole path to the pager, and the dashboards, on real servers: panicwatch serves two
fixture hosts, a real Prometheus scrapes them and evaluates alerts/, a real Alertmanager routes
critical alerts to a webhook served by this test.

- Disarm kdump in a tree -> the page arrives; re-arm it -> the resolution arrives.
- Every panel query of every dashboard runs against the live Prometheus and returns data, except
  the panels allowlisted in dashboard_empty_when_healthy.txt, each with its reason.

Prometheus runs the shipped rules with `for:` cut to 1 s (see monitoring_stack.shortened_for).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import yaml

import trees
from dashboards import all_panels, load_dashboards, substitute
from monitoring_stack import Stack, monitoring_stack

PAGE_TIMEOUT_S = 60


def nfs_server_on_loopback(root: Path, cleanup: ExitStack) -> None:
    """Point the nfs_client tree's mount and RPC transport at a real TCP connection on loopback,
    so the nfs_sockets collector finds a socket to report (its netlink read is not faked)."""
    listener = cleanup.enter_context(socket.create_server(("127.0.0.1", 0)))
    port = listener.getsockname()[1]
    cleanup.enter_context(socket.create_connection(("127.0.0.1", port)))
    cleanup.enter_context(listener.accept()[0])
    for path, old, new in (
            ("proc/1/mountinfo", "addr=192.168.122.1", f"port={port},addr=127.0.0.1"),
            ("sys/kernel/debug/sunrpc/rpc_xprt/2/info", "192.168.122.1\nport:  2049",
             f"127.0.0.1\nport:  {port}"),
            ("sys/kernel/sunrpc/xprt-switches/switch-0/xprt-0-tcp/dstaddr", "192.168.122.1",
             "127.0.0.1")):
        text = (root / path).read_text()
        assert old in text, path
        (root / path).write_text(text.replace(old, new))


BUSY_OPS = {"READ": (300, 150_000, 1, 4, 5), "WRITE": (100, 120_000, 2, 9, 11),
            "GETATTR": (900, 240, 0, 1, 1), "ACCESS": (200, 200, 0, 1, 1)}


def with_traffic(mountstats: str, ticks: int) -> str:
    """The mountstats after `ticks` more ticks of a busy client: per tick, each op in BUSY_OPS
    gains (count, bytes, queue ms, rtt ms, execute ms) per op; one transmission per op."""
    def bump(match: re.Match[str]) -> str:
        count, size, queue, rtt, execute = BUSY_OPS[match[2]]
        n = [int(v) for v in match[3].split()]
        add = [count, count, 0, size * count, size * count, queue * count, rtt * count,
               execute * count, 0]
        return match[1] + " ".join(str(v + a * ticks) for v, a in zip(n, add, strict=False))

    def transport(match: re.Match[str]) -> str:
        # tcp: port bind connect connect_time idle sends recvs bad_xids req_u bklog_u max_slots
        # sending_u pending_u; every op is one send and one receive
        n = [int(v) for v in match[2].split()]
        sent = sum(count for count, *_ in BUSY_OPS.values()) * ticks
        for field, add in ((5, sent), (6, sent), (8, 2 * sent), (12, sent // 4)):
            n[field] += add
        return match[1] + " ".join(map(str, n))

    ops = "|".join(BUSY_OPS)
    busy = re.sub(rf"^(\s+({ops}): )((?:\d+ ?)+)$", bump, mountstats, flags=re.M)
    return re.sub(r"^(\txprt:\ttcp )((?:\d+ ?)+)$", transport, busy, flags=re.M)


@contextmanager
def busy_client(root: Path, interval: float = 0.5) -> Iterator[None]:
    """Rewrite the tree's mountstats every `interval` as the kernel would see a busy client;
    atomically, as the kernel's seq_file never shows a half-written file."""
    path = root / "proc/self/mountstats"
    idle = path.read_text()
    stop = threading.Event()

    def run() -> None:
        ticks = 0
        while not stop.wait(interval):
            ticks += 1
            path.with_suffix(".new").write_text(with_traffic(idle, ticks))
            os.replace(path.with_suffix(".new"), path)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("stack")
    disarmed = trees.build("fedora_vmcores", work / "roots" / "kdump-host")
    # `kdumpctl stop`: memory stays reserved, the crash kernel is unloaded; two dumps wait
    (disarmed / "sys/kernel/kexec_crash_loaded").write_text("0\n")
    nfs_host = trees.build("nfs_client", work / "roots" / "nfs-host")
    with ExitStack() as cleanup:
        nfs_server_on_loopback(nfs_host, cleanup)
        cleanup.enter_context(busy_client(nfs_host))
        yield cleanup.enter_context(
            monitoring_stack(work, {"kdump-host": disarmed, "nfs-host": nfs_host}))


def test_disarmed_kdump_pages_and_rearming_resolves(stack: Stack) -> None:
    firing = stack.notification("KdumpNotArmed", "firing", PAGE_TIMEOUT_S)
    assert firing["labels"] == {"alertname": "KdumpNotArmed", "severity": "critical",
                                "instance": "kdump-host", "job": "panicwatch"}
    assert firing["annotations"]["summary"] == (
        "No crash kernel is loaded; a kernel panic would leave no dump.")
    assert firing["annotations"]["runbook_url"].endswith("docs/runbooks.md#kdumpnotarmed")
    assert "on kdump-host (panicwatch_kdump_loaded = 0)" in firing["annotations"]["description"]
    # the armed host never pages, and warnings are not routed to the pager
    assert stack.webhook.received("KdumpNotArmed", "firing", instance="nfs-host") == []
    assert all(alert["labels"]["severity"] == "critical"
               for note in stack.webhook.notifications for alert in note["alerts"])

    # `kdumpctl start`
    (stack.roots["kdump-host"] / "sys/kernel/kexec_crash_loaded").write_text("1\n")
    resolved = stack.notification("KdumpNotArmed", "resolved", PAGE_TIMEOUT_S,
                                  instance="kdump-host")
    assert resolved["labels"] == firing["labels"]
    assert resolved["endsAt"] > firing["startsAt"]


def test_every_rule_evaluates_without_error(stack: Stack) -> None:
    """A rule that fails at evaluation (say, many-to-many matching) shows health "err"."""
    def health() -> dict[str, str]:
        groups = stack.query_api("/api/v1/rules")["groups"]
        return {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}

    evaluated = stack.expect("every rule evaluated once",
                             lambda: "unknown" not in health().values() and health(), 30)
    assert {name: h for name, h in evaluated.items() if h != "ok"} == {}


def test_rule_files_loaded_as_shipped(stack: Stack) -> None:
    shipped = yaml.safe_load((Path(__file__).parent.parent / "alerts/panicwatch.rules.yml")
                             .read_text())
    names = {rule.get("alert") or rule["record"]
             for group in shipped["groups"] for rule in group["rules"]}
    rules = stack.query_api("/api/v1/rules")["groups"]
    assert {rule["name"] for group in rules for rule in group["rules"]} == names


def test_with_traffic_adds_ticks_times_the_per_op_increment() -> None:
    text = ("\txprt:\ttcp 765 0 1 0 1 100 100 0 500 0 2 0 300\n"
            "\t        READ: 10 11 0 100 200 3 40 50 0\n\t      COMMIT: 1 1 0 0 0 0 0 0 0\n")
    assert with_traffic(text, 2) == (
        "\txprt:\ttcp 765 0 1 0 1 3100 3100 0 6500 0 2 0 1050\n"
        "\t        READ: 610 611 0 90000100 90000200 603 2440 3050 0\n"
        "\t      COMMIT: 1 1 0 0 0 0 0 0 0\n")


ALLOWLIST = Path(__file__).with_name("dashboard_empty_when_healthy.txt")
RATE_INTERVAL = "10s"  # Grafana's $__rate_interval for a 1 s scrape: 4 scrapes and more


def allowlisted() -> dict[tuple[str, str, str], str]:
    """(dashboard file, panel title, refId) -> why that query is empty on a healthy host."""
    entries = {}
    for line in ALLOWLIST.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            dashboard, title, ref, reason = (part.strip() for part in line.split("|"))
            assert reason, f"{line!r}: every allowlist entry gives its reason"
            entries[(dashboard, title, ref)] = reason
    return entries


def dashboard_variables(name: str, stack: Stack) -> list[dict[str, str]]:
    """The variable values a user would pick: each host on the host dashboard, All on the fleet
    one (a multi-value All with no custom value is the regex of every value)."""
    if name == "panicwatch-fleet.json":
        return [{"job": "panicwatch", "instance": ".*"}]
    return [{"job": "panicwatch", "instance": instance, "mountpoint": ".*"}
            for instance in stack.roots]


def test_every_dashboard_query_is_valid_and_returns_data(stack: Stack) -> None:
    # rates need two samples of moving counters: wait for the recording rule built on them
    for ready in ("panicwatch:nfs_server_op_rtt_seconds:max_avg_rate5m > 0",  # NFS traffic
                  'ALERTS{alertname="NFSStuckRPCs", alertstate="firing"}'):
        stack.expect(ready, lambda expr=ready: stack.query(expr), 60)
    allowed = allowlisted()
    empty, errors, ran = set(), [], 0
    for name, dashboard in load_dashboards().items():
        for panel in all_panels(dashboard):
            for target in panel.get("targets", []):
                key = (name, panel["title"], target["refId"])
                results = []
                for values in dashboard_variables(name, stack):
                    expr = substitute(target["expr"], values, rate_interval=RATE_INTERVAL)
                    try:
                        results += stack.query(expr)
                    except ValueError as e:
                        errors.append(f"{key}: {e}")
                    ran += 1
                if not results:
                    empty.add(key)
    assert ran >= 70
    assert errors == []
    unexplained = "\n".join(" | ".join(key) for key in sorted(empty - set(allowed)))
    assert not unexplained, f"queries without data, not in {ALLOWLIST.name}:\n{unexplained}"
    stale = "\n".join(" | ".join(key) for key in sorted(set(allowed) - empty))
    assert not stale, f"in {ALLOWLIST.name} but returning data, drop them:\n{stale}"


def test_dashboard_variables_have_values(stack: Stack) -> None:
    for name, dashboard in load_dashboards().items():
        for variable in dashboard["templating"]["list"]:
            if variable["type"] != "query":
                continue
            call = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"])
            assert call, variable["query"]
            selector = substitute(call[1], {"job": "panicwatch", "instance": "nfs-host"})
            url = (f"/api/v1/label/{call[2]}/values?"
                   + urllib.parse.urlencode({"match[]": selector}))
            expected = {"job": ["panicwatch"], "instance": ["kdump-host", "nfs-host"],
                        "mountpoint": ["/srv/projects"]}[variable["name"]]
            assert stack.query_api(url) == expected, (name, variable["name"])


def test_full_scrape_of_each_host_passes_promtool(stack: Stack) -> None:
    for instance, address in stack.targets.items():
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as r:
            body = r.read()
        lint = subprocess.run(["promtool", "check", "metrics"], input=body,
                              capture_output=True, timeout=60)
        assert (instance, lint.returncode, lint.stdout, lint.stderr) == (instance, 0, b"", b"")
