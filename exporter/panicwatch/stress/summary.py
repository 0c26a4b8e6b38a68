"""What a run found: the summary and progress data, the exit code, and their text."""

from __future__ import annotations

import errno
from collections.abc import Mapping
from dataclasses import dataclass

STUCK_SHOWN = 5  # stuck calls listed in the summary


def errno_name(code: int) -> str:
    return errno.errorcode.get(code, f"errno {code}")


@dataclass(frozen=True)
class ErrorRow:
    name: str
    count: int
    first: str  # the first path that failed this way (in one worker)


def error_rows(counts: Mapping[int, int], first: Mapping[int, str]) -> tuple[ErrorRow, ...]:
    rows = [ErrorRow(errno_name(code), n, first.get(code, "")) for code, n in counts.items() if n]
    return tuple(sorted(rows, key=lambda r: (-r.count, r.name)))


@dataclass(frozen=True)
class Latency:
    p50: int
    p90: int
    p99: int
    max: int


@dataclass(frozen=True)
class Stuck:
    what: str  # the call: the op, or the walk's lstat/stat/scandir
    path: str
    seconds: float  # since the call started


@dataclass(frozen=True)
class Summary:
    paths: tuple[str, ...]
    op: str
    about: str
    workers: int
    requested: float
    elapsed: float
    ended: str  # "deadline", "SIGINT" or "SIGTERM"
    targets: int
    walk: str  # "checking", "walking", "complete" or "capped"
    listed: int
    walk_seconds: float
    ops: int
    errors: tuple[ErrorRow, ...] = ()
    latency: Latency | None = None
    slowest: tuple[tuple[str, int], ...] = ()
    stuck: tuple[Stuck, ...] = ()  # workers still in a call at the end, oldest first
    walk_stuck: Stuck | None = None

    @property
    def error_count(self) -> int:
        return sum(row.count for row in self.errors)


def exit_code(summary: Summary) -> int:
    """1 if any call failed or any call never came back (a stuck call is an error), else 0."""
    return 1 if summary.errors or summary.stuck or summary.walk_stuck else 0


LABEL = 11
ENDED = {"deadline": "ended at the deadline", "SIGINT": "stopped by SIGINT (Ctrl-C)",
         "SIGTERM": "stopped by SIGTERM"}


def _line(label: str, text: str) -> str:
    return f"{label + ':':<{LABEL}}{text}"


def _more(text: str) -> str:
    return " " * LABEL + text


def shown(path: str) -> str:
    """A path as one line of text: undecodable bytes and control characters escaped (\\xNN, \\n)."""
    text = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def ms(ns: int) -> str:
    return f"{ns / 1e6:.3f} ms"


def _walk_text(s: Summary) -> str:
    if s.walk == "checking":
        return f"{s.targets}; the PATHs were still being checked (stat) at the end"
    if s.walk == "capped":
        return (f"{s.targets}; walk stopped at the {s.listed}-entry cap after "
                f"{s.walk_seconds:.3f} s")
    state = "complete" if s.walk == "complete" else "incomplete"
    return f"{s.targets}; walk {state}: {s.listed} entries listed in {s.walk_seconds:.3f} s"


def _error_lines(s: Summary) -> list[str]:
    lines = [_line("errors", str(s.error_count))]
    width = max((len(r.name) for r in s.errors), default=0)
    count_width = max((len(str(r.count)) for r in s.errors), default=0)
    for r in s.errors:
        lines.append(_more(f"{r.name:<{width}}  {r.count:>{count_width}}  first: {shown(r.first)}"))
    return lines


def _stuck_lines(s: Summary) -> list[str]:
    if not s.stuck and not s.walk_stuck:
        return [_line("stuck", f"0 of {s.workers} workers")]
    workers = f"{len(s.stuck)} of {s.workers} workers"
    if not s.stuck:
        head = f"the walk still in a call at the end; {workers}"
    else:
        head = workers + (" and the walk" if s.walk_stuck else "") + " still in a call at the end"
    calls = [*([s.walk_stuck] if s.walk_stuck else []), *s.stuck]
    lines = [_line("stuck", head)]
    for call in calls[:STUCK_SHOWN]:
        lines.append(_more(f"{call.seconds:.3f} s  {call.what} {shown(call.path)}"))
    if len(calls) > STUCK_SHOWN:
        lines.append(_more(f"... and {len(calls) - STUCK_SHOWN} more"))
    return lines


def _result(s: Summary) -> str:
    code = exit_code(s)
    if not code:
        return "OK, exit 0"
    problems = []
    if s.errors:
        problems.append(f"{s.error_count} error{'s' * (s.error_count != 1)}")
    if s.stuck:
        problems.append(f"{len(s.stuck)} worker{'s' * (len(s.stuck) != 1)} stuck")
    if s.walk_stuck:
        problems.append("walk stuck")
    return f"FAIL: {', '.join(problems)}; exit {code}"


def format_summary(s: Summary) -> str:
    """The summary as plain text, one `label: value` per line, continuation lines indented."""
    rate = s.ops / s.elapsed if s.elapsed > 0 else 0.0
    lines = ["panicwatch stress summary", _line("paths", shown(s.paths[0]) if s.paths else "")]
    lines += [_more(shown(p)) for p in s.paths[1:]]
    lines += [
        _line("op", f"{s.op}: {s.about}"),
        _line("workers", str(s.workers)),
        _line("duration", f"{s.elapsed:.2f} s of {s.requested:g} s, {ENDED.get(s.ended, s.ended)}"),
        _line("targets", _walk_text(s)),
        _line("ops", f"{s.ops} ({rate:.1f}/s)"),
        *_error_lines(s),
    ]
    if s.latency is None:
        lines.append(_line("latency", "none (no call completed)"))
    else:
        lat = s.latency
        lines.append(_line("latency", f"p50 {ms(lat.p50)}, p90 {ms(lat.p90)}, p99 {ms(lat.p99)}, "
                                      f"max {ms(lat.max)}"))
    if s.slowest:
        width = max(len(ms(ns)) for _, ns in s.slowest)
        texts = [f"{ms(ns):>{width}}  {shown(path)}" for path, ns in s.slowest]
        lines += [_line("slowest", texts[0]), *(_more(t) for t in texts[1:])]
    else:
        lines.append(_line("slowest", "none"))
    lines += [*_stuck_lines(s), _line("result", _result(s))]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Progress:
    elapsed: float
    ops: int
    errors: int
    p99: int | None
    hung: int  # workers in a call that started more than a second ago


def format_progress(p: Progress, rate: float) -> str:
    p99 = "-" if p.p99 is None else ms(p.p99)
    return (f"{p.elapsed:6.1f} s  ops {p.ops}  {rate:.0f}/s  errors {p.errors}  p99 {p99}  "
            f"in a call >1s {p.hung}")
