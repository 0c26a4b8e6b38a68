#!/usr/bin/env python3
"""Generate panicwatch's Grafana dashboards with Grafana's Foundation SDK.

    python3 dashboards/build.py          # rewrite dashboards/*.json
    python3 dashboards/build.py --check  # exit 1 if a checked-in file differs

The JSON is what Grafana provisions, so it is checked in; tests/test_dashboards.py fails
when it and this script disagree. Edit this file, not the JSON.

Building needs the `dashboards` extra (`pip install -e '.[dashboards]'`: grafana-foundation-sdk,
pinned in pyproject.toml); the exporter and the checked-in JSON do not.

Conventions, so that the files provision as-is on any Grafana 10.3+ with any Prometheus:
every panel and query names the data source through the ``$datasource`` variable (no
``__inputs``), rates use ``$__rate_interval``, and uids are fixed so links and bookmarks
survive re-provisioning.

The SDK's builders make the dashboard, rows, panels, queries, variables, thresholds, mappings
and links, and lay the panels out. What it has no type for stays hand-written here, each marked
"SDK gap": the organize transformation's options, data links on table columns, the dashboard's
schemaVersion, and the panel ids.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

try:
    from grafana_foundation_sdk.builders import bargauge as bg
    from grafana_foundation_sdk.builders import common as cb
    from grafana_foundation_sdk.builders import dashboard as db
    from grafana_foundation_sdk.builders import heatmap as hm
    from grafana_foundation_sdk.builders import prometheus as prom
    from grafana_foundation_sdk.builders import stat as st
    from grafana_foundation_sdk.builders import statetimeline as stl
    from grafana_foundation_sdk.builders import table as tb
    from grafana_foundation_sdk.builders import timeseries as ts
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common
    from grafana_foundation_sdk.models import dashboard as dm
    from grafana_foundation_sdk.models.heatmap import HeatmapColorMode, HeatmapColorScale
    from grafana_foundation_sdk.models.prometheus import PromQueryFormat
except ModuleNotFoundError as e:  # say how to get it, not just what is missing
    raise ModuleNotFoundError(
        f"{e}: building the dashboards needs the dashboards extra: pip install -e '.[dashboards]'"
    ) from e

Json = dict[str, Any]
Size = tuple[int, int]  # (width, height) in grid units; a grid line is 24 wide
AnyPanel = TypeVar("AnyPanel", st.Panel, ts.Panel, tb.Panel, hm.Panel, stl.Panel, bg.Panel)
PanelBuilder = st.Panel | ts.Panel | tb.Panel | hm.Panel | stl.Panel | bg.Panel

HERE = Path(__file__).resolve().parent
DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
SCHEMA_VERSION = 39

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


def steps(*pairs: tuple[str, float | None]) -> db.ThresholdsConfig:
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=v, color=c) for c, v in pairs])


def mapping(*entries: tuple[int, str, str]) -> list[dm.ValueMapping]:
    return [dm.ValueMap(options={
        str(value): dm.ValueMappingResult(text=text, color=color, index=i)
        for i, (value, text, color) in enumerate(entries)})]


RED_GREEN = steps(("red", None), ("green", 1))  # 1 is good, anything below is bad
GREEN_ORANGE = steps(("green", None), ("orange", 1))  # 0 is good, any count is worth a look
GREEN_RED = steps(("green", None), ("red", 1))  # 0 is good, any count is an incident
PASS_FAIL = mapping((0, "FAIL", "red"), (1, "PASS", "green"))
YES_NO = mapping((0, "NO", "red"), (1, "YES", "green"))


def color(mode: dm.FieldColorModeId) -> db.FieldColor:
    return db.FieldColor().mode(mode)


# --- queries ------------------------------------------------------------------------------


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


def target(expr: str, legend: str = "__auto") -> prom.Dataquery:
    """A range query, what graphs and stats draw; tables and the heatmap adjust it."""
    return prom.Dataquery().datasource(DS).expr(expr).legend_format(legend).range()


# --- panels -------------------------------------------------------------------------------


def panel(builder: AnyPanel, title: str, description: str, targets: list[prom.Dataquery],
          size: Size) -> AnyPanel:
    """What every panel has; the SDK places it (Dashboard.with_panel) and finish() numbers it."""
    for ref, t in zip("ABCDEFGH", targets, strict=False):
        # the SDK sets no refId; tests/dashboard_empty_when_healthy.txt names queries by theirs
        t.ref_id(ref)
    return (builder.title(title).description(description).datasource(DS)
            # list(): a list[Builder[Dataquery]] to a type checker (lists are invariant)
            .span(size[0]).height(size[1]).targets(list(targets)))


def stat(title: str, description: str, targets: list[prom.Dataquery], size: Size, *,
         unit: str = "short", thresholds: db.ThresholdsConfig | None = None,
         mappings: list[dm.ValueMapping] | None = None, names: bool = False) -> st.Panel:
    colored = thresholds is not None
    return (panel(st.Panel(), title, description, targets, size)
            .unit(unit).mappings(mappings or [])
            .thresholds(thresholds or steps(("text", None)))
            .color_scheme(color(dm.FieldColorModeId.THRESHOLDS))
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
            .color_mode(common.BigValueColorMode.BACKGROUND if colored else common.BigValueColorMode.NONE)
            .graph_mode(common.BigValueGraphMode.NONE)
            .text_mode(common.BigValueTextMode.VALUE_AND_NAME if names else common.BigValueTextMode.VALUE)
            .justify_mode(common.BigValueJustifyMode.AUTO).orientation(common.VizOrientation.AUTO)
            .wide_layout(True).show_percent_change(False))


def timeseries(title: str, description: str, targets: list[prom.Dataquery], size: Size, *,
               unit: str = "short", bars: bool = False, stacked: bool = False,
               threshold: float | None = None) -> ts.Panel:
    red_line = () if threshold is None else (("red", threshold),)
    return (panel(ts.Panel(), title, description, targets, size)
            .unit(unit).min(0)
            .draw_style(common.GraphDrawStyle.BARS if bars else common.GraphDrawStyle.LINE)
            .line_width(1).fill_opacity(80 if bars else 10)
            .show_points(common.VisibilityMode.NEVER).span_nulls(False)
            .stacking(cb.StackingConfig()
                      .mode(common.StackingMode.NORMAL if stacked else common.StackingMode.NONE)
                      .group("A"))
            # the alert's threshold as a dashed line, so the graph says how far from paging it is
            .thresholds_style(cb.GraphThresholdsStyleConfig().mode(
                common.GraphThresholdsStyleMode.OFF if threshold is None
                else common.GraphThresholdsStyleMode.DASHED))
            .color_scheme(color(dm.FieldColorModeId.PALETTE_CLASSIC))
            .thresholds(steps(("green", None), *red_line))
            .legend(cb.VizLegendOptions().display_mode(common.LegendDisplayMode.LIST)
                    .placement(common.LegendPlacement.BOTTOM).show_legend(True))
            .tooltip(cb.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                     .sort(common.SortOrder.DESCENDING)))


# --- data links on table columns ----------------------------------------------------------
# SDK gap: the SDK has no type for a field's data link (it types FieldConfig.links as a
# *dashboard* link, whose keys mean nothing on a column), so these are hand-written; the override
# that carries them (DynamicConfigValue, matched by name) is the SDK's.

ColumnLinks = tuple[str, list[Json]]  # (column, its data links)

# Fleet tables link each host to its host dashboard.
HOST_LINK: ColumnLinks = ("instance", [{
    "title": "Open the host dashboard",
    "url": "/d/panicwatch-host/panicwatch-host?${datasource:queryparam}"
           "&var-job=${__data.fields.job}&var-instance=${__data.fields.instance}"
           "&${__url_time_range}"}])

# A crash title links to where kernel developers discuss it: a lore.kernel.org search for the exact
# title, and syzbot's list of open bugs (no search URL: find the title on the page).
TITLE_LINKS: ColumnLinks = ("title", [
    {"title": "Search lore.kernel.org for this crash", "targetBlank": True,
     "url": "https://lore.kernel.org/all/?q=%22${__data.fields.title:percentencode}%22"},
    {"title": "syzbot's open upstream bugs (find the title on the page)", "targetBlank": True,
     "url": "https://syzkaller.appspot.com/upstream"}])


def organize(hide: tuple[str, ...], value: str | None, order: tuple[str, ...],
             rename: dict[str, str] | None) -> dm.DataTransformerConfig:
    """The organize transformation: which columns a table shows, named and ordered how.

    SDK gap: DataTransformerConfig types only the id; the options of each transformation are
    free-form in the SDK, so this dict is written by hand."""
    exclude = {"Time": True, "__name__": True, **dict.fromkeys(hide, True)}
    rename = dict(rename or {})
    if value is None:
        exclude["Value"] = True
    else:
        rename["Value"] = value
    options: Json = {"excludeByName": exclude, "renameByName": rename}
    if order:
        options["indexByName"] = {name: i for i, name in enumerate(order)}
    return dm.DataTransformerConfig(id_val="organize", options=options)


def table(title: str, description: str, expr: str, size: Size, *,
          hide: tuple[str, ...] = ("job", "instance"), value: str | None = None,
          unit: str = "short", thresholds: db.ThresholdsConfig | None = None,
          mappings: list[dm.ValueMapping] | None = None,
          links: tuple[ColumnLinks, ...] = (), order: tuple[str, ...] = (),
          rename: dict[str, str] | None = None, sort_desc: bool = False) -> tb.Panel:
    """An instant query as rows; ``value`` names the value column, else it is hidden (info).
    ``order`` puts these columns first, in this order; ``rename`` renames label columns (data
    links still name the label); ``sort_desc`` sorts by the value."""
    query = target(expr).format(PromQueryFormat.TABLE).instant()
    cells: common.TableCellOptions = (
        common.TableColoredBackgroundCellOptions() if thresholds else common.TableAutoCellOptions())
    p = (panel(tb.Panel(), title, description, [query], size)
         .unit(unit).mappings(mappings or [])
         .thresholds(thresholds or steps(("text", None)))
         .color_scheme(color(dm.FieldColorModeId.THRESHOLDS))
         .align(common.FieldTextAlignment.AUTO).cell_options(cells)
         .show_header(True).cell_height(common.TableCellHeight.SM)
         .footer(cb.TableFooterOptions().show(False))
         .transformations([organize(hide, value, order, rename)]))
    for column, column_links in links:
        p.override_by_name(column, [dm.DynamicConfigValue(id_val="links", value=column_links)])
    if sort_desc:
        assert value is not None
        p.sort_by([cb.TableSortByFieldState().display_name(value).desc(True)])
    return p


def heatmap(title: str, description: str, expr: str, size: Size) -> hm.Panel:
    query = target(expr, "{{le}}").format(PromQueryFormat.HEATMAP)
    return (panel(hm.Panel(), title, description, [query], size)
            .scale_distribution(cb.ScaleDistributionConfig().type(common.ScaleDistribution.LINEAR))
            .calculate(False)  # Prometheus buckets, not Grafana's own
            .y_axis(hm.YAxisConfig().unit("s").axis_placement(common.AxisPlacement.LEFT))
            .rows_frame(hm.RowsHeatmapOptions().layout(common.HeatmapCellLayout.AUTO))
            .color(hm.HeatmapColorOptions().mode(HeatmapColorMode.SCHEME).scheme("Oranges")
                   .scale(HeatmapColorScale.EXPONENTIAL).exponent(0.5).steps(64))
            .cell_gap(1).filter_values(hm.FilterValueRange().le(1e-9))
            .show_value(common.VisibilityMode.NEVER)
            .mode(common.TooltipDisplayMode.SINGLE).show_y_histogram().show_legend())


def state_timeline(title: str, description: str, targets: list[prom.Dataquery],
                   size: Size) -> stl.Panel:
    return (panel(stl.Panel(), title, description, targets, size)
            .mappings(PASS_FAIL).thresholds(RED_GREEN)
            .color_scheme(color(dm.FieldColorModeId.THRESHOLDS))
            .fill_opacity(80).line_width(0)
            .show_value(common.VisibilityMode.NEVER).merge_values(True).row_height(0.9)
            .align_value(common.TimelineValueAlignment.LEFT)
            .legend(cb.VizLegendOptions().show_legend(False))
            # the SDK's tooltip sort defaults to ascending; Grafana's (and this panel's) is none
            .tooltip(cb.VizTooltipOptions().mode(common.TooltipDisplayMode.SINGLE)
                     .sort(common.SortOrder.NONE)))


def bargauge(title: str, description: str, targets: list[prom.Dataquery], size: Size) -> bg.Panel:
    return (panel(bg.Panel(), title, description, targets, size)
            .unit("short").min(0).thresholds(steps(("orange", None)))
            .color_scheme(color(dm.FieldColorModeId.THRESHOLDS))
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
            .orientation(common.VizOrientation.HORIZONTAL)
            .display_mode(common.BarGaugeDisplayMode.BASIC).show_unfilled(True)
            .value_mode(common.BarGaugeValueMode.COLOR)
            .name_placement(common.BarGaugeNamePlacement.AUTO))


# The crash labels of vmcore_crash_info, in the order triage prints them (the culprit function,
# then its module, empty when built in); tables show `function` as "culprit".
CRASH_COLUMNS = ("title", "kind", "function", "module", "kernel_release")


# --- variables, layout and the dashboard shell --------------------------------------------


def datasource_variable() -> db.DatasourceVariable:
    return (db.DatasourceVariable("datasource").label("Data source").type("prometheus")
            .hide(dm.VariableHide.DONT_HIDE).multi(False).include_all(False).regex(""))


def query_variable(name: str, label: str, query: str, *, multi: bool = False,
                   all_value: str | None = None, include_all: bool = False) -> db.QueryVariable:
    v = (db.QueryVariable(name).label(label).datasource(DS).query(query)
         .hide(dm.VariableHide.DONT_HIDE).include_all(include_all or all_value is not None)
         .multi(multi).options([]).refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).regex("")
         .sort(dm.VariableSort.ALPHABETICAL_ASC))
    return v if all_value is None else v.all_value(all_value)


JOB_QUERY = "label_values(panicwatch_build_info, job)"
INSTANCE_QUERY = 'label_values(panicwatch_build_info{job=~"$job"}, instance)'


def link(title: str, uid: str) -> db.DashboardLink:
    return (db.DashboardLink(title).type(dm.DashboardLinkType.LINK).icon("dashboard")
            .target_blank(False).keep_time(True).include_vars(False).tags([]).as_dropdown(False)
            .url(f"/d/{uid}/{uid}?${{datasource:queryparam}}").tooltip(""))


def dashboard(uid: str, title: str, description: str, variables: list[db.QueryVariable],
              links: list[db.DashboardLink]) -> db.Dashboard:
    """Everything but the panels, which section() and collapsed_section() add."""
    return (db.Dashboard(title).uid(uid).description(description).tags(["panicwatch"])
            .editable().tooltip(dm.DashboardCursorSync.CROSSHAIR).timezone("browser")
            .refresh("1m").time("now-6h", "now").version(1).links(list(links))
            .annotation(db.AnnotationQuery().built_in(1)
                        .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
                        .enable(True).hide(True).icon_color("rgba(0, 211, 255, 1)")
                        .name("Annotations & Alerts").type("dashboard"))
            .variables([datasource_variable(), *variables]))


def section(board: db.Dashboard, title: str, *panels: PanelBuilder) -> None:
    """An open row followed by its panels, placed left to right by the SDK, which starts a new
    line when one is full: each line of panels must add up to the grid's width (24), or the SDK
    lets a panel run past the edge (the layout test catches it)."""
    board.with_row(db.Row(title).datasource(DS))
    for p in panels:
        board.with_panel(p)


def collapsed_section(board: db.Dashboard, title: str, *panels: PanelBuilder) -> None:
    """A collapsed row holding its panels (Grafana drops panels inside an open row); the SDK
    lays them out below the row, for when it opens."""
    row = db.Row(title).datasource(DS)
    for p in panels:
        row.with_panel(p)  # also marks the row collapsed
    board.with_row(row)


def all_panels(panels: list[dm.Panel | dm.RowPanel]) -> Iterator[dm.Panel | dm.RowPanel]:
    for p in panels:
        yield p
        if isinstance(p, dm.RowPanel):
            yield from p.panels


def finish(board: db.Dashboard) -> dm.Dashboard:
    """The built dashboard, with what the SDK does not set."""
    built = board.build()
    # SDK gap: the 10.4 SDK's Dashboard builder has no schemaVersion setter and its model
    # defaults to 36, which would have Grafana run migrations meant for older files.
    built.schema_version = SCHEMA_VERSION
    # SDK gap: the SDK sets no panel ids. Grafana would number them on load, but fixed ones keep
    # the checked-in file and viewPanel= links stable: reading order, a collapsed row's panels
    # right after the row.
    for n, p in enumerate(all_panels(built.panels or []), start=1):
        p.id_val = n
    return built


# --- the host dashboard -------------------------------------------------------------------


def host() -> dm.Dashboard:
    b = dashboard("panicwatch-host", "panicwatch / host",
                  "One host: will the next panic leave a dump, and is NFS sliding toward a lockup?",
                  [query_variable("job", "Job", JOB_QUERY),
                   query_variable("instance", "Host", INSTANCE_QUERY),
                   query_variable("mountpoint", "Mount point",
                                  f"label_values(panicwatch_nfs_mount_info{{{HOST}}}, mountpoint)",
                                  multi=True, all_value=".*")],
                  [link("Fleet", "panicwatch-fleet")])

    section(b, "Panic readiness",
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

    section(b, "kdump and crash dumps",
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
              links=(TITLE_LINKS,)),
    )

    section(b, "Kernel: panic settings, lockups, stalls",
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

    section(b, "NFS mounts ($mountpoint)",
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

    section(b, "NFS canary ($mountpoint)",
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

    section(b, "RPC tasks and blocked tasks",
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

    section(b, "NFS servers: TCP and kernel log",
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

    collapsed_section(b, "Exporter",
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
    return finish(b)


# --- the fleet dashboard ------------------------------------------------------------------

FLEET = HOST  # the same matchers; here $job and $instance hold several values
JOB = 'job=~"$job"'  # recording rules aggregate the instance away


def fleet() -> dm.Dashboard:
    b = dashboard("panicwatch-fleet", "panicwatch / fleet",
                  "Every host: which are not armed for a panic, which have dumps waiting, "
                  "and which NFS mounts and servers are in trouble.",
                  [query_variable("job", "Job", JOB_QUERY, multi=True, include_all=True),
                   query_variable("instance", "Host", INSTANCE_QUERY, multi=True, all_value=".*")],
                  [link("Host", "panicwatch-host")])
    alert_regex = "|".join(ALERT_NAMES)

    section(b, "Overview",
        stat("Hosts not armed", "Hosts with no crash kernel loaded: a panic there leaves no "
             "dump (panicwatch:hosts_not_armed:count). Open the host from the readiness table "
             "below.",
             [target(f"sum({sel('panicwatch:hosts_not_armed:count', JOB)})",
                     "hosts")], (4, 5), thresholds=GREEN_RED),
        stat("Fraction armed", "Share of hosts with a crash kernel loaded, per job (recording "
             "rule panicwatch:hosts_armed:ratio).",
             [target(sel("panicwatch:hosts_armed:ratio", JOB), "{{job}}")], (4, 5),
             unit="percentunit", thresholds=steps(("red", None), ("orange", 0.9), ("green", 1))),
        stat("Hosts not panic-ready", "Hosts where a critical readiness check fails "
             "(panicwatch:hosts_not_panic_ready:count).",
             [target(f"sum({sel('panicwatch:hosts_not_panic_ready:count', JOB)})", "hosts")],
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
             "known about them (panicwatch:targets_down:count).",
             [target(f"sum({sel('panicwatch:targets_down:count', JOB)})", "targets")], (4, 5),
             thresholds=GREEN_RED),
    )

    section(b, "Panic readiness",
        table("Hosts failing readiness checks", "Every failing check on every host. Run "
              "`panicwatch check` on the host for the fix; the instance links to its dashboard.",
              f"{sel('panicwatch_readiness_check', FLEET)} == 0", (12, 8), hide=(),
              links=(HOST_LINK,)),
        bargauge("Failing hosts per check", "How many hosts fail each check: one check failing "
                 "on many hosts is a configuration problem, not a host problem "
                 "(panicwatch:hosts_failing_check:count: every host of the job, whatever "
                 "$instance says).",
                 [target(f"sum by (check) ({sel('panicwatch:hosts_failing_check:count', JOB)}) > 0",
                         "{{check}}")], (12, 8)),
        table("Last panic per host", "The newest dump's panic on each host that has one: "
              "reason, kind, crash title and kernel release. Lockups and hung tasks on NFS "
              "clients: compare with the NFS rows; `panicwatch triage` on the host names the "
              "crash in every dump.",
              sel("panicwatch_last_panic_info", FLEET), (16, 8), hide=(), links=(HOST_LINK,)),
        timeseries("Fraction armed over time", "panicwatch:hosts_armed:ratio per job: a dip "
                   "after a kernel roll-out means kdump did not come back.",
                   [target(sel("panicwatch:hosts_armed:ratio", JOB), "{{job}}")], (8, 8),
                   unit="percentunit"),
    )

    crashes = sel("panicwatch_vmcore_crash_info", FLEET + ', title!=""')
    section(b, "Crashes",
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
              order=("title", "kernel_release"), sort_desc=True, links=(TITLE_LINKS,)),
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
              sort_desc=True, links=(HOST_LINK, TITLE_LINKS)),
    )

    section(b, "NFS",
        table("Worst mounts by probe in flight", "Mounts whose canary probe has waited "
              "longest now (0: answering). Over 60 s is a stalled mount.",
              f"topk(10, {sel('panicwatch_canary_probe_inflight_seconds', FLEET)})", (8, 8),
              hide=(), value="in flight", unit="s",
              thresholds=steps(("green", None), ("orange", 5), ("red", 60)), links=(HOST_LINK,)),
        table("Worst mounts by RTT", "Mounts with the highest average round-trip time of any "
              "operation over 5 minutes (panicwatch:nfs_mount_rtt_seconds:max_avg_rate5m).",
              "topk(10, max by (job, instance, mountpoint) "
              f"({sel('panicwatch:nfs_mount_rtt_seconds:max_avg_rate5m', FLEET)}))", (8, 8), hide=(),
              value="RTT", unit="s", thresholds=steps(("green", None), ("orange", 0.1), ("red", 0.5)),
              links=(HOST_LINK,)),
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
              links=(HOST_LINK,)),
        table("Servers not responding", "Servers a client's kernel reported `not responding` "
              "with no `OK` since.", sel("panicwatch_nfs_servers_not_responding", FLEET), (12, 6),
              hide=(), links=(HOST_LINK,)),
    )

    section(b, "Alerts and exporters",
        table("Firing panicwatch alerts", "panicwatch alerts firing now (ALERTS from "
              "Prometheus); each has a runbook in docs/runbooks.md.",
              f'ALERTS{{alertstate="firing", alertname=~"{alert_regex}"}}', (24, 8),
              hide=("alertstate",), links=(HOST_LINK,)),
        table("Exporters", "Scrape health of every panicwatch target.", sel("up", FLEET), (12, 8),
              hide=(), value="up", thresholds=RED_GREEN,
              mappings=mapping((0, "DOWN", "red"), (1, "UP", "green")), links=(HOST_LINK,)),
        table("Failing collectors", "Collectors that could not read everything; the host's "
              "exporter log says why.", f"{sel('panicwatch_collector_success', FLEET)} == 0",
              (12, 8), hide=(), links=(HOST_LINK,)),
    )
    return finish(b)


DASHBOARDS: dict[str, Callable[[], dm.Dashboard]] = {
    "panicwatch-host.json": host,
    "panicwatch-fleet.json": fleet,
}


def render(board: dm.Dashboard) -> str:
    """The SDK's JSON, uid and title first so that the file says at its top which dashboard it is."""
    fields = board.to_json()
    ordered = {"uid": fields.pop("uid"), "title": fields.pop("title"), **fields}
    return json.dumps(ordered, cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"


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
