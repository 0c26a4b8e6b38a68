"""Static checks of the Grafana dashboards: provisionable as-is, generated from
dashboards/build.py, and querying only metrics the exporter exports; the crash panels' queries
also run through promtool on known series. (Running every query against a real Prometheus is a
separate, live test: test_monitoring_e2e.py.)"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

import trees
from dashboards import (
    DASHBOARDS,
    Dashboard,
    all_panels,
    load_dashboards,
    load_generator,
    panel_queries,
    substitute,
)
from panicwatch.background.canary import Canary
from panicwatch.background.kernel_log import KmsgSnapshot, KmsgWatcher
from panicwatch.collectors.canary import CanaryCollector
from panicwatch.collectors.kernel_log import KernelLogCollector
from panicwatch.collectors.registry import build_registry, host_of
from panicwatch.exposition import render_all
from panicwatch.settings import Settings

RULES = Path(__file__).resolve().parent.parent / "alerts" / "panicwatch.rules.yml"
DS = {"type": "prometheus", "uid": "${datasource}"}
HOST, FLEET = "panicwatch-host.json", "panicwatch-fleet.json"
PANEL_TYPES = {"row", "stat", "timeseries", "table", "heatmap", "state-timeline", "bargauge"}
RANGE_FUNCTIONS = ("rate", "irate", "increase", "delta", "idelta", "deriv", "resets", "changes")


@pytest.fixture(scope="module")
def boards() -> dict[str, Dashboard]:
    return load_dashboards()


def queries(boards: dict[str, Dashboard]) -> Iterator[tuple[str, str, str]]:
    for name, board in boards.items():
        for title, expr in panel_queries(board):
            yield name, title, expr


def without_strings(expr: str) -> str:
    """Label values can hold anything (alert names, regexes): look at the PromQL around them."""
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def variables(board: Dashboard) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in board["templating"]["list"]}


# --- what is checked in -----------------------------------------------------------------------


def test_checked_in_json_is_what_the_generator_writes():
    generated = load_generator().generate()
    assert sorted(generated) == [FLEET, HOST]
    assert {p.name for p in DASHBOARDS.glob("*.json")} == set(generated)
    for name, text in generated.items():
        assert (DASHBOARDS / name).read_text() == text, f"{name}: run python3 dashboards/build.py"


def test_generator_check_mode_agrees():
    assert load_generator().main(["--check"]) == 0


def test_stable_uids_titles_and_schema(boards):
    assert {name: b["uid"] for name, b in boards.items()} == {
        HOST: "panicwatch-host", FLEET: "panicwatch-fleet"}
    assert {name: b["title"] for name, b in boards.items()} == {
        HOST: "panicwatch / host", FLEET: "panicwatch / fleet"}
    for board in boards.values():
        assert board["schemaVersion"] == 39
        assert board["tags"] == ["panicwatch"]
        assert "id" not in board  # Grafana assigns it; a fixed one clashes across instances


def test_no_import_placeholders(boards):
    for name, board in boards.items():
        text = (DASHBOARDS / name).read_text()
        assert "__inputs" not in board and "__requires" not in board
        assert "${DS_" not in text
        assert "__inputs" not in text


def test_panel_ids_unique_and_titles_unique(boards):
    for board in boards.values():
        panels = list(all_panels(board))
        ids = [p["id"] for p in panels]
        assert len(ids) == len(set(ids))
        assert all(isinstance(i, int) and i > 0 for i in ids)
        titles = [p["title"] for p in panels]
        assert len(titles) == len(set(titles))  # the live test's allowlist goes by title


def test_panel_types_layout_and_descriptions(boards):
    for board in boards.values():
        for p in all_panels(board):
            assert p["type"] in PANEL_TYPES
            grid = p["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] >= 1
            if p["type"] == "row":
                assert "targets" not in p
                continue
            assert len(p["description"]) >= 30, p["title"]  # says what the panel means / what to do
            refs = [t["refId"] for t in p["targets"]]
            assert refs and len(refs) == len(set(refs))


def test_top_level_panels_do_not_overlap(boards):
    for board in boards.values():
        cells: dict[tuple[int, int], str] = {}
        for p in board["panels"]:  # a collapsed row's panels are laid out when it opens
            g = p["gridPos"]
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                    cells[(x, y)] = p["title"]


def test_query_formats_match_panel_types(boards):
    for board in boards.values():
        for p in all_panels(board):
            for t in p.get("targets", []):
                if p["type"] == "table":
                    assert (t["format"], t["instant"]) == ("table", True)
                elif p["type"] == "heatmap":
                    assert (t["format"], t["legendFormat"]) == ("heatmap", "{{le}}")
                    assert "_bucket{" in t["expr"] and t["expr"].startswith("sum by (le) (")
                else:
                    assert (t.get("format", "time_series"), t["range"]) == ("time_series", True)


def test_rows(boards):
    rows = {name: [(p["title"], p["collapsed"]) for p in b["panels"] if p["type"] == "row"]
            for name, b in boards.items()}
    assert rows == {
        HOST: [("Panic readiness", False), ("kdump and crash dumps", False),
               ("Kernel: panic settings, lockups, stalls", False),
               ("NFS mounts ($mountpoint)", False), ("NFS canary ($mountpoint)", False),
               ("RPC tasks and blocked tasks", False), ("NFS servers: TCP and kernel log", False),
               ("Exporter", True)],
        FLEET: [("Overview", False), ("Panic readiness", False), ("Crashes", False), ("NFS", False),
                ("Alerts and exporters", False)],
    }


# --- data source and variables ----------------------------------------------------------------


def test_everything_queries_the_datasource_variable(boards):
    for board in boards.values():
        ds = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
        assert [(v["name"], v["query"]) for v in ds] == [("datasource", "prometheus")]
        for v in board["templating"]["list"]:
            if v["type"] == "query":
                assert v["datasource"] == DS
        for p in all_panels(board):
            assert p["datasource"] == DS, p["title"]
            for t in p.get("targets", []):
                assert t["datasource"] == DS, p["title"]


def test_job_and_instance_variables(boards):
    for name, board in boards.items():
        v = variables(board)
        assert list(v) == ["datasource", "job", "instance", *(["mountpoint"] if name == HOST else [])]
        assert (v["job"]["type"], v["job"]["query"]) == (
            "query", "label_values(panicwatch_build_info, job)")
        assert (v["instance"]["type"], v["instance"]["query"]) == (
            "query", 'label_values(panicwatch_build_info{job=~"$job"}, instance)')
    host, fleet = variables(boards[HOST]), variables(boards[FLEET])
    assert (host["job"]["multi"], host["instance"]["multi"], host["instance"]["includeAll"]) == (
        False, False, False)
    # All jobs expands to the list of panicwatch jobs (no allValue): `up{job=~".*"}` would
    # show every target Prometheus has.
    assert (fleet["job"]["multi"], fleet["job"]["includeAll"], "allValue" in fleet["job"]) == (
        True, True, False)
    assert (fleet["instance"]["multi"], fleet["instance"]["includeAll"],
            fleet["instance"]["allValue"]) == (True, True, ".*")
    assert (host["mountpoint"]["query"], host["mountpoint"]["allValue"]) == (
        'label_values(panicwatch_nfs_mount_info{job=~"$job", instance=~"$instance"}, mountpoint)',
        ".*")


def test_queries_use_only_defined_variables_without_formats(boards):
    used = {name: set() for name in boards}
    for name, _title, expr in queries(boards):
        for m in re.finditer(r"\$\{?(\w+)(:[^}]*)?", expr):
            # Grafana's Prometheus data source escapes multi values for PromQL only when no
            # format is given; ${var:regex} would put `\.` into a PromQL string, a parse error.
            assert m.group(2) is None, expr
            used[name].add(m.group(1))
    assert used == {HOST: {"job", "instance", "mountpoint", "__rate_interval"},
                    FLEET: {"job", "instance", "__range"}}


# --- PromQL ------------------------------------------------------------------------------------


def range_arguments(expr: str) -> Iterator[tuple[str, list[str]]]:
    """(function, the range selectors inside its parentheses) for every range function call."""
    for m in re.finditer(rf"\b({'|'.join(RANGE_FUNCTIONS)})\s*\(", expr):
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(expr[i], 0)
            i += 1
        yield m.group(1), re.findall(r"\[([^\]]*)\]", expr[m.end():i])


def test_rates_use_rate_interval(boards):
    calls = over_range = 0
    for _name, title, expr in queries(boards):
        for function, ranges in range_arguments(without_strings(expr)):
            assert ranges == ["$__rate_interval"], f"{title}: {function} over {ranges}"
            calls += 1
        # no hard-coded range anywhere, subqueries and *_over_time included: rates over
        # $__rate_interval, and the crash tables' last_over_time over the dashboard's range
        ranges = re.findall(r"\[([^\]]*)\]", without_strings(expr))
        assert ranges in ([], ["$__rate_interval"], ["$__rate_interval"] * 2,
                          ["$__range"], ["$__range"] * 2), title
        if ranges and ranges[0] == "$__range":
            assert len(re.findall(r"\blast_over_time\(", expr)) == len(ranges), title
            over_range += len(ranges)
    assert (calls, over_range) == (24, 3)


def test_range_argument_parser():
    assert list(range_arguments("sum(rate(a[5m])) / rate(b[$__rate_interval])")) == [
        ("rate", ["5m"]), ("rate", ["$__rate_interval"])]
    assert list(range_arguments("increase(x{a=\"\"}[1h:5m])")) == [("increase", ["1h:5m"])]
    assert list(range_arguments("irate(x[$__rate_interval])")) == [("irate", ["$__rate_interval"])]


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"(?<![\w:])panicwatch[_:][A-Za-z0-9_:]*", without_strings(expr)))


def test_metric_name_extraction():
    assert metric_names('rate(panicwatch_nfs_operations_total{job=~"panicwatch_x"}[1m]) '
                        '/ panicwatch:nfs_op_rtt_seconds:avg_rate5m') == {
        "panicwatch_nfs_operations_total", "panicwatch:nfs_op_rtt_seconds:avg_rate5m"}


def rule_names(kind: str) -> list[str]:
    return re.findall(rf"^\s*- {kind}: (\S+)\s*$", RULES.read_text(), re.MULTILINE)


class _ReadingWatcher(KmsgWatcher):
    """A watcher that reports it reads /dev/kmsg, so the kernel-log families are exported."""

    def snapshot(self) -> KmsgSnapshot:
        return dataclasses.replace(super().snapshot(), reading=True)


def rich_root(root: Path) -> Path:
    """The richest tree, nfs_client (kdump armed, an NFS mount with statistics, RPC tasks in
    debugfs, the transport in sysfs, pstore records), plus what it lacks: a dump with its
    dmesg, and /proc/net/rpc/nfs."""
    trees.build("nfs_client", root)
    t = trees.Tree(root)
    t.sized("var/crash/127.0.0.1-2024-05-02-10:00:00/vmcore", 48 * trees.MiB)
    t.write("var/crash/127.0.0.1-2024-05-02-10:00:00/vmcore-dmesg.txt", trees.DMESG_SOFT_LOCKUP)
    t.write("proc/net/rpc/nfs", "net 0 0 0 0\nrpc 1000 2 1000\n")
    return root


SERIES_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                   "summary": ("", "_sum", "_count"), "gauge": ("",), "unknown": ("",),
                   "info": ("_info",), "stateset": ("",)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The series names of a full `serve` scrape (every collector, the optional NFS
    families on, the canary and the kernel log included) of the richest tree."""
    root = rich_root(tmp_path_factory.mktemp("rich"))
    settings = Settings(path_rootfs=root, collector_nfs_all_ops=True, collector_nfs_op_bytes=True,
                        collector_nfs_events=True)
    canary = Canary(settings, host_of(settings))  # never started: its families, no probes
    watcher = _ReadingWatcher(root / "dev/kmsg", replay=False, retry_interval=None)
    registry = build_registry(settings, [CanaryCollector(canary), KernelLogCollector(watcher)])
    text = render_all(registry).decode()
    return {family.name + suffix
            for family in text_string_to_metric_families(text)
            for suffix in SERIES_SUFFIXES[family.type]}


def test_rich_scrape_covers_every_area(exported):
    for name in ("panicwatch_last_panic_info", "panicwatch_vmcore_newest_timestamp_seconds",
                 "panicwatch_kdump_test_success", "panicwatch_nfs_operation_rtt_seconds_total",
                 "panicwatch_rpc_retransmissions_total", "panicwatch_rpc_tasks_stuck",
                 "panicwatch_rpc_transport_queue_tasks", "panicwatch_nfs_socket_rtt_seconds",
                 "panicwatch_canary_probe_duration_seconds_bucket",
                 "panicwatch_canary_scheduler_lag_seconds_bucket",
                 "panicwatch_kernel_log_events_total", "panicwatch_nfs_servers_not_responding",
                 "panicwatch_blocked_task_longest_seconds", "panicwatch_collector_success",
                 "panicwatch_vmcore_crash_info", "panicwatch_vmcore_timestamp_seconds"):
        assert name in exported
    assert "panicwatch_canary_probe_duration_seconds" not in exported  # not a series name
    assert "panicwatch_kernel_lockups" not in exported


def test_every_metric_is_exported_or_a_recording_rule(boards, exported):
    recorded = set(rule_names("record"))
    unknown = {(title, m) for _n, title, expr in queries(boards) for m in metric_names(expr)
               if m not in exported and m not in recorded}
    assert unknown == set()


def test_fleet_uses_the_recording_rules(boards):
    # the fleet panels that benchmarks/fleet_1000_hosts.py found over 1 s at 1,000 hosts (or
    # near it under load) read these instead of raw series
    used = {m for title, expr in panel_queries(boards[FLEET]) for m in metric_names(expr)
            if ":" in m}
    assert used == {
        "panicwatch:hosts_armed:ratio", "panicwatch:hosts_with_vmcores:count",
        "panicwatch:hosts_not_armed:count", "panicwatch:hosts_not_panic_ready:count",
        "panicwatch:targets_down:count", "panicwatch:hosts_failing_check:count",
        "panicwatch:nfs_mount_rtt_seconds:max_avg_rate5m", "panicwatch:hosts_with_stalled_mount:count",
        "panicwatch:nfs_server_op_rtt_seconds:max_avg_rate5m"}
    # every recording rule is read: by the fleet dashboard, or by another rule
    rules = RULES.read_text()
    unread = {r for r in rule_names("record") if r not in used
              and len(re.findall(rf"{re.escape(r)}\b", rules)) < 2}
    assert unread == set()


def test_host_dashboard_covers_the_areas(boards):
    used = {m for _title, expr in panel_queries(boards[HOST]) for m in metric_names(expr)}
    required = {
        "panicwatch_panic_ready", "panicwatch_readiness_check", "panicwatch_kdump_loaded",
        "panicwatch_kdump_crash_memory_reserved_bytes", "panicwatch_kdump_crash_memory_requested_bytes",
        "panicwatch_kdump_crash_memory_recommended_bytes", "panicwatch_kdump_dump_target_info",
        "panicwatch_kdump_dump_target_free_bytes", "panicwatch_vmcores", "panicwatch_vmcores_incomplete",
        "panicwatch_vmcore_bytes", "panicwatch_vmcore_newest_timestamp_seconds",
        "panicwatch_last_panic_info", "panicwatch_vmcore_crash_info", "panicwatch_kernel_panic_setting",
        "panicwatch_kernel_lockups_total", "panicwatch_pstore_records",
        "panicwatch_nfs_operation_rtt_seconds_total", "panicwatch_nfs_operation_execute_seconds_total",
        "panicwatch_nfs_operation_queue_seconds_total", "panicwatch_nfs_operations_total",
        "panicwatch_nfs_operation_transmissions_total", "panicwatch_nfs_operation_major_timeouts_total",
        "panicwatch_nfs_operation_errors_total", "panicwatch_canary_probe_inflight_seconds",
        "panicwatch_canary_probe_duration_seconds_bucket", "panicwatch_canary_probe_timeouts_total",
        "panicwatch_rpc_tasks_stuck", "panicwatch_rpc_task_oldest_age_seconds",
        "panicwatch_blocked_tasks", "panicwatch_nfs_socket_last_receive_age_seconds",
        "panicwatch_nfs_socket_send_queue_bytes", "panicwatch_nfs_socket_retransmits",
        "panicwatch_nfs_socket_rtt_seconds", "panicwatch_nfs_servers_not_responding",
        "panicwatch_kernel_log_events_total", "panicwatch_canary_scheduler_lag_seconds_bucket",
        "panicwatch_pressure_io_stalled_seconds_total", "panicwatch_collector_success",
        "panicwatch_collector_duration_seconds",
    }
    assert required - used == set()


def test_fleet_alert_table_lists_every_alert_of_the_rules(boards):
    [expr] = [e for title, e in panel_queries(boards[FLEET]) if title == "Firing panicwatch alerts"]
    m = re.fullmatch(r'ALERTS\{alertstate="firing", alertname=~"([\w|]+)"\}', expr)
    assert m is not None
    assert sorted(m.group(1).split("|")) == sorted(rule_names("alert"))
    assert len(rule_names("alert")) == 22


def test_readiness_panels_color_pass_green_and_fail_red(boards):
    panels = {p["title"]: p for p in all_panels(boards[HOST])}
    for title in ("Panic ready", "Readiness checks", "Readiness over time", "Crash kernel loaded"):
        defaults = panels[title]["fieldConfig"]["defaults"]
        assert defaults["thresholds"]["steps"] == [{"color": "red", "value": None},
                                                   {"color": "green", "value": 1}]
        [mapping] = defaults["mappings"]
        assert {k: v["color"] for k, v in mapping["options"].items()} == {"0": "red", "1": "green"}


def test_units(boards):
    units = {p["title"]: p["fieldConfig"]["defaults"].get("unit")
             for b in boards.values() for p in all_panels(b) if p["type"] != "row"}
    assert {t: units[t] for t in (
        "Crash kernel memory", "Dump target free space", "Vmcore bytes", "IO pressure",
        "Operations per second", "Round-trip time per operation", "Canary probe in flight",
        "Socket send queue", "Fraction armed", "Newest vmcore")} == {
        "Crash kernel memory": "bytes", "Dump target free space": "bytes", "Vmcore bytes": "bytes",
        "IO pressure": "percentunit", "Operations per second": "ops",
        "Round-trip time per operation": "s", "Canary probe in flight": "s",
        "Socket send queue": "bytes", "Fraction armed": "percentunit",
        "Newest vmcore": "dateTimeFromNow"}


def test_every_query_substitutes_to_plain_promql(boards):
    values = {"job": "panicwatch", "instance": "host1:10110", "mountpoint": ".*"}
    for _name, title, expr in queries(boards):
        assert "$" not in substitute(expr, values), title


# --- the crash panels -----------------------------------------------------------------------------

CRASH_PANELS = {HOST: ["Last panic"], FLEET: ["Crashes by title and kernel", "Hosts by crash"]}
LORE = "https://lore.kernel.org/all/?q=%22${__data.fields.title:percentencode}%22"


def panel_named(board: Dashboard, title: str) -> dict[str, Any]:
    [found] = [p for p in all_panels(board) if p["title"] == title]
    return found


def column_links(panel: dict[str, Any]) -> dict[str, list[str]]:
    """Column name -> the URLs of its data links."""
    return {o["matcher"]["options"]: [link["url"] for prop in o["properties"]
                                      if prop["id"] == "links" for link in prop["value"]]
            for o in panel["fieldConfig"]["overrides"] if o["matcher"]["id"] == "byName"}


def test_crash_panels_show_the_crash_and_link_its_title(boards):
    for name, titles in CRASH_PANELS.items():
        for title in titles:
            p = panel_named(boards[name], title)
            assert p["type"] == "table"
            [organize] = p["transformations"]
            order = organize["options"]["indexByName"]
            assert {"title", "kernel_release"} <= set(order), title
            assert not {"title", "kernel_release"} & set(organize["options"]["excludeByName"])
            assert "panicwatch_vmcore_crash_info" in metric_names(p["targets"][0]["expr"])
            assert column_links(p)["title"] == [LORE, "https://syzkaller.appspot.com/upstream"]
            # what to do: search the title, read the stack
            assert "lore.kernel.org" in p["description"] or "search" in p["description"], title
            assert "panicwatch triage" in p["description"], title
    last = panel_named(boards[HOST], "Last panic")
    assert list(last["transformations"][0]["options"]["indexByName"]) == [
        "title", "kind", "function", "module", "kernel_release", "reason", "dump"]
    assert last["transformations"][0]["options"]["renameByName"] == {"function": "culprit"}
    hosts = panel_named(boards[FLEET], "Hosts by crash")
    assert column_links(hosts)["instance"] == [HOST_LINK_URL]
    assert not {"job", "instance"} & set(hosts["transformations"][0]["options"]["excludeByName"])
    assert hosts["fieldConfig"]["defaults"]["unit"] == "dateTimeFromNow"


HOST_LINK_URL = ("/d/panicwatch-host/panicwatch-host?${datasource:queryparam}"
                 "&var-job=${__data.fields.job}&var-instance=${__data.fields.instance}"
                 "&${__url_time_range}")

# Series for the crash panels' queries, one a minute for two hours. Hung task "T" on h1 (two dumps:
# one host), h2 (dump deleted at 80m: still in the last hour) and h3 (another kernel, built-in
# culprit); "U" on h5 only before the last hour; a dump without a log on h4; "T" in another job.
# h6 runs an older exporter: last_panic_info without title, no vmcore_crash_info.
T = "INFO: task hung in nfs_file_fsync"
NFS_FSYNC = {"kind": "hung_task", "function": "nfs_file_fsync"}
K13, K18 = {"kernel_release": "6.1.0-13-amd64"}, {"kernel_release": "6.1.0-18-amd64"}


def series(name: str = "", **labels: str) -> str:
    """A series in promtool's notation: name{label="value",...}."""
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def dump(instance: str, name: str, captured: int, values: str, job: str = "panicwatch",
         **crash: str) -> list[tuple[str, str]]:
    """A dump's vmcore_crash_info and vmcore_timestamp_seconds, listed while `values` says."""
    return [(series("panicwatch_vmcore_crash_info", job=job, instance=instance, dump=name, **crash),
             values),
            (series("panicwatch_vmcore_timestamp_seconds", job=job, instance=instance, dump=name),
             values.replace("1x", f"{captured}x"))]


CRASH_SERIES = [
    *dump("h1", "d0", 60, "1x120", title=T, **NFS_FSYNC, module="nfs", **K13),
    *dump("h1", "d1", 600, "1x120", title=T, **NFS_FSYNC, module="nfs", **K13),
    (series("panicwatch_last_panic_info", job="panicwatch", instance="h1", dump="d1", title=T,
            kind="hung_task", reason="hung_task: blocked tasks", **K13), "1x120"),
    *dump("h2", "d2", 1200, "1x80", title=T, **NFS_FSYNC, module="nfs", **K13),
    *dump("h3", "d3", 1800, "1x120", title=T, **NFS_FSYNC, **K18),
    *dump("h4", "d4", 2400, "1x120", kind="unknown"),
    *dump("h5", "d5", 0, "1x30", title="U", kind="oom", **K13),
    *dump("h9", "d9", 0, "1x120", job="other", title=T, kind="hung_task", **K13),
    (series("panicwatch_last_panic_info", job="panicwatch", instance="h6", dump="d6",
            kind="sysrq", reason="sysrq triggered crash"), "1x120"),
]
HOST_CRASH = {"job": "panicwatch", "title": T, **NFS_FSYNC}
CRASH_EXPECTED: dict[tuple[str, str, str], list[tuple[str, float]]] = {
    (FLEET, "Crashes by title and kernel", ".*"): [
        (series(title=T, **K13), 2), (series(title=T, **K18), 1)],
    (FLEET, "Hosts by crash", ".*"): [
        (series(instance="h1", **HOST_CRASH, module="nfs", **K13), 600_000),
        (series(instance="h2", **HOST_CRASH, module="nfs", **K13), 1_200_000),
        (series(instance="h3", **HOST_CRASH, **K18), 1_800_000)],
    (HOST, "Last panic", "h1"): [
        (series(instance="h1", job="panicwatch", dump="d1", title=T, kind="hung_task",
                reason="hung_task: blocked tasks", **K13, function="nfs_file_fsync",
                module="nfs"), 1)],
    (HOST, "Last panic", "h6"): [
        (series("panicwatch_last_panic_info", instance="h6", job="panicwatch", dump="d6",
                kind="sysrq", reason="sysrq triggered crash"), 1)],
}


def test_crash_panel_queries_count_hosts_per_title(boards, tmp_path):
    """The crash panels' queries, as Grafana sends them over a one-hour range, evaluated by
    promtool on known series: hosts counted once per title and kernel, deleted dumps counted
    while in the range, untitled dumps and other jobs left out, the culprit joined on the dump."""
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool missing: .ci/run installs Debian's prometheus package"
    tested = set()
    cases = []
    for (name, title, instance), samples in CRASH_EXPECTED.items():
        [expr] = [e for t, e in panel_queries(boards[name]) if t == title]
        tested.add((name, title))
        values = {"job": "panicwatch", "instance": instance, "mountpoint": ".*"}
        cases.append({"expr": substitute(expr, values, range_="1h"), "eval_time": "120m",
                      "exp_samples": [{"labels": labels, "value": value}
                                      for labels, value in samples]})
    assert tested == {(name, title) for name, titles in CRASH_PANELS.items() for title in titles}
    spec = {"rule_files": [], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [{"series": series, "values": values} for series, values in CRASH_SERIES],
        "promql_expr_test": cases}]}
    path = tmp_path / "crash_panels.test.yml"
    path.write_text(json.dumps(spec, indent=1))  # JSON is YAML
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# --- substitute() ------------------------------------------------------------------------------


def test_substitute_variables_and_builtins():
    expr = ('sum by (mountpoint) (rate(x_total{job=~"$job", instance=~"${instance}", '
            'mountpoint=~"[[mountpoint]]"}[$__rate_interval]))')
    assert substitute(expr, {"job": "panicwatch", "instance": "host1:10110", "mountpoint": ".*"}) == (
        'sum by (mountpoint) (rate(x_total{job=~"panicwatch", instance=~"host1:10110", '
        'mountpoint=~".*"}[1m]))')
    assert substitute("rate(x[$__rate_interval])", {}, rate_interval="2m") == "rate(x[2m])"
    assert substitute("rate(x[$__rate_interval])", {"__rate_interval": "30s"}) == "rate(x[30s])"
    assert substitute("max_over_time(x[$__range]) + y[$__interval]", {}) == (
        "max_over_time(x[1h]) + y[15s]")
    assert substitute("x[${__range}] + y[$__interval]", {}, range_="6h", interval="1m") == (
        "x[6h] + y[1m]")


def test_substitute_formats():
    assert substitute('x{instance=~"${instance:regex}"}', {"instance": "10.0.0.1:10110"}) == (
        'x{instance=~"10\\.0\\.0\\.1:10110"}')
    assert substitute('x{a=~"${a:regex}"}', {"a": "a(b)|c*"}) == 'x{a=~"a\\(b\\)\\|c\\*"}'
    assert substitute('x{instance="${instance:raw}"}', {"instance": "10.0.0.1"}) == (
        'x{instance="10.0.0.1"}')
    assert substitute('x{a="[[a:raw]]"}', {"a": "b.c"}) == 'x{a="b.c"}'
    with pytest.raises(ValueError, match="format 'csv' of \\$a"):
        substitute("${a:csv}", {"a": "b"})


def test_substitute_needs_every_value():
    with pytest.raises(KeyError, match="no value for \\$instance"):
        substitute('x{job="$job", instance="$instance"}', {"job": "j"})
    with pytest.raises(KeyError, match="no value for \\$jobs"):  # $jobs is not $job + "s"
        substitute('x{job="$jobs"}', {"job": "j"})
    with pytest.raises(KeyError, match="no value for \\$__range_s"):
        substitute("x / $__range_s", {})
    assert substitute("x / $__range_s", {"__range_s": "3600"}) == "x / 3600"
    assert substitute('x{a="no variables here"}', {}) == 'x{a="no variables here"}'


def test_panel_queries_walks_collapsed_rows():
    board = {"panels": [
        {"type": "row", "title": "open", "panels": []},
        {"type": "stat", "title": "a", "targets": [{"expr": "up"}, {"expr": "", "refId": "B"}]},
        {"type": "row", "title": "closed", "collapsed": True, "panels": [
            {"type": "timeseries", "title": "b", "targets": [{"expr": "x"}, {"expr": "y"}]}]},
        {"type": "text", "title": "no queries"},
    ]}
    assert panel_queries(board) == [("a", "up"), ("b", "x"), ("b", "y")]
    assert [p["title"] for p in all_panels(board)] == ["open", "a", "closed", "b", "no queries"]


def test_load_dashboards_keys_and_query_counts(boards):
    assert sorted(boards) == [FLEET, HOST]
    assert {name: len(panel_queries(b)) for name, b in boards.items()} == {HOST: 59, FLEET: 20}


# --- provisioning -------------------------------------------------------------------------------


def yaml_content(path: Path) -> list[str]:
    """The lines that carry data (comments and blank lines dropped): these files are plain
    block mappings, so comparing lines compares their structure (PyYAML is not a dependency)."""
    lines = (line.split(" #")[0].rstrip() for line in path.read_text().splitlines())
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_dashboard_provider():
    assert yaml_content(DASHBOARDS / "provisioning/dashboards.yaml") == [
        "apiVersion: 1",
        "providers:",
        "  - name: panicwatch",
        "    orgId: 1",
        "    type: file",
        "    folder: panicwatch",
        "    folderUid: panicwatch",
        "    allowUiUpdates: false",
        "    disableDeletion: false",
        "    updateIntervalSeconds: 60",
        "    options:",
        "      path: /var/lib/grafana/dashboards/panicwatch",
        "      foldersFromFilesStructure: false",
    ]


def test_example_datasource():
    assert yaml_content(DASHBOARDS / "provisioning/datasource.yaml") == [
        "apiVersion: 1",
        "datasources:",
        "  - name: Prometheus",
        "    type: prometheus",
        "    uid: prometheus",
        "    access: proxy",
        "    url: http://localhost:9090",
        "    jsonData:",
        "      timeInterval: 30s",
    ]
    # the scrape interval it tells Grafana is the one the shipped scrape config uses
    scrape = yaml.safe_load((DASHBOARDS.parent / "deploy/prometheus/scrape.yml").read_text())
    assert {job["scrape_interval"] for job in scrape["scrape_configs"]} == {"30s"}
    assert "\t" not in (DASHBOARDS / "provisioning/datasource.yaml").read_text()
    assert "\t" not in (DASHBOARDS / "provisioning/dashboards.yaml").read_text()


def test_json_files_are_canonical():
    # what Grafana's "export" would diff against: two-space indent, a final newline
    for path in DASHBOARDS.glob("*.json"):
        text = path.read_text()
        assert text.endswith("}\n") and text.startswith('{\n  "uid": ')
        assert "\t" not in text
