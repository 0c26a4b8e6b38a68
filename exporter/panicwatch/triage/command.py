"""``panicwatch triage [PATH...]``: name the crash in each dump or kernel log file.

Exit 0 when every input held a crash, 1 when some held none, 2 when an input could not be
read (argparse gives 2 for usage errors).
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path

from panicwatch.parsers.crash_report import parse_crash_report
from panicwatch.reader import HostReader, describe_error
from panicwatch.settings import Settings
from panicwatch.snapshots.vmcores import Dump, dump_at, read_inventory
from panicwatch.triage.dumps import read_log
from panicwatch.triage.extract import extract_log
from panicwatch.triage.render import Triage, as_json, as_text


def triage_log(path: Path, about: Triage | None = None) -> Triage:
    """The crash in one kernel log; ``about`` carries what is known of its dump."""
    base = about or Triage(str(path), None)
    try:
        report = parse_crash_report(read_log(path))
    except OSError as e:
        return replace(base, source=str(path), error=describe_error(e))
    return replace(base, source=str(path), report=report)


def triage_dump(dump: Dump, local: Path, extract: bool) -> Triage:
    """``local`` is the dump directory as this process reaches it (under the rootfs)."""
    core = local / Path(dump.core).name if dump.core else None
    about = Triage(str(local), None, dump=str(local), dump_file=str(core) if core else None,
                   dump_bytes=dump.bytes if core else None, captured=dump.timestamp,
                   incomplete=dump.incomplete)
    if dump.dmesg is not None:
        return triage_log(local / Path(dump.dmesg).name, about)
    missing = ("no saved kernel log: the capture did not finish" if dump.incomplete else
               "no saved kernel log (vmcore-dmesg or makedumpfile --dump-dmesg failed)")
    if not extract:
        hint = "; run with --extract to read it from the dump" if core else ""
        return replace(about, note=missing + hint)
    if core is None:
        return replace(about, note=missing + "; no dump file to extract it from")
    log, what = extract_log(core)
    if log is None:
        return replace(about, note=f"{missing}; extraction failed: {what}")
    return replace(triage_log(log, about), note=what)


def _local_zone() -> tzinfo:
    return datetime.now().astimezone().tzinfo or UTC


def triage_path(path: Path, extract: bool) -> Triage:
    try:
        st = os.stat(path)
    except OSError as e:
        return Triage(str(path), None, error=describe_error(e))
    if stat.S_ISDIR(st.st_mode):
        try:
            dump = dump_at(path, _local_zone())
        except OSError as e:
            return Triage(str(path), None, error=describe_error(e))
        return triage_dump(dump, path, extract)
    return triage_log(path)


def host_dumps(settings: Settings) -> tuple[list[tuple[Dump, Path]], str | None]:
    """This host's waiting dumps, newest first, and a problem if the directory was not read."""
    from panicwatch.collectors.registry import host_of

    reader = HostReader(host_of(settings))
    inventory = read_inventory(reader)
    if inventory.crash_dir is None:
        return [], inventory.unchecked_reason or "no local crash directory"
    dumps = sorted(inventory.dumps, key=lambda d: d.timestamp, reverse=True)
    located = [(d, reader.host.root(f"{inventory.crash_dir.rstrip('/')}/{d.name}")) for d in dumps]
    problem = "; ".join(reader.problems) or None
    return located, problem


def _inputs(settings: Settings, paths: list[str]) -> Iterator[Triage]:
    if paths:
        for path in paths:
            yield triage_path(Path(path), settings.triage_extract)
        return
    located, problem = host_dumps(settings)
    if problem and not located:
        yield Triage(str(settings.path_rootfs), None, error=problem)
        return
    for dump, local in located:
        yield triage_dump(dump, local, settings.triage_extract)


def run_triage(settings: Settings, paths: list[str]) -> int:
    results = []
    for result in _inputs(settings, paths):
        results.append(result)
        render = as_json if settings.format == "json" else as_text
        if settings.format == "text" and len(results) > 1:
            sys.stdout.write("\n")
        sys.stdout.write(render(result))
        sys.stdout.flush()
    if not results and settings.format == "text":
        sys.stdout.write("no crash dumps waiting\n")
    if any(r.error is not None for r in results):
        return 2
    return 1 if any(r.report is None for r in results) else 0
