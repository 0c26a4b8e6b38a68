"""How a triage reads: a block a person takes in at a glance, or one JSON object a line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from panicwatch.exposition import printable
from panicwatch.parsers.crash_report import TAINT_MEANINGS, CrashReport

TEXT_FRAMES = 8


@dataclass(frozen=True)
class Triage:
    """One input: what was read and the crash it held."""

    source: str  # the kernel log read (or the path given, when there was none to read)
    report: CrashReport | None
    dump: str | None = None  # the dump directory
    dump_file: str | None = None
    dump_bytes: int | None = None
    captured: float | None = None  # capture time, seconds since the epoch
    incomplete: bool = False
    note: str | None = None  # why there is no report, or what --extract did
    error: str | None = None  # the input could not be read


def search_url(title: str) -> str:
    """A lore.kernel.org search for the exact title: the report and its fix, if posted."""
    return "https://lore.kernel.org/all/?q=" + quote(f'"{title}"')


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _when(t: Triage) -> str | None:
    parts = []
    if t.captured is not None:
        parts.append(datetime.fromtimestamp(t.captured, UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
    if t.report is not None and t.report.uptime_seconds is not None:
        parts.append(f"{t.report.uptime_seconds:.0f} s after boot")
    return ", ".join(parts) or None


def _taint(tainted: str | None) -> str:
    if tainted is None:
        return "taint not printed"
    if tainted in ("", "G"):
        return "not tainted"
    meanings = [f"{f}: {TAINT_MEANINGS[f]}" for f in tainted if f in TAINT_MEANINGS]
    return f"tainted {tainted}" + (f" ({', '.join(meanings)})" if meanings else "")


def as_text(t: Triage) -> str:
    rows: list[tuple[str, str]] = []
    r = t.report
    if t.error is not None:
        head = f"{t.source}: cannot read: {t.error}"
    elif r is None:
        head = f"no crash report in {t.source}"
    else:
        head = r.title
        panic = f"panicked: {r.panic_message}" if r.panicked else "did not panic"
        rows.append(("kind", f"{r.kind} ({panic})" + (", report cut short" if r.corrupted else "")))
        if (when := _when(t)) is not None:
            rows.append(("when", when))
        rows.append(("kernel", f"{r.kernel_release or 'release not printed'}, {_taint(r.tainted)}"))
        if r.function:
            rows.append(("culprit", r.function + (f" [{r.module}]" if r.module else " (built in)")))
        if r.comm:
            rows.append(("task", r.comm + (f" (pid {r.pid})" if r.pid is not None else "")))
        for i, frame in enumerate(r.stack[:TEXT_FRAMES]):
            mark = "  <- culprit" if frame == r.function else ""
            rows.append(("stack" if i == 0 else "", frame + mark))
        if len(r.stack) > TEXT_FRAMES:
            rows.append(("", f"... {len(r.stack) - TEXT_FRAMES} more"))
        rows.append(("read", t.source))
        rows.append(("search", search_url(r.title)))
        rows.append(("signature", r.signature))
    if t.dump_file is not None:
        size = f" ({_size(t.dump_bytes)})" if t.dump_bytes is not None else ""
        rows.append(("dump", t.dump_file + size + (" INCOMPLETE" if t.incomplete else "")))
    elif t.dump is not None:
        rows.append(("dump", f"{t.dump}: no dump file" + (" (incomplete)" if t.incomplete else "")))
    if t.note:
        rows.append(("note", t.note))
    lines = [printable(head)] + [f"  {k:<10} {printable(v)}".rstrip() for k, v in rows]
    return "\n".join(lines) + "\n"


def as_json(t: Triage) -> str:
    r = t.report
    record: dict[str, Any] = {
        "title": r.title if r else None,
        "kind": r.kind if r else None,
        "function": r.function if r else None,
        "module": r.module if r else None,
        "kernel_release": r.kernel_release if r else None,
        "tainted": r.tainted if r else None,
        "comm": r.comm if r else None,
        "pid": r.pid if r else None,
        "stack": list(r.stack) if r else [],
        "signature": r.signature if r else None,
        "panicked": r.panicked if r else None,
        "panic_message": r.panic_message if r else None,
        "uptime_seconds": r.uptime_seconds if r else None,
        "corrupted": r.corrupted if r else None,
        "source": printable(t.source),
        "dump": printable(t.dump) if t.dump else None,
        "dump_file": printable(t.dump_file) if t.dump_file else None,
        "dump_bytes": t.dump_bytes,
        "captured": t.captured,
        "incomplete": t.incomplete,
        "note": t.note,
        "error": t.error,
    }
    return json.dumps(record, sort_keys=False) + "\n"
