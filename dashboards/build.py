#!/usr/bin/env python3
"""Generate panicwatch's Grafana dashboards (stdlib only).

    python3 dashboards/build.py          # rewrite dashboards/*.json
    python3 dashboards/build.py --check  # exit 1 if a checked-in file differs

The JSON is what Grafana provisions, so it is checked in; tests/test_dashboards.py fails
when it and this script disagree. Edit this file, not the JSON.

Conventions, so that the files provision as-is on any Grafana 10.3+ with any Prometheus:
every panel and query names the data source through the ``$datasource`` variable (no
``__inputs``), rates use ``$__rate_interval``, and uids are fixed so links and bookmarks
survive re-provisioning.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Json = dict[str, Any]

HERE = Path(__file__).resolve().parent
DS: Json = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39
GRID_WIDTH = 24

# Host dashboard filters; the fleet one uses the same matchers with multi-valued variables.
HOST = 'job=~"$job", instance=~"$instance"'
MOUNT = HOST + ', mountpoint=~"$mountpoint"'
RI = "[$__rate_interval]"

# The alerts of alerts/panicwatch.rules.yml (the test checks this list against the file).
ALERT_NAMES = (
    "KdumpNotArmed", "KdumpCrashMemoryMissing", "KdumpCrashMemoryTooSmall", "KdumpDisabledAtBoot",
    "KdumpDumpTargetLowSpace", "KdumpNeverTested", "VmcorePending", "HostPanicked",
    "LockupWillNotPanic", "KernelLockupDetected", "KernelCrashRecurring",
    "PanicwatchCollectorFailed", "PanicwatchDown",
    "NFSMountStalled", "NFSProbeSlow", "NFSStuckRPCs", "NFSHighLatency", "NFSMajorTimeouts",
    "NFSRetransmissionsHigh", "NFSTasksBlocked", "NFSServerNotResponding", "SchedulerLagHigh",
)

# --- field config pieces ------------------------------------------------------------------


def steps(*pairs: tuple[str, float | None]) -> Json:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in pairs]}


def mapping(*entries: tuple[int, str, str]) -> list[Json]:
    return [{"type": "value", "options": {
        str(value): {"text": text, "color": color, "index": i}
        for i, (value, text, color) in enumerate(entries)}}]


RED_GREEN = steps(("red", None), ("green", 1))  # 1 is good, anything below is bad
GREEN_ORANGE = steps(("green", None), ("orange", 1))  # 0 is good, any count is worth a look
GREEN_RED = steps(("green", None), ("red", 1))  # 0 is good, any count is an incident
PASS_FAIL = mapping((0, "FAIL", "red"), (1, "PASS", "green"))
YES_NO = mapping((0, "NO", "red"), (1, "YES", "green"))


# --- queries and panels -------------------------------------------------------------------


def sel(metric: str, matchers: str = HOST) -> str:
    return f"{metric}{{{matchers}}}"


def rate(metric: str, matchers: str = HOST, fn: str = "rate") -> str:
    return f"{fn}({metric}{{{matchers}}}{RI})"


def sum_rate(by: str, metric: str, matchers: str = HOST, fn: str = "rate") -> str:
    return f"sum by ({by}) ({rate(metric, matchers, fn)})"


def avg_latency(kind: str) -> str:
    """Seconds per operation: the counters' sum over their count, idle ops left out."""
    by = "sum by (mountpoint, op)"
    return (f"{by} ({rate(f'panicwatch_nfs_operation_{kind}_seconds_total', MOUNT)})\n/\n"
            f"({by} ({rate('panicwatch_nfs_operations_total', MOUNT)}) > 0)")


def target(expr: str, legend: str = "__auto", *, table: bool = False, heatmap: bool = False) -> Json:
    t: Json = {"datasource": DS, "expr": expr, "legendFormat": legend}
    if table:
        t.update(format="table", instant=True, range=False)
    elif heatmap:
        t.update(format="heatmap", instant=False, range=True)
    else:
        t.update(instant=False, range=True)
    return t


def panel(kind: str, title: str, description: str, targets: list[Json], size: tuple[int, int],
          defaults: Json | None = None, options: Json | None = None,
          overrides: list[Json] | None = None, transformations: list[Json] | None = None) -> Json:
    for ref, t in zip("ABCDEFGH", targets, strict=False):
        t["refId"] = ref
    p: Json = {
        "id": 0,  # Board.add numbers the panels
        "type": kind, "title": title, "description": description, "datasource": DS,
        "gridPos": {"w": size[0], "h": size[1]},
        "fieldConfig": {"defaults": defaults or {}, "overrides": overrides or []},
        "options": options or {}, "targets": targets,
    }
    if transformations:
        p["transformations"] = transformations
    return p


def stat(title: str, description: str, targets: list[Json], size: tuple[int, int], *,
         unit: str = "short", thresholds: Json | None = None, mappings: list[Json] | None = None,
         names: bool = False) -> Json:
    colored = thresholds is not None
    return panel("stat", title, description, targets, size, defaults={
        "unit": unit, "mappings": mappings or [],
        "thresholds": thresholds or steps(("text", None)),
        "color": {"mode": "thresholds"},
    }, options={
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background" if colored else "none", "graphMode": "none",
        "textMode": "value_and_name" if names else "value", "justifyMode": "auto",
        "orientation": "auto", "wideLayout": True, "showPercentChange": False,
    })


def timeseries(title: str, description: str, targets: list[Json], size: tuple[int, int], *,
               unit: str = "short", bars: bool = False, stacked: bool = False,
               threshold: float | None = None) -> Json:
    custom: Json = {
        "drawStyle": "bars" if bars else "line", "lineWidth": 1,
        "fillOpacity": 80 if bars else 10, "showPoints": "never", "spanNulls": False,
        "stacking": {"mode": "normal" if stacked else "none", "group": "A"},
        # the alert's threshold as a dashed line, so the graph says how far from paging it is
        "thresholdsStyle": {"mode": "off" if threshold is None else "dashed"},
    }
    return panel("timeseries", title, description, targets, size, defaults={
        "unit": unit, "min": 0, "custom": custom, "color": {"mode": "palette-classic"},
        "thresholds": steps(("green", None)) if threshold is None
        else steps(("green", None), ("red", threshold)),
    }, options={
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    })


def table(title: str, description: str, expr: str, size: tuple[int, int], *,
          hide: tuple[str, ...] = ("job", "instance"), value: str | None = None,
          unit: str = "short", thresholds: Json | None = None, mappings: list[Json] | None = None,
          overrides: list[Json] | None = None, order: tuple[str, ...] = (),
          rename: dict[str, str] | None = None, sort_desc: bool = False) -> Json:
    """An instant query as rows; ``value`` names the value column, else it is hidden (info).
    ``order`` puts these columns first, in this order; ``rename`` renames label columns (data
    links still name the label); ``sort_desc`` sorts by the value."""
    exclude = {"Time": True, "__name__": True, **dict.fromkeys(hide, True)}
    rename = dict(rename or {})
    if value is None:
        exclude["Value"] = True
    else:
        rename["Value"] = value
    organize: Json = {"excludeByName": exclude, "renameByName": rename}
    if order:
        organize["indexByName"] = {name: i for i, name in enumerate(order)}
    options: Json = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    if sort_desc:
        assert value is not None
        options["sortBy"] = [{"displayName": value, "desc": True}]
    return panel("table", title, description, [target(expr, table=True)], size, defaults={
        "unit": unit, "mappings": mappings or [],
        "thresholds": thresholds or steps(("text", None)),
        "color": {"mode": "thresholds"},
        "custom": {"align": "auto", "cellOptions": {
            "type": "color-background" if thresholds else "auto"}},
    }, options=options,
        transformations=[{"id": "organize", "options": organize}],
        overrides=overrides or [])


def heatmap(title: str, description: str, expr: str, size: tuple[int, int]) -> Json:
    return panel("heatmap", title, description, [target(expr, "{{le}}", heatmap=True)], size,
                 defaults={"custom": {"scaleDistribution": {"type": "linear"}}}, options={
                     "calculate": False,  # Prometheus buckets, not Grafana's own
                     "yAxis": {"unit": "s", "axisPlacement": "left"},
                     "rowsFrame": {"layout": "auto"},
                     "color": {"mode": "scheme", "scheme": "Oranges", "scale": "exponential",
                               "exponent": 0.5, "steps": 64},
                     "cellGap": 1, "filterValues": {"le": 1e-9}, "showValue": "never",
                     "tooltip": {"mode": "single", "yHistogram": True},
                     "legend": {"show": True},
                 })


def state_timeline(title: str, description: str, targets: list[Json], size: tuple[int, int]) -> Json:
    return panel("state-timeline", title, description, targets, size, defaults={
        "mappings": PASS_FAIL, "thresholds": RED_GREEN, "color": {"mode": "thresholds"},
        "custom": {"fillOpacity": 80, "lineWidth": 0},
    }, options={
        "showValue": "never", "mergeValues": True, "rowHeight": 0.9, "alignValue": "left",
        "legend": {"showLegend": False}, "tooltip": {"mode": "single"},
    })


def bargauge(title: str, description: str, targets: list[Json], size: tuple[int, int]) -> Json:
    return panel("bargauge", title, description, targets, size, defaults={
        "unit": "short", "min": 0, "thresholds": steps(("orange", None)),
        "color": {"mode": "thresholds"},
    }, options={
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "orientation": "horizontal", "displayMode": "basic", "showUnfilled": True,
        "valueMode": "color", "namePlacement": "auto",
    })


# --- layout -------------------------------------------------------------------------------


class Board:
    """Places panels left to right and wraps, rows across the full width; numbers them."""

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self._row: Json | None = None  # a collapsed row: its panels live inside it
        self._next_id = 1
        self.x = self.y = self.line_height = 0

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def row(self, title: str, *, collapsed: bool = False) -> None:
        self._newline()
        row: Json = {"type": "row", "title": title, "id": self._id(), "collapsed": collapsed,
                     "datasource": DS, "gridPos": {"x": 0, "y": self.y, "w": GRID_WIDTH, "h": 1},
                     "panels": []}
        self.panels.append(row)
        self._row = row if collapsed else None
        self.y += 1

    def add(self, *panels: Json) -> None:
        for p in panels:
            w, h = p["gridPos"]["w"], p["gridPos"]["h"]
            if self.x + w > GRID_WIDTH:
                self._newline()
            p["id"] = self._id()
            p["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
            self.x += w
            self.line_height = max(self.line_height, h)
            (self._row["panels"] if self._row else self.panels).append(p)

    def _newline(self) -> None:
        if self.x:
            self.y += self.line_height
        self.x = self.line_height = 0


# --- variables and the dashboard shell ----------------------------------------------------


def datasource_variable() -> Json:
    return {"name": "datasource", "label": "Data source", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0, "includeAll": False, "multi": False,
            "options": [], "refresh": 1, "regex": ""}


def query_variable(name: str, label: str, query: str, *, multi: bool = False,
                   all_value: str | None = None, include_all: bool = False) -> Json:
    v: Json = {"name": name, "label": label, "type": "query", "datasource": DS,
               "query": query, "definition": query, "current": {}, "hide": 0,
               "includeAll": include_all or all_value is not None, "multi": multi,
               "options": [], "refresh": 2, "regex": "", "sort": 1}
    if all_value is not None:
        v["allValue"] = all_value
    return v


JOB_QUERY = "label_values(panicwatch_build_info, job)"
INSTANCE_QUERY = 'label_values(panicwatch_build_info{job=~"$job"}, instance)'


def dashboard(uid: str, title: str, description: str, variables: list[Json], board: Board,
              links: list[Json]) -> Json:
    return {
        "uid": uid, "title": title, "description": description, "tags": ["panicwatch"],
        "editable": True, "graphTooltip": 1, "timezone": "browser", "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"}, "schemaVersion": SCHEMA_VERSION, "version": 1,
        "links": links,
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "templating": {"list": [datasource_variable(), *variables]},
        "panels": board.panels,
    }


def link(title: str, uid: str) -> Json:
    return {"title": title, "type": "link", "icon": "dashboard", "targetBlank": False,
            "keepTime": True, "includeVars": False, "tags": [], "asDropdown": False,
            "url": f"/d/{uid}/{uid}?${{datasource:queryparam}}", "tooltip": ""}


# Fleet tables link each host to its host dashboard.
HOST_LINK: Json = {"matcher": {"id": "byName", "options": "instance"}, "properties": [{
    "id": "links", "value": [{
        "title": "Open the host dashboard",
        "url": "/d/panicwatch-host/panicwatch-host?${datasource:queryparam}"
               "&var-job=${__data.fields.job}&var-instance=${__data.fields.instance}"
               "&${__url_time_range}"}]}]}


# A crash title links to where kernel developers discuss it: a lore.kernel.org search for the exact
# title, and syzbot's list of open bugs (no search URL: find the title on the page).
TITLE_LINKS: Json = {"matcher": {"id": "byName", "options": "title"}, "properties": [{
    "id": "links", "value": [
        {"title": "Search lore.kernel.org for this crash", "targetBlank": True,
         "url": "https://lore.kernel.org/all/?q=%22${__data.fields.title:percentencode}%22"},
        {"title": "syzbot's open upstream bugs (find the title on the page)", "targetBlank": True,
         "url": "https://syzkaller.appspot.com/upstream"}]}]}

# The crash labels of vmcore_crash_info, in the order triage prints them (the culprit function,
# then its module, empty when built in); tables show `function` as "culprit".
CRASH_COLUMNS = ("title", "kind", "function", "module", "kernel_release")


# --- the host dashboard -------------------------------------------------------------------


def host() -> Json:
    b = Board()

    b.row("Panic readiness")
    b.add(
        stat("Panic ready", "1 when no critical readiness check fails: a panic now would leave a "
             "vmcore. When red, run `panicwatch check` on the host: it prints the fix for each "
             "failed check.", [target(sel("panicwatch_panic_ready"), "panic ready")], (4, 5),
             thresholds=RED_GREEN, mappings=mapping((0, "NOT READY", "red"), (1, "READY", "green"))),
        stat("Readiness checks", "Every readiness check (1 pass, 0 fail; absent when it cannot be "
             "evaluated here). Critical: crash_kernel_loaded, crash_memory_reserved, "
             "kdump_enabled_at_boot, dump_target_ready. `panicwatch check` on the host says how "
             "to fix each; docs/runbooks.md has the details.",
             [target(sel("panicwatch_readiness_check"), "{{check}}")], (20, 5),
             thresholds=RED_GREEN, mappings=PASS_FAIL, names=True),
        state_timeline("Readiness over time", "When each check passed or failed: a check that "
                       "flips after a reboot or a package update points at what changed.",
                       [target(sel("panicwatch_readiness_check"), "{{check}}")], (24, 7)),
    )

    b.row("kdump and crash dumps")
    b.add(
        stat("Crash kernel loaded", "Whether a crash kernel is loaded (or fadump registered). "
             "If NO: `systemctl restart kdump` (kdump-tools on Debian/Ubuntu) and read its log; "
             "KdumpNotArmed pages after 10 minutes.",
             [target(sel("panicwatch_kdump_loaded"), "loaded")], (4, 5),
             thresholds=RED_GREEN, mappings=YES_NO),
        stat("kdump service", "Enabled at boot, and (RHEL/Fedora) whether the last `kdumpctl "
             "test` wrote a dump. If not enabled: `systemctl enable --now kdump` (and "
             "USE_KDUMP=1 in /etc/default/kdump-tools on Debian/Ubuntu).",
             [target(sel("panicwatch_kdump_service_enabled"), "enabled at boot"),
              target(sel("panicwatch_kdump_test_success"), "last test")], (5, 5),
             thresholds=RED_GREEN, mappings=YES_NO, names=True),
        stat("Crash kernel memory", "Reserved must cover what crashkernel= requests, and should "
             "reach the distribution's recommendation for this RAM; otherwise set crashkernel= "
             "as `panicwatch check` suggests and reboot.",
             [target(sel("panicwatch_kdump_crash_memory_reserved_bytes"), "reserved"),
              target(sel("panicwatch_kdump_crash_memory_requested_bytes"), "requested"),
              target(sel("panicwatch_kdump_crash_memory_recommended_bytes"), "recommended")],
             (7, 5), unit="bytes", names=True),
        table("Dump target", "Where the capture kernel writes dumps (kdump.conf, "
              "/etc/default/kdump-tools or /etc/sysconfig/kdump). `unknown` means the "
              "configuration could not be read.", sel("panicwatch_kdump_dump_target_info"), (5, 5)),
        stat("Dump target free space", "Free space on a local dump target (absent for remote "
             "targets). It needs --collector.kdump.min-free-ratio x RAM; free space or move the target "
             "before the next panic.", [target(sel("panicwatch_kdump_dump_target_free_bytes"),
                                               "{{path}}")], (3, 5), unit="bytes"),
        stat("Vmcores", "Dumps waiting in the local crash directory, and how many are "
             "incomplete. Run `panicwatch triage` on the host to name the crash in each, file "
             "the bug, then move them away so the next dump has room.",
             [target(sel("panicwatch_vmcores"), "dumps"),
              target(sel("panicwatch_vmcores_incomplete"), "incomplete")], (8, 5),
             thresholds=GREEN_ORANGE, names=True),
        stat("Vmcore bytes", "Space the dumps take on the dump target.",
             [target(sel("panicwatch_vmcore_bytes"), "bytes")], (8, 5), unit="bytes"),
        stat("Newest vmcore", "When the newest dump was captured: a recent one means this host "
             "panicked (HostPanicked).", [target(sel("panicwatch_vmcore_newest_timestamp_seconds")
                                                 + " * 1000", "captured")], (8, 5),
             unit="dateTimeFromNow"),
        table("Last panic", "The newest dump's crash as kernel developers name it: the title "
              "(click it to search lore.kernel.org; syzbot uses the same titles), the kind, the "
              "culprit function and its module (empty: built in), the crashed kernel's release, "
              "and the `Kernel panic - not syncing:` reason (numbers and addresses stripped). Run "
              "`panicwatch triage` on the host for the stack. Lockup or hung-task kinds on an NFS "
              "client: look at the NFS rows below for the same time. An empty title: the dump has "
              "no readable kernel log (`panicwatch triage --extract`).",
              f"{sel('panicwatch_last_panic_info')}\n"
              "* on(instance, job, dump) group_left(function, module)\n"
              f"{sel('panicwatch_vmcore_crash_info')}\n"
              f"or on(instance, job)\n{sel('panicwatch_last_panic_info')}",
              (24, 4), order=(*CRASH_COLUMNS, "reason", "dump"), rename={"function": "culprit"},
              overrides=[TITLE_LINKS]),
    )

    b.row("Kernel: panic settings, lockups, stalls")
    b.add(
        table("Panic sysctls", "kernel.* panic settings. For a lockup or hung task to leave a "
              "dump, softlockup_panic, hung_task_panic (with hung_task_timeout_secs > 0), "
              "hardlockup_panic and nmi_watchdog should be 1: set them in /etc/sysctl.d/.",
              sel("panicwatch_kernel_panic_setting"), (6, 9), value="value"),
        stat("Lockups since boot", "The kernel's own counters (/sys/kernel/*_count, "
             "hung_task_detect_count; absent on older kernels). Any count: read the kernel log "
             "around the time it moved.",
             [target(sel("panicwatch_kernel_lockups_total"), "{{kind}}")], (6, 9),
             thresholds=GREEN_ORANGE, names=True),
        timeseries("Lockups", "When the lockup counters moved (only kinds that moved are "
                   "shown). KernelLockupDetected fires on any.",
                   [target(sum_rate("kind", "panicwatch_kernel_lockups_total", fn="increase") + " > 0",
                           "{{kind}}")], (12, 9), bars=True),
        stat("pstore records", "Records in /sys/fs/pstore: what the firmware kept of earlier "
             "panics (useful when kdump failed). Read them, then delete them so the store does "
             "not fill up.", [target(sel("panicwatch_pstore_records"), "{{backend}} {{type}}")],
             (6, 7), names=True),
        timeseries("IO pressure", "Share of time some (or all) tasks stalled on IO "
                   "(/proc/pressure/io). Sustained `full` stalls with NFS mounts: check the NFS "
                   "rows.", [target(sum_rate("kind", "panicwatch_pressure_io_stalled_seconds_total"),
                                    "{{kind}}")], (9, 7), unit="percentunit"),
        timeseries("Scheduler lag", "How late panicwatch's ticker woke: CPU starvation and "
                   "soft-lockup precursors. SchedulerLagHigh fires when p99 stays over 0.5 s.",
                   [target(f"histogram_quantile({q}, sum by (le) "
                           f"({rate('panicwatch_canary_scheduler_lag_seconds_bucket')}))",
                           f"p{round(q * 100)}") for q in (0.5, 0.99)],
                   (9, 7), unit="s", threshold=0.5),
    )

    b.row("NFS mounts ($mountpoint)")
    b.add(
        table("NFS mounts", "The NFS mounts of this host, from mountstats.",
              sel("panicwatch_nfs_mount_info", MOUNT), (24, 5)),
        timeseries("Operations per second", "Completed NFS operations per mount and operation "
                   "(idle operations hidden).",
                   [target(sum_rate("mountpoint, op", "panicwatch_nfs_operations_total", MOUNT) + " > 0",
                           "{{mountpoint}} {{op}}")], (8, 8), unit="ops"),
        timeseries("Round-trip time per operation", "Average time from sending a request to "
                   "its reply. High RTT with low queue time: the server or the network is slow. "
                   "NFSHighLatency fires above 0.5 s.",
                   [target(avg_latency("rtt"), "{{mountpoint}} {{op}}")], (8, 8), unit="s",
                   threshold=0.5),
        timeseries("Execute time per operation", "Average time from queueing to completion "
                   "(queue + RTT + client work): what applications wait.",
                   [target(avg_latency("execute"), "{{mountpoint}} {{op}}")], (8, 8), unit="s"),
        timeseries("Queue time per operation", "Average time requests waited before being "
                   "sent. High queue time with normal RTT: the client is out of slots "
                   "(raise nconnect or the slot table) or the connection is congested.",
                   [target(avg_latency("queue"), "{{mountpoint}} {{op}}")], (8, 8), unit="s"),
        timeseries("Retransmissions", "RPC retransmissions per second per mount (transmissions "
                   "minus operations), and the client's total from /proc/net/rpc/nfs. "
                   "Retransmissions mean lost replies: check the network and the server.",
                   [target("clamp_min(sum by (mountpoint) (\n  "
                           f"{rate('panicwatch_nfs_operation_transmissions_total', MOUNT)}\n  - "
                           f"{rate('panicwatch_nfs_operations_total', MOUNT)}\n), 0)",
                           "{{mountpoint}}"),
                    target(rate("panicwatch_rpc_retransmissions_total"), "all mounts (rpc/nfs)")],
                   (8, 8), unit="ops"),
        timeseries("Major timeouts", "Requests that hit a major timeout (`server not "
                   "responding`). Any: the server stopped answering for timeo x retrans; "
                   "check the canary and the server.",
                   [target(sum_rate("mountpoint", "panicwatch_nfs_operation_major_timeouts_total", MOUNT,
                                    "increase"),
                           "{{mountpoint}}")], (8, 8), bars=True),
        timeseries("Errors", "Operations completed with an error status, per second (kernel "
                   "5.3+). Look at the application and the server log for the failing op.",
                   [target(sum_rate("mountpoint, op", "panicwatch_nfs_operation_errors_total", MOUNT)
                           + " > 0",
                           "{{mountpoint}} {{op}}")], (12, 8), unit="ops"),
        timeseries("Transport queues", "Average requests in flight, and waiting for a slot "
                   "(backlog), seen at each send. A growing backlog precedes a stall.",
                   [target(f"{rate(f'panicwatch_nfs_transport_{name}_sum_total', MOUNT)}\n/\n("
                           f"{rate('panicwatch_nfs_transport_sends_total', MOUNT)} > 0)",
                           f"{{{{mountpoint}}}} {label}")
                    for name, label in (("requests_in_flight", "in flight"), ("backlog", "backlog"))],
                   (12, 8)),
    )

    b.row("NFS canary ($mountpoint)")
    b.add(
        timeseries("Canary probe in flight", "Age of the statvfs probe still waiting on each "
                   "mount (0 when none): it grows while the mount does not answer. "
                   "NFSMountStalled pages past 60 s; then look at stuck RPCs and TCP below.",
                   [target(sel("panicwatch_canary_probe_inflight_seconds", MOUNT),
                           "{{mountpoint}}")], (8, 8), unit="s", threshold=60),
        heatmap("Canary probe latency", "Probes per latency bucket (1 ms to 60 s) over the "
                "selected mounts. Normal is milliseconds; a band moving up is a server slowing "
                "down before it stalls.",
                sum_rate("le", "panicwatch_canary_probe_duration_seconds_bucket", MOUNT, "increase"),
                (10, 8)),
        timeseries("Canary timeouts and errors", "Probes unanswered after --collector.canary.timeout, "
                   "and probes that failed by errno (ESTALE: remount; EIO/EACCES: the server).",
                   [target(sum_rate("mountpoint", "panicwatch_canary_probe_timeouts_total", MOUNT,
                                    "increase"),
                           "{{mountpoint}} timeout"),
                    target(sum_rate("mountpoint, error", "panicwatch_canary_probe_errors_total", MOUNT,
                                    "increase"),
                           "{{mountpoint}} {{error}}")], (6, 8), bars=True),
    )

    b.row("RPC tasks and blocked tasks")
    b.add(
        timeseries("RPC tasks per server", "RPC tasks in flight, stuck (older than "
                   "--collector.rpc.stuck-threshold) and past a major timeout, from debugfs sunrpc (root "
                   "only). Stuck tasks: the server or the path to it is not answering.",
                   [target(sel(f"panicwatch_rpc_tasks{suffix}"), f"{{{{server}}}} {label}")
                    for suffix, label in (("", "in flight"), ("_stuck", "stuck"),
                                          ("_major_timeout", "major timeout"))], (8, 8)),
        timeseries("Oldest RPC task", "How long the oldest RPC task to each server has been in "
                   "flight (a lower bound). NFSStuckRPCs counts tasks over 30 s.",
                   [target(sel("panicwatch_rpc_task_oldest_age_seconds"), "{{server}}")], (8, 8),
                   unit="s", threshold=30),
        timeseries("RPC transport queues", "Tasks waiting on each server's transports: for a "
                   "slot (backlog), to send, for a reply (pending) (sysfs, kernel 5.14+).",
                   [target(sel("panicwatch_rpc_transport_queue_tasks"), "{{server}} {{queue}}")],
                   (8, 8), stacked=True),
        timeseries("Blocked tasks by wait class", "Threads in uninterruptible sleep (D): rpc "
                   "(waiting for the server), nfs (NFS client waits), other. Many rpc/nfs: the "
                   "mount is hanging; `cat /proc/<pid>/stack` shows where.",
                   [target(sel("panicwatch_blocked_tasks"), "{{wait}}")], (12, 8), stacked=True),
        timeseries("Longest blocked task", "How long the longest-blocked thread of each class "
                   "has been in D. Past 120 s the kernel's hung-task detector fires "
                   "(NFSTasksBlocked), and with hung_task_panic=1 the host panics.",
                   [target(sel("panicwatch_blocked_task_longest_seconds"), "{{wait}}")], (12, 8),
                   unit="s", threshold=120),
    )

    b.row("NFS servers: TCP and kernel log")
    b.add(
        timeseries("Last receive age", "Seconds since any socket to the server received "
                   "data. It grows while the server does not answer; with a send queue that "
                   "does not drain, the network or the server is gone.",
                   [target(sel("panicwatch_nfs_socket_last_receive_age_seconds"),
                           "{{server}}:{{port}}")], (8, 8), unit="s"),
        timeseries("Socket send queue", "Bytes written to the server and not acknowledged.",
                   [target(sel("panicwatch_nfs_socket_send_queue_bytes"), "{{server}}:{{port}}")],
                   (8, 8), unit="bytes"),
        timeseries("Socket RTT", "The kernel's smoothed TCP round-trip time to the server (the "
                   "largest over established sockets).",
                   [target(sel("panicwatch_nfs_socket_rtt_seconds"), "{{server}}:{{port}}")],
                   (8, 8), unit="s"),
        timeseries("TCP retransmits and unacked", "Retransmitted segments over the life of the "
                   "sockets open now, and segments in flight. Rising retransmits: packet loss "
                   "between client and server.",
                   [target(sel("panicwatch_nfs_socket_retransmits"), "{{server}} retransmits"),
                    target(sel("panicwatch_nfs_socket_unacked_segments"), "{{server}} unacked")],
                   (8, 8)),
        table("Servers not responding", "Servers the kernel logged as `not responding, still "
              "trying` with no `OK` since. Check the server and the network to it.",
              sel("panicwatch_nfs_servers_not_responding"), (6, 8)),
        timeseries("Kernel log events", "NFS not responding/OK, lockups, hung tasks, oopses "
                   "and warnings the kernel logged (/dev/kmsg, root only). Read `dmesg -T` "
                   "around the bar.",
                   [target(sum_rate("event, server", "panicwatch_kernel_log_events_total", fn="increase")
                           + " > 0",
                           "{{event}} {{server}}")], (10, 8), bars=True),
    )

    b.row("Exporter", collapsed=True)
    b.add(
        stat("Collector success", "Whether each collector read everything it needed. A "
             "failure keeps what could be read; the exporter's log says why (once per change).",
             [target(sel("panicwatch_collector_success"), "{{collector}}")], (12, 6),
             thresholds=RED_GREEN, mappings=mapping((0, "FAILED", "red"), (1, "OK", "green")),
             names=True),
        timeseries("Collector duration", "Time each collector takes per scrape.",
                   [target(sel("panicwatch_collector_duration_seconds"), "{{collector}}")], (12, 6),
                   unit="s"),
        stat("Privileged sources", "Sources that need root: debugfs sunrpc (RPC task panels) "
             "and /dev/kmsg (kernel log panels). NO explains those panels being empty.",
             [target(sel("panicwatch_rpc_debugfs_available"), "debugfs sunrpc"),
              target(sel("panicwatch_kernel_log_reading"), "/dev/kmsg")], (8, 4),
             thresholds=steps(("orange", None), ("green", 1)),
             mappings=mapping((0, "NO", "orange"), (1, "YES", "green")), names=True),
        stat("Canary targets", "Paths the canary probes, and paths left out by "
             "--collector.canary.max-targets (raise it if not 0).",
             [target(sel("panicwatch_canary_targets"), "probed"),
              target(sel("panicwatch_canary_targets_over_limit"), "over the limit")], (6, 4),
             names=True),
        table("Build", "panicwatch and Python versions.", sel("panicwatch_build_info"), (10, 4)),
    )

    variables = [
        query_variable("job", "Job", JOB_QUERY),
        query_variable("instance", "Host", INSTANCE_QUERY),
        query_variable("mountpoint", "Mount point",
                       f"label_values(panicwatch_nfs_mount_info{{{HOST}}}, mountpoint)",
                       multi=True, all_value=".*"),
    ]
    return dashboard("panicwatch-host", "panicwatch / host",
                     "One host: will the next panic leave a dump, and is NFS sliding toward a "
                     "lockup?", variables, b, [link("Fleet", "panicwatch-fleet")])


# --- the fleet dashboard ------------------------------------------------------------------

FLEET = HOST  # the same matchers; here $job and $instance hold several values
JOB = 'job=~"$job"'  # recording rules aggregate the instance away


def fleet() -> Json:
    b = Board()
    alert_regex = "|".join(ALERT_NAMES)

    b.row("Overview")
    b.add(
        stat("Hosts not armed", "Hosts with no crash kernel loaded: a panic there leaves no "
             "dump. Open the host from the readiness table below.",
             [target(f"count({sel('panicwatch_kdump_loaded', FLEET)} == 0) or vector(0)",
                     "hosts")], (4, 5), thresholds=GREEN_RED),
        stat("Fraction armed", "Share of hosts with a crash kernel loaded, per job (recording "
             "rule panicwatch:hosts_armed:ratio).",
             [target(sel("panicwatch:hosts_armed:ratio", JOB), "{{job}}")], (4, 5),
             unit="percentunit", thresholds=steps(("red", None), ("orange", 0.9), ("green", 1))),
        stat("Hosts not panic-ready", "Hosts where a critical readiness check fails.",
             [target(f"count({sel('panicwatch_panic_ready', FLEET)} == 0) or vector(0)", "hosts")],
             (4, 5), thresholds=GREEN_RED),
        stat("Hosts with vmcores waiting", "Hosts with dumps nobody has moved away yet "
             "(panicwatch:hosts_with_vmcores:count). Read them: each is a panic.",
             [target(f"sum({sel('panicwatch:hosts_with_vmcores:count', JOB)})", "hosts")], (4, 5),
             thresholds=GREEN_ORANGE),
        stat("Hosts with a stalled mount", "Hosts with a canary probe in flight for over 60 s "
             "(panicwatch:hosts_with_stalled_mount:count): an NFS mount is hanging there now.",
             [target(f"sum({sel('panicwatch:hosts_with_stalled_mount:count', JOB)})", "hosts")],
             (4, 5), thresholds=GREEN_RED),
        stat("Exporters down", "panicwatch targets Prometheus cannot scrape: nothing above is "
             "known about them.",
             [target(f"count({sel('up', FLEET)} == 0) or vector(0)", "targets")], (4, 5),
             thresholds=GREEN_RED),
    )

    b.row("Panic readiness")
    b.add(
        table("Hosts failing readiness checks", "Every failing check on every host. Run "
              "`panicwatch check` on the host for the fix; the instance links to its dashboard.",
              f"{sel('panicwatch_readiness_check', FLEET)} == 0", (12, 8), hide=(),
              overrides=[HOST_LINK]),
        bargauge("Failing hosts per check", "How many hosts fail each check: one check failing "
                 "on many hosts is a configuration problem, not a host problem.",
                 [target(f"count by (check) ({sel('panicwatch_readiness_check', FLEET)} == 0)",
                         "{{check}}")], (12, 8)),
        table("Last panic per host", "The newest dump's panic on each host that has one: "
              "reason, kind, crash title and kernel release. Lockups and hung tasks on NFS "
              "clients: compare with the NFS rows; `panicwatch triage` on the host names the "
              "crash in every dump.",
              sel("panicwatch_last_panic_info", FLEET), (16, 8), hide=(), overrides=[HOST_LINK]),
        timeseries("Fraction armed over time", "panicwatch:hosts_armed:ratio per job: a dip "
                   "after a kernel roll-out means kdump did not come back.",
                   [target(sel("panicwatch:hosts_armed:ratio", JOB), "{{job}}")], (8, 8),
                   unit="percentunit"),
    )

    crashes = sel("panicwatch_vmcore_crash_info", FLEET + ', title!=""')
    b.row("Crashes")
    b.add(
        table("Crashes by title and kernel", "Each crash (as kernel developers title it) and "
              "kernel release, with the number of hosts that held a dump of it during the "
              "dashboard's time range. The same title on several hosts is a kernel bug, not bad "
              "luck (KernelCrashRecurring fires at 3 hosts in 7 days): click the title to search "
              "lore.kernel.org, look for it on syzbot and the distribution's bug tracker, "
              "compare kernel releases (a newer release without it may have the fix) and run "
              "`panicwatch triage` on one of its hosts (next table) for the stack.",
              "count by (title, kernel_release) (\n"
              f"  count by (title, kernel_release, instance) (last_over_time({crashes}[$__range]))"
              "\n)", (10, 8), hide=(), value="hosts",
              thresholds=steps(("text", None), ("orange", 2), ("red", 3)),
              order=("title", "kernel_release"), sort_desc=True, overrides=[TITLE_LINKS]),
        table("Hosts by crash", "Every host that held a dump of each crash during the time "
              "range, with its culprit and when the newest such dump was captured. Click the "
              "title to search lore.kernel.org; run `panicwatch triage` on the host (the instance "
              "links to its dashboard) for the stack, and compare stacks on two hosts to be sure "
              "it is one bug.",
              "max by (job, instance, title, kind, function, module, kernel_release) (\n"
              f"  last_over_time({crashes}[$__range])\n"
              "  * on(instance, job, dump) group_left\n"
              f"  last_over_time({sel('panicwatch_vmcore_timestamp_seconds', FLEET)}[$__range])\n"
              ") * 1000", (14, 8), hide=(), value="newest capture", unit="dateTimeFromNow",
              order=("instance", *CRASH_COLUMNS, "job"), rename={"function": "culprit"},
              sort_desc=True, overrides=[HOST_LINK, TITLE_LINKS]),
    )

    b.row("NFS")
    b.add(
        table("Worst mounts by probe in flight", "Mounts whose canary probe has waited "
              "longest now (0: answering). Over 60 s is a stalled mount.",
              f"topk(10, {sel('panicwatch_canary_probe_inflight_seconds', FLEET)})", (8, 8),
              hide=(), value="in flight", unit="s",
              thresholds=steps(("green", None), ("orange", 5), ("red", 60)), overrides=[HOST_LINK]),
        table("Worst mounts by RTT", "Mounts with the highest average round-trip time of any "
              "operation over 5 minutes (panicwatch:nfs_op_rtt_seconds:avg_rate5m).",
              "topk(10, max by (job, instance, mountpoint) "
              f"({sel('panicwatch:nfs_op_rtt_seconds:avg_rate5m', FLEET)}))", (8, 8), hide=(),
              value="RTT", unit="s", thresholds=steps(("green", None), ("orange", 0.1), ("red", 0.5)),
              overrides=[HOST_LINK]),
        table("Worst servers by RTT", "NFS servers and operations by the worst client's "
              "average RTT over 5 minutes (panicwatch:nfs_server_op_rtt_seconds:max_avg_rate5m; "
              "server from the mount's device name). A server slow for every client: look at "
              "the server; for one client only: at that client's network.",
              f"topk(10, {sel('panicwatch:nfs_server_op_rtt_seconds:max_avg_rate5m', JOB)})",
              (8, 8), hide=(), value="RTT", unit="s",
              thresholds=steps(("green", None), ("orange", 0.1), ("red", 0.5))),
        table("Stuck RPC tasks", "Hosts with RPC tasks in flight longer than "
              "--collector.rpc.stuck-threshold, per server.",
              f"{sel('panicwatch_rpc_tasks_stuck', FLEET)} > 0", (12, 6), hide=(), value="stuck",
              overrides=[HOST_LINK]),
        table("Servers not responding", "Servers a client's kernel reported `not responding` "
              "with no `OK` since.", sel("panicwatch_nfs_servers_not_responding", FLEET), (12, 6),
              hide=(), overrides=[HOST_LINK]),
    )

    b.row("Alerts and exporters")
    b.add(
        table("Firing panicwatch alerts", "panicwatch alerts firing now (ALERTS from "
              "Prometheus); each has a runbook in docs/runbooks.md.",
              f'ALERTS{{alertstate="firing", alertname=~"{alert_regex}"}}', (24, 8),
              hide=("alertstate",), overrides=[HOST_LINK]),
        table("Exporters", "Scrape health of every panicwatch target.", sel("up", FLEET), (12, 8),
              hide=(), value="up", thresholds=RED_GREEN,
              mappings=mapping((0, "DOWN", "red"), (1, "UP", "green")), overrides=[HOST_LINK]),
        table("Failing collectors", "Collectors that could not read everything; the host's "
              "exporter log says why.", f"{sel('panicwatch_collector_success', FLEET)} == 0",
              (12, 8), hide=(), overrides=[HOST_LINK]),
    )

    variables = [
        query_variable("job", "Job", JOB_QUERY, multi=True, include_all=True),
        query_variable("instance", "Host", INSTANCE_QUERY, multi=True, all_value=".*"),
    ]
    return dashboard("panicwatch-fleet", "panicwatch / fleet",
                     "Every host: which are not armed for a panic, which have dumps waiting, "
                     "and which NFS mounts and servers are in trouble.",
                     variables, b, [link("Host", "panicwatch-host")])


DASHBOARDS: dict[str, Callable[[], Json]] = {
    "panicwatch-host.json": host,
    "panicwatch-fleet.json": fleet,
}


def render(board: Json) -> str:
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def generate() -> dict[str, str]:
    """File name -> the JSON text this script writes."""
    return {name: render(make()) for name, make in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if a checked-in file differs")
    args = parser.parse_args(argv)
    stale = []
    for name, text in generate().items():
        path = HERE / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"out of date: {', '.join(stale)} (run python3 dashboards/build.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
