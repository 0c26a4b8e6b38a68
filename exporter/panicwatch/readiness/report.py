"""Render a readiness Report for people (text, HTML) and machines (JSON). A dump's name need
not be UTF-8: its bytes show as \\xNN everywhere, as in the labels."""

from __future__ import annotations

import html
import json

from panicwatch.exposition import printable
from panicwatch.readiness.checks import Report

MARK = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}


def verdict(report: Report) -> str:
    failed = [c for c in report.checks if c.passed is False]
    critical = [c for c in failed if c.severity == "critical"]
    if critical:
        return f"NOT READY: {len(critical)} critical check(s) failed; a panic now may leave no dump"
    if failed:
        return f"READY, with {len(failed)} warning(s)"
    return "READY: a panic now leaves a dump"


def as_text(report: Report, rootfs: str) -> str:
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
    lines += ["", verdict(report)]
    return printable("\n".join(lines) + "\n")


def as_json(report: Report) -> str:
    return json.dumps({
        "ready": report.ready,
        "verdict": verdict(report),
        "checks": [
            {"name": c.name, "severity": c.severity, "status": c.status,
             "detail": printable(c.detail), "fix": printable(c.fix) if c.passed is False else ""}
            for c in report.checks
        ],
        "problems": [printable(p) for p in report.problems],
    }, indent=2) + "\n"


def as_html_rows(report: Report) -> str:
    rows = []
    for c in report.checks:
        fix = f"<br><small>fix: <code>{html.escape(c.fix)}</code></small>" if c.passed is False else ""
        rows.append(f'<tr class="{c.status}"><td>{MARK[c.status]}</td><td>{html.escape(c.name)}'
                    f"</td><td>{html.escape(c.severity)}</td><td>{html.escape(c.detail)}{fix}</td></tr>")
    return printable("\n".join(rows))
