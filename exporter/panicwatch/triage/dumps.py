"""The crash in each dump: its saved kernel log, parsed once per (path, size, mtime)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from panicwatch.host import read_tail
from panicwatch.parsers.crash_report import CrashReport, parse_crash_report
from panicwatch.reader import HostReader, describe_error
from panicwatch.snapshots.vmcores import Dump

# The kernel's log buffer is at most 32 MiB (log_buf_len); kdump saves all of it.
LOG_LIMIT = 32 * 1024 * 1024
# At scrape time only the end is read: the report that panicked is the last thing logged.
SCRAPE_LOG_LIMIT = 1024 * 1024
# Parsing a new dump's log takes ~10 ms a MiB; a scrape spends at most this on new ones.
PARSE_BUDGET_SECONDS = 1.0


@dataclass(frozen=True)
class LogIdentity:
    path: str
    size: int
    mtime_ns: int


def read_log(path: Path, limit: int = LOG_LIMIT) -> str:
    """A kernel log's text (its end when it is larger than limit); regular files only."""
    return read_tail(path, limit)


class CrashCache:
    """Each dump's crash, parsed when its log first appears or changes, kept while listed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parsed: dict[str, tuple[LogIdentity, CrashReport | None]] = {}

    def crashes(self, reader: HostReader, dumps: tuple[Dump, ...]) -> dict[str, CrashReport | None]:
        """The crash of each dump by name (None: no log, or a log without a report).

        Newest first; a dump whose log is not parsed yet when PARSE_BUDGET_SECONDS of this
        scrape are spent is left out, and parsed by a later scrape: a thousand new dumps
        never make one scrape time out.
        """
        found: dict[str, CrashReport | None] = {}
        seen: set[str] = set()
        # Host paths joined as strings: a Path per dump per scrape is most of a scrape's cost.
        root = str(reader.host.root("/")).rstrip("/")
        deadline = time.monotonic() + PARSE_BUDGET_SECONDS
        parsed = 0
        for dump in sorted(dumps, key=lambda d: d.timestamp, reverse=True):
            if dump.dmesg is None:
                found[dump.name] = None
                continue
            path = root + dump.dmesg
            seen.add(path)
            try:
                st = os.stat(path, follow_symlinks=False)
                identity = LogIdentity(path, st.st_size, st.st_mtime_ns)
                cached = self._parsed.get(path)
                if cached is not None and cached[0] == identity:
                    found[dump.name] = cached[1]
                    continue
                if parsed and time.monotonic() > deadline:
                    continue  # the newest is always parsed: last_panic_info needs it
                parsed += 1
                report = parse_crash_report(read_log(Path(path), SCRAPE_LOG_LIMIT))
            except OSError as e:  # unreadable: the dump is still listed, its crash unknown
                reader.problem(describe_error(e))
                found[dump.name] = None
                continue
            except Exception as e:  # a log the parser cannot take: this dump alone loses its name
                reader.problem(f"{path}: crash report not parsed: {type(e).__name__}: {e}")
                report = None
            with self._lock:
                self._parsed[path] = (identity, report)
            found[dump.name] = report
        with self._lock:
            for gone in set(self._parsed) - seen:
                del self._parsed[gone]
        return found
