"""Render a readiness Report for people (text, HTML) and machines (JSON). A dump's name need
not be UTF-8: its bytes show as \\xNN everywhere, as in the labels."""

from __future__ import annotations

import html
import json
import time
from typing import Any

from panicwatch.exposition import printable
from panicwatch.readiness.checks import Report
from panicwatch.readiness.nfs import STALLED, MountHealth, NfsReport

MARK = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}


def verdict(report: Report) -> str:
    failed = [c for c in report.checks if c.passed is False]
    critical = [c for c in failed if c.severity == "critical"]
    if critical:
        return f"NOT READY: {len(critical)} critical check(s) failed; a panic now may leave no dump"
    if failed:
        return f"READY, with {len(failed)} warning(s)"
    return "READY: a panic now leaves a dump"


def as_text(report: Report, rootfs: str, nfs: NfsReport | None = None) -> str:
    k = report.kdump
    distro = k.os_release.get("PRETTY_NAME", "unknown distribution")
    lines = [f"panic readiness of {rootfs} ({distro}, kernel {k.kernel_release or '?'}, {k.arch})",
             ""]
    width = max(len(c.name) for c in report.checks)
    for c in report.checks:
        severity = "" if c.passed is not False else f" [{c.severity}]"
        lines.append(f"  {MARK[c.status]}  {c.name:<{width}}  {c.detail}{severity}")
        if c.passed is False and c.fix:
            lines.append(f"        {'':<{width}}  fix: {c.fix}")
    if report.problems:
        lines += ["", "could not read:"] + [f"  - {p}" for p in report.problems]
    if nfs is not None:
        lines += ["", *nfs_text(nfs)]
    lines += ["", verdict(report)]
    if nfs is not None:
        lines.append(nfs_verdict(nfs))
    return printable("\n".join(lines) + "\n")


def nfs_verdict(nfs: NfsReport) -> str:
    if not nfs.mounts:
        return "NFS: no NFS mounts"
    if nfs.stalled:
        return (f"NFS STALLED: {len(nfs.stalled)} of {len(nfs.mounts)} mount(s): "
                + ", ".join(m.path for m in nfs.stalled))
    warned = [m for m in nfs.mounts if m.findings]
    if warned:
        return f"NFS answering, with warnings on {len(warned)} of {len(nfs.mounts)} mount(s)"
    return f"NFS: all {len(nfs.mounts)} mount(s) answering"


def _counts(m: MountHealth, window: float) -> list[str]:
    parts = []
    if m.rpc_in_flight is not None:
        parts.append(f"rpc tasks {m.rpc_in_flight} in flight, {m.rpc_stuck} across the window")
    if m.change is not None:
        parts.append(f"in {window:.1f} s: ops +{m.change.operations}, retransmissions "
                     f"+{m.change.retransmissions}, major timeouts +{m.change.major_timeouts}")
    return parts


def nfs_text(nfs: NfsReport) -> list[str]:
    if not nfs.mounts:
        return ["NFS mounts: none"]
    lines = [f"NFS mounts (statvfs with a {nfs.timeout:g} s deadline; counters read "
             f"{nfs.window:.1f} s apart)"]
    for m in nfs.mounts:
        what = "  ".join(x for x in (m.device, m.fstype, f"vers={m.version}" if m.version else "") if x)
        probe = m.probe
        answer = ("no answer" if probe is None or probe.timed_out
                  else f"statvfs {probe.error} in {probe.seconds * 1000:.1f} ms" if probe.error
                  else f"statvfs {probe.seconds * 1000:.1f} ms")
        lines.append(f"  {m.status.upper():<8} {m.path}  {what}  {answer}")
        details = _counts(m, nfs.window)
        if m.not_responding_since is not None:
            since = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(m.not_responding_since))
            details.append(f"kernel: server {m.server} not responding since {since}")
        if m.tcp_states is not None and m.address is not None:
            states = ", ".join(f"{n} {s}" for s, n in sorted(m.tcp_states.items())) or "none"
            details.append(f"tcp to {m.address[0]}:{m.address[1]}: {states}")
        lines += [f"           {d}" for d in details]
        marker = "!" if m.status == STALLED else "-"
        lines += [f"         {marker} {f}" for f in m.findings]
    notes = [e for e in (nfs.rpc_error, nfs.kernel_log_error, nfs.tcp_error) if e] + nfs.problems
    lines += [f"  could not read: {n}" for n in notes]
    return lines


def nfs_json(nfs: NfsReport) -> dict[str, Any]:
    def mount(m: MountHealth) -> dict[str, Any]:
        probe = m.probe
        return {
            "path": printable(m.path), "fstype": m.fstype, "device": printable(m.device),
            "server": printable(m.server), "version": m.version,
            "address": None if m.address is None else {"host": m.address[0], "port": m.address[1]},
            "status": m.status, "findings": [printable(f) for f in m.findings],
            "probe": {"timed_out": probe is None or probe.timed_out,
                      "seconds": None if probe is None else probe.seconds,
                      "error": None if probe is None else probe.error},
            "rpc_tasks_in_flight": m.rpc_in_flight, "rpc_tasks_stuck": m.rpc_stuck,
            "window": None if m.change is None else {
                "operations": m.change.operations, "retransmissions": m.change.retransmissions,
                "major_timeouts": m.change.major_timeouts},
            "not_responding_since": m.not_responding_since,
            "tcp_states": m.tcp_states,
        }

    return {
        "stalled": bool(nfs.stalled), "verdict": nfs_verdict(nfs),
        "timeout_seconds": nfs.timeout, "window_seconds": round(nfs.window, 3),
        "mounts": [mount(m) for m in nfs.mounts],
        "rpc_error": nfs.rpc_error, "kernel_log_error": nfs.kernel_log_error,
        "tcp_error": nfs.tcp_error, "problems": [printable(p) for p in nfs.problems],
    }


def as_json(report: Report, nfs: NfsReport | None = None) -> str:
    return json.dumps({
        "ready": report.ready,
        "verdict": verdict(report),
        "checks": [
            {"name": c.name, "severity": c.severity, "status": c.status,
             "detail": printable(c.detail), "fix": printable(c.fix) if c.passed is False else ""}
            for c in report.checks
        ],
        "problems": [printable(p) for p in report.problems],
        **({"nfs": nfs_json(nfs)} if nfs is not None else {}),
    }, indent=2) + "\n"


def as_html_rows(report: Report) -> str:
    rows = []
    for c in report.checks:
        fix = f"<br><small>fix: <code>{html.escape(c.fix)}</code></small>" if c.passed is False else ""
        rows.append(f'<tr class="{c.status}"><td>{MARK[c.status]}</td><td>{html.escape(c.name)}'
                    f"</td><td>{html.escape(c.severity)}</td><td>{html.escape(c.detail)}{fix}</td></tr>")
    return printable("\n".join(rows))
