"""Name the crash in a kernel log: the report that led to the panic, as syzbot titles it.

Input is any kernel log: the dmesg kdump saved beside a dump, or a console log, with or
without timestamps, caller ids and syslog prefixes. Output is a `CrashReport`: a title in
syzbot's format (``BUG: soft lockup in nfs_access_get_cached``), the kind, the culprit
function and its module, the kernel release, taint, comm, pid, the top of the stack and a
signature for grouping. Pure: no I/O, never raises on what it reads, bounded output.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from panicwatch.parsers import crash_formats as F

PANIC_MARKER = "Kernel panic - not syncing"
END_TRACE = "---[ end trace"
MAX_REPORT_LINES = 3000  # a report (and its stacks) is read this far past its first line
MAX_STACK = 32
HEAD_LINES = 300
SAME_LINE = 20  # a header line alike this far after an "[inline]" one: the same line expanded
# An "end trace" this close to the panic line is the report's own end, not survival.
SURVIVAL_LINES = 30
# A stall report followed by another this much later was lived through (see _pick_start).
STALL_GAP_SECONDS = 1.0
MAX_FIELD = 120

_HEADER_SCAN = re.compile("|".join(re.escape(h.marker) for h in F.HEADERS))
# Console output: an optional syslog level, a timestamp, an optional caller id.
_CONSOLE = re.compile(r"^(?:\*\* [0-9]+ printk messages dropped \*\* )?(?:.* login: )?"
                      r"(?:<[0-9]+>)?\[ *[0-9]+\.[0-9]+\](\[ *(?:C|T)[0-9]+\])? ")
_SYSLOG_LEVEL = re.compile(r"^<[0-9]{1,3}>(?!\[)")
# A journal or syslog line: "May  1 03:12:45 host kernel: ..." / "2024-05-01T03:12:45+00:00 host kernel: ..."
_SYSLOG_PREFIX = re.compile(r"^(?:[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) \S+ kernel: ")
_QUESTIONABLE = re.compile(r"(\[<[0-9a-f]+>\])? \? ")
_FRAME_WITH_MODULE = re.compile(
    r"(?:^|[\s:\]])([a-zA-Z0-9_][a-zA-Z0-9_.]*)\+0x[0-9a-f]+/0x[0-9a-f]+(?: \[([a-zA-Z0-9_]+)[ \]])?")
_TIMESTAMP = re.compile(r"^(?:<[0-9]+>)?\[ *([0-9]+\.[0-9]+)\]")
_TASK_INFO = re.compile(
    r"CPU: \d+ (?:UID: \d+ )?PID: (\d+) Comm: (.{1,20}?) (?:Kdump: loaded )?"
    r"(Not tainted|Tainted: ([A-Z ]+?)) +(\S+) #")
_TAINT_LINE = re.compile(r"^\s+(Not tainted|Tainted: ([A-Z ]+?)) +(\S+) #")
_HUNG_TASK = re.compile(r"INFO: task (.{1,20}?):(\d+) blocked for more than")
_SOFT_LOCKUP = re.compile(r"soft lockup - CPU#\d+ stuck for \d+s! \[(.{1,20}?):(\d+)\]")
_LINUX_VERSION = re.compile(r"Linux version (\S+) ")
_OOPS = re.compile(r"\bOops\b")
_SYSRQ_CRASH = re.compile(r"(?:sysrq: |SysRq ?: )(?:SysRq : )?Trigger a crash", re.I)

_SKIP_GENERIC = re.compile("|".join(F.GENERIC_FRAMES))

# Title prefix -> kind, first match wins.
_KINDS = (
    ("BUG: soft lockup", "soft_lockup"), ("INFO: task hung", "hung_task"),
    ("INFO: task can't die", "hung_task"), ("INFO: rcu detected stall", "rcu_stall"),
    ("BUG: unable to handle kernel NULL pointer", "null_pointer"),
    ("BUG: unable to handle kernel paging request", "page_fault"),
    ("BUG: unable to handle kernel access to user memory", "page_fault"),
    ("general protection fault", "general_protection"), ("kernel BUG", "kernel_bug"),
    ("BUG: corrupted list", "kernel_bug"), ("BUG: bad usercopy", "kernel_bug"),
    ("possible deadlock", "deadlock"), ("inconsistent lock state", "deadlock"),
    ("BUG: spinlock", "deadlock"), ("BUG: rwlock", "deadlock"),
    ("BUG: scheduling while atomic", "scheduling_while_atomic"),
    ("BUG: sleeping function called from invalid context", "scheduling_while_atomic"),
    ("BUG: Bad page", "bad_page"), ("WARNING", "warning"),
    ("KASAN:", "memory_safety"), ("KMSAN:", "memory_safety"), ("KFENCE:", "memory_safety"),
    ("KCSAN:", "memory_safety"), ("UBSAN:", "memory_safety"), ("memory leak", "memory_leak"),
    ("BUG: stack guard page", "stack_overflow"), ("kernel stack overflow", "stack_overflow"),
    ("stack segment fault", "stack_overflow"), ("PANIC: double fault", "stack_overflow"),
    ("kernel panic: stack is corrupted", "stack_overflow"),
    ("kernel panic: corrupted stack end", "stack_overflow"),
    ("divide error", "divide_error"), ("invalid opcode", "invalid_opcode"),
    ("Internal error", "oops"), ("Unhandled fault", "oops"), ("Alignment trap", "oops"),
)
# A panic line that is the report itself names its cause in its message.
_PANIC_KINDS = (
    ("sysrq", re.compile(r"sysrq triggered crash", re.I)),
    ("soft_lockup", re.compile(r"softlockup", re.I)),
    ("hard_lockup", re.compile(r"hard ?lockup", re.I)),
    ("hung_task", re.compile(r"hung_task|blocked tasks", re.I)),
    ("rcu_stall", re.compile(r"RCU Stall", re.I)),
    ("oom", re.compile(r"out of memory|deadlocked on memory", re.I)),
    ("warning", re.compile(r"panic_on_warn")),
    ("machine_check", re.compile(r"machine check", re.I)),
    ("init_killed", re.compile(r"Attempted to kill init")),
    ("no_root_fs", re.compile(r"VFS: Unable to mount root fs")),
)
KINDS = tuple(dict.fromkeys(
    [kind for _, kind in _KINDS] + [kind for kind, _ in _PANIC_KINDS] + ["oops", "other"]))
TAINT_MEANINGS = {
    "P": "proprietary module", "F": "module force-loaded", "S": "unsafe SMP / out of spec",
    "R": "module force-unloaded", "M": "machine check", "B": "bad page", "U": "user request",
    "D": "kernel died (an earlier oops)", "A": "ACPI table overridden", "W": "warning issued",
    "C": "staging driver", "I": "firmware bug workaround", "O": "out-of-tree module",
    "E": "unsigned module", "L": "soft lockup occurred", "K": "live patched",
    "X": "auxiliary", "T": "structurally randomized", "N": "in-kernel test",
}


@dataclass(frozen=True)
class CrashReport:
    title: str
    kind: str
    function: str | None  # the culprit frame, as in the title
    module: str | None  # the culprit's module, when it is not built in
    kernel_release: str | None
    tainted: str | None  # taint letters ("GWO"), "" when not tainted, None when not printed
    comm: str | None
    pid: int | None
    stack: tuple[str, ...]  # the culprit's stack, top first, "?" frames left out
    panicked: bool  # a "Kernel panic - not syncing" followed the report
    panic_message: str | None  # what the panic line said ("Fatal exception", ...)
    uptime_seconds: float | None  # the report's timestamp, when the log has them
    corrupted: bool  # the report was cut or mangled: the title may name less than it could

    @property
    def signature(self) -> str:
        return signature_of(self.title)

    @property
    def reason(self) -> str:
        """The panic message as a bounded label: numbers, addresses and PIDs stripped."""
        return normalize_reason(self.panic_message) if self.panic_message else "unknown"


_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]+\b|\b[0-9a-fA-F]{8,16}\b|\+0x[0-9a-f]+/0x[0-9a-f]+")
_PID_COMM = re.compile(r"\[[^\]\s]*?:\d+\]")
MAX_REASON = 100


def normalize_reason(message: str) -> str:
    text = _ADDRESS.sub("", message)
    text = _PID_COMM.sub("", text)
    text = re.sub(r"\d+", "", text)
    text = re.sub(r"\s+", " ", text).strip(" .:,=#-")
    return text[:MAX_REASON] or "unknown"


def signature_of(title: str) -> str:
    """A short stable name for a title, to group crashes across hosts."""
    return hashlib.sha256(title.encode()).hexdigest()[:12]


@dataclass
class _Line:
    raw: str
    text: str  # without console prefix
    context: str  # "" no timestamp, "console" timestamp only, else the caller id
    questionable: bool


def _clean(line: str) -> str:
    line = line.rstrip("\r")
    line = _SYSLOG_LEVEL.sub("", line, count=1)
    return _SYSLOG_PREFIX.sub("", line, count=1)


def _split(line: str) -> _Line:
    match = _CONSOLE.match(line)
    if match is None:
        return _Line(line, line, "", False)
    context = match.group(1) or "console"
    text = line[line.index("] ") + 2:]
    if "<EOI>" not in text:
        if _QUESTIONABLE.search(text):
            return _Line(line, text[text.find(" ? ") + 2:], context, True)
        if text.endswith(" (unreliable)"):  # powerpc
            return _Line(line, text[:-13], context, True)
    return _Line(line, text, context, False)


def _header_of(line: str) -> F.Header | None:
    for header in F.HEADERS:
        if header.marker in line and not any(p.search(line) for p in header.not_reports):
            return header
    return None


def _report_starts(text: str, since: int, limit: int) -> list[tuple[int, int, F.Header]]:
    """(line start offset, line end offset, header) of every report header in the range."""
    found = []
    last_line = -1
    for match in _HEADER_SCAN.finditer(text, since, limit):
        start = text.rfind("\n", 0, match.start()) + 1
        if start == last_line:
            continue
        end = text.find("\n", match.end())
        end = len(text) if end == -1 else end
        header = _header_of(_clean(text[start:end]))
        if header is not None:
            found.append((start, end, header))
            last_line = start
    return found


def _pick_start(text: str, starts: list[tuple[int, int, F.Header]],
                panic_at: int) -> tuple[int, int, F.Header] | None:
    """The report that led to the panic: the first one not survived before the panic.

    A report whose "end trace" marker is followed by the next report with no panic in
    between was survived (a WARNING without panic_on_warn, an oops without panic_on_oops),
    and so was a stall report (F.UNTERMINATED, which has no such marker) with the next report,
    before the panic, printed STALL_GAP_SECONDS or more after it: a soft lockup reported with
    softlockup_panic=0, then one that panicked. Reports printed together (the hung tasks of
    one scan) stay one crash, named by the first.
    Lines like the panic itself or arm64's "Internal error:" continue a report; they start
    one only when nothing came before. Without a panic line the same rule runs to the end of
    the log, so a dump's log names the report it ends in: with kdump loaded and
    panic_on_oops=1, oops_end() enters the capture kernel before panic() prints anything
    (seen on Debian's 6.1, tests/e2e). Where syzbot takes a console log's first report, this
    takes the first one not survived.
    """
    if not starts:
        return None
    if panic_at < 0:
        candidates = [s for i, s in enumerate(starts) if i == 0 or not _continues(text, s)]
    else:
        panic_line = max((s for s in starts if s[0] <= panic_at), default=starts[-1])
        candidates = [s for i, s in enumerate(starts) if s[0] < panic_line[0]
                      and (i == 0 or not _continues(text, s))] + [panic_line]
    for i, start in enumerate(candidates[:-1]):
        following = candidates[i + 1]
        end_trace = text.find(END_TRACE, start[1], following[0])
        if end_trace == -1:
            if (panic_at >= 0 and i + 1 < len(candidates) - 1
                    and F.UNTERMINATED.search(text[start[0]:start[1]])
                    and _seconds_between(text, start[0], following[0]) >= STALL_GAP_SECONDS):
                continue  # a stall report the kernel lived past, another report came later
            return start
        after = text[end_trace:following[1]]
        if PANIC_MARKER in after and after.count("\n") <= SURVIVAL_LINES:
            return start
    return candidates[-1]


def _seconds_between(text: str, first: int, second: int) -> float:
    """Printk time from the line at ``first`` to the line at ``second``; 0 when either has none."""
    def stamp(at: int) -> float | None:
        end = text.find("\n", at)
        m = _TIMESTAMP.match(_clean(text[at:end if end >= 0 else len(text)]))
        return float(m.group(1)) if m else None

    a, b = stamp(first), stamp(second)
    return 0.0 if a is None or b is None else b - a


def _continues(text: str, start: tuple[int, int, F.Header]) -> bool:
    line = text[start[0]:start[1]]
    return any(p.search(line) for p in F.CONTINUATIONS)


def parse_crash_report(log: str) -> CrashReport | None:
    """The crash in this kernel log, or None when it holds no crash report."""
    try:
        return _parse(log)
    except RecursionError:
        return None


def _last_panic(log: str) -> tuple[int, int]:
    """Start of the last panic line (not panic()'s closing "---[ end Kernel panic" line),
    and where the previous panic's line ends (0 if none): a log spanning boots keeps
    earlier crashes, and the dump belongs to the last one."""
    at = len(log)
    found = -1
    while True:
        at = log.rfind(PANIC_MARKER, 0, at)
        if at < 0:
            return found, 0
        line_start = log.rfind("\n", 0, at) + 1
        if "---[ end " not in log[line_start:at]:
            if found >= 0:
                end = log.find("\n", at)
                return found, len(log) if end < 0 else end
            found = at
        at = line_start


def _parse(log: str) -> CrashReport | None:
    panic_at, since = _last_panic(log)
    panic_line_end = log.find("\n", panic_at) if panic_at >= 0 else -1
    starts = _report_starts(log, since, len(log) if panic_line_end < 0 else panic_line_end)
    chosen = _pick_start(log, starts, panic_at)
    if chosen is None:
        return None
    start, _, header = chosen
    window = log[start:].split("\n", MAX_REPORT_LINES)[:MAX_REPORT_LINES]
    lines = [_split(_clean(line)) for line in window]
    report, full = _report_text(lines)
    title, fmt, frames = _describe(report, header)
    if not title:
        title, fmt, frames = _describe(full, header)
    if not title:
        title = _clean(window[0])
        title = title[title.find(header.marker):]
    title = _sanitize(_replace_variables(title))
    culprit = frames[-1] if frames else None
    if culprit is not None and culprit.canonical == "corrupted":
        culprit = None
    report_lines = report.split("\n")
    module = _module_of(report_lines, culprit.raw) if culprit else None
    stack = _stack_of(report_lines, culprit.raw if culprit else None)
    release, tainted, comm, pid = _who(report_lines, log, start)
    panicked = panic_at >= 0 and panic_at >= start
    message = _panic_message(log, panic_at) if panicked else None
    stamp = _TIMESTAMP.match(_clean(window[0]))
    return CrashReport(
        title=title,
        kind=_kind(title, log[max(since, start - 20000):panic_at if panic_at > start
                                  else start + 20000]),
        function=_bounded(culprit.canonical) if culprit else None,
        module=_bounded(module),
        kernel_release=_bounded(release),
        tainted=tainted,
        comm=_bounded(comm),
        pid=pid,
        stack=stack,
        panicked=panicked,
        panic_message=message,
        uptime_seconds=float(stamp.group(1)) if stamp else None,
        corrupted=(fmt is None or fmt.corrupted or (fmt.culprit is not None and culprit is None)
                   or any(f.guessed for f in frames)),
    )


def _report_text(lines: list[_Line]) -> tuple[str, str]:
    """The report's own lines (same caller, no unreliable frames), cut at the next report;
    and the same without the cut, for when the cut leaves nothing to name."""
    context = lines[0].context
    by_caller = context not in ("", "console")
    kept: list[str] = []
    cut_at: int | None = None
    skip_rest = all_cpus = False
    seen = 0
    for i, line in enumerate(lines):
        # A symbolized report repeats a line once per inlined function ("BUG: KASAN: ... in
        # f x.h:3 [inline]", then "BUG: KASAN: ... in g+0x1/0x2 x.c:9"): not another report.
        expanded = (i > 0 and lines[i - 1].text.endswith(" [inline]")
                    and line.text[:SAME_LINE] == lines[i - 1].text[:SAME_LINE])
        if i > 0 and cut_at is None and not expanded and _starts_another(line.raw):
            cut_at = len(kept)
        if i > 0 and (line.questionable or (line.context != context and not (
                all_cpus and line.context.lstrip("[ ").startswith("C")))):
            continue
        seen += 1
        skip = skip_rest
        if "Disabling lock debugging due to kernel taint" in line.text:
            skip = True
        elif "Sending NMI from CPU" in line.text:
            all_cpus = True  # a backtrace of every CPU belongs to the report
        elif (PANIC_MARKER in line.text or "WARNING: possible circular locking dependency detected"
              in line.text) and seen > 22:
            # The report is long enough: what follows is the panic it caused (or a lockdep
            # splat the report's own locking provoked), not the report.
            skip_rest = skip = True
        if i > 0 and skip:
            continue
        kept.append(line.text)
    end = len(kept) if cut_at is None or by_caller else cut_at
    return "\n".join(kept[:end]) + "\n", "\n".join(kept) + "\n"


def _starts_another(line: str) -> bool:
    if any(notice in line for notice in F.STACK_PRINTING_NOTICES):
        return True
    return _header_of(line) is not None and not any(p.search(line) for p in F.CONTINUATIONS)


@dataclass(frozen=True)
class _Frame:
    canonical: str
    raw: str
    guessed: bool = False  # the stack was cut before the frame that would name it


def _describe(report: str, header: F.Header) -> tuple[str, F.Format | None, list[_Frame]]:
    """Title from the earliest format that matches the report (first listed wins a tie)."""
    title, chosen, chosen_frames = "", None, []
    # Formats' multi-line patterns backtrack: they see the report's head, where their lines
    # are (the stack steps still walk the whole report).
    head = "\n".join(report.split("\n", HEAD_LINES)[:HEAD_LINES])
    best = len(head)
    for fmt in header.formats:
        match = fmt.title.search(head)
        if match is None or match.start() > best:
            continue
        if match.start() == best and title:
            continue
        if match.start() < best:
            title, chosen, chosen_frames, best = "", None, [], match.start()
        if fmt.report is not None:
            match = fmt.report.search(head)
            if match is None:
                continue
        args: list[str] = [g or "" for g in match.groups()]
        frames: list[_Frame] = []
        if fmt.culprit is not None:
            frames = _culprit(fmt.culprit, report[match.start():])
        try:
            title = fmt.text.format(*args, *(f.canonical for f in frames))
        except IndexError:
            title = fmt.text.split(" in {", 1)[0]
        chosen, chosen_frames = fmt, frames
    return title, chosen, chosen_frames


def _strip_syscall(frame: str) -> str:
    shortest = frame
    for prefix in F.SYSCALL_PREFIXES:
        if frame.startswith(prefix) and len(frame) - len(prefix) < len(shortest):
            shortest = frame[len(prefix):]
    return shortest


def _pick_stall(frames: list[str]) -> int:
    prev = 0
    for i, frame in enumerate(frames):
        if any(p.search(frame) for p in F.STALL_ANCHORS):
            return i if "smp_call_function" in frame else prev
        prev = i
    return -1


def _pick_hung(frames: list[str]) -> tuple[int, str | None]:
    for i, frame in enumerate(frames):
        for anchor, replacement in F.HUNG_TASK_ANCHORS:
            if anchor in frame:
                return i, replacement or None
    for i, frame in enumerate(frames):
        if not any(w in frame for w in F.HUNG_TASK_WAITING):
            return i, None
    return -1, None


def _culprit(culprit: F.Culprit, report: str) -> list[_Frame]:
    skip = _SKIP_GENERIC if not culprit.skip else re.compile(
        "|".join((*F.GENERIC_FRAMES, *culprit.skip)))
    frames = _run_steps(culprit, culprit.steps, report, skip)
    if frames is None and culprit.fallback:
        frames = _run_steps(culprit, culprit.fallback, report, skip)
    return frames or [_Frame("corrupted", "corrupted")]


def _key_frame(culprit: F.Culprit, raw: list[str]) -> _Frame | None:
    if not raw:
        return None
    stripped = [_strip_syscall(f) for f in raw]
    if culprit.pick == "stall":
        i = _pick_stall(stripped)
        if i < 0:
            # A stack cut before its dispatch point: the looping function is the best name
            # left (syzbot would say "corrupted").
            return _Frame(stripped[0], raw[0], guessed=True)
        return _Frame("smp_call_function" if "smp_call_function" in stripped[i] else stripped[i],
                      raw[i])
    if culprit.pick == "hung_task":
        i, replacement = _pick_hung(stripped)
        return None if i < 0 else _Frame(replacement or stripped[i], raw[i])
    return _Frame(stripped[0], raw[0])


def _run_steps(culprit: F.Culprit, steps: tuple[re.Pattern[str], ...], report: str,
               skip: re.Pattern[str]) -> list[_Frame] | None:
    """Walk the report step by step (syzkaller's stack parts); None when a stack is empty."""
    lines = report.split("\n")
    pos = 0
    raw: list[str] = []
    results: list[_Frame] = []
    ok = True
    traces = 0
    i = 0
    while True:
        if i == len(steps) or (steps[i] is F.STACK and traces > 0):
            frame = _key_frame(culprit, raw)
            if frame is None:
                frame, ok = _Frame("corrupted", "corrupted"), False
            results.append(frame)
            raw = []
        if i == len(steps):
            break
        step = steps[i]
        if step is F.STACK:
            traces += 1
            while pos < len(lines):
                line = lines[pos]
                pos += 1
                if any(p.search(line) for p in F.CORRUPTED_LINES):
                    ok = False
                    break
                if any(p.search(line) for p in F.STACK_STARTS):
                    break
                if i + 1 < len(steps):
                    match = steps[i + 1].search(line)
                    if match is not None:
                        _append(raw, match, skip)
                        i += 1
                        break
                for frame_line in F.FRAME_LINES:
                    match = frame_line.search(line)
                    if match is not None:
                        _append(raw, match, skip)
                        break
        else:
            while pos < len(lines):
                line = lines[pos]
                pos += 1
                if any(p.search(line) for p in F.CORRUPTED_LINES):
                    ok = False
                    break
                match = step.search(line)
                if match is not None:
                    _append(raw, match, skip)
                    break
        i += 1
    return results if ok else None


def _append(raw: list[str], match: re.Match[str], skip: re.Pattern[str]) -> None:
    for frame in match.groups():
        if frame and not skip.search(frame):
            raw.append(frame)


def _module_of(lines: list[str], function: str) -> str | None:
    for line in lines:
        for match in _FRAME_WITH_MODULE.finditer(line):
            name = match.group(1)
            if name == function or name.startswith(function + "."):
                return match.group(2)
    return None


_STACK_END = ("</TASK>", "</IRQ>", "</NMI>", END_TRACE, "NMI backtrace", PANIC_MARKER,
              "Kernel Offset:", "Modules linked in:", "INFO: task ", "Sending NMI")


def _stack_of(lines: list[str], culprit: str | None) -> tuple[str, ...]:
    """The block of frames that holds the culprit (else the first block), top first.

    A block starts at a register dump's function (RIP:, pc :, NIP) or at a call trace that
    does not continue one, and ends where a task's or interrupt's stack ends.
    """
    blocks: list[list[str]] = []
    current: list[str] | None = None

    def close() -> None:
        if current:
            blocks.append(current)

    for line in lines:
        marker = line.strip()
        rip = F.RIP_FRAME.search(line)
        if rip is not None and rip.group(1):
            close()
            current = [rip.group(1)]
        elif F.CALL_TRACE.search(line) or marker in ("<TASK>", "<IRQ>", "<NMI>"):
            # "Call Trace:" right after the register dump, and "<TASK>", continue the block.
            if current is None or (len(current) > 1 and not marker.startswith("<")):
                close()
                current = []
        elif current is not None and any(end in line for end in _STACK_END):
            close()
            current = None
        elif current is not None and "+0x" in line and len(current) < MAX_STACK:
            match = F.FRAME_LINES[0].search(line)
            # arm64 repeats the pc's function as the trace's first frame.
            if match is not None and (not current or current[-1] != match.group(1)):
                current.append(match.group(1))
    close()
    if not blocks:
        return ()
    chosen = next((b for b in blocks if culprit in b), blocks[0])
    return tuple(_bounded(f) or "" for f in chosen)


def _taint(flags: str | None, text: str) -> str:
    return "" if text == "Not tainted" else (flags or "").replace(" ", "")


def _who(lines: list[str], log: str, start: int) -> tuple[str | None, str | None, str | None,
                                                         int | None]:
    """Kernel release, taint, comm and pid of the task the report is about."""
    release = tainted = comm = None
    pid = None
    for line in lines[:HEAD_LINES]:  # lockdep prints the task line after its chains
        hung = _HUNG_TASK.search(line)
        if hung and comm is None:
            comm, pid = hung.group(1), int(hung.group(2))
            continue
        soft = _SOFT_LOCKUP.search(line)
        if soft and comm is None:
            comm, pid = soft.group(1), int(soft.group(2))
        info = _TASK_INFO.search(line)
        if info:
            if comm is None:
                comm, pid = info.group(2), int(info.group(1))
            tainted, release = _taint(info.group(4), info.group(3)), info.group(5)
            break
        taint = _TAINT_LINE.search(line)
        if taint:
            tainted, release = _taint(taint.group(2), taint.group(1)), taint.group(3)
            break
    if release is None:
        version = _LINUX_VERSION.search(log, 0, start) or _LINUX_VERSION.search(log)
        release = version.group(1) if version else None
    return release, tainted, comm, pid


def _panic_message(log: str, panic_at: int) -> str:
    end = log.find("\n", panic_at)
    message = log[panic_at + len(PANIC_MARKER):end if end >= 0 else len(log)]
    return _sanitize(message.lstrip(": ")) or "unknown"


def _kind(title: str, window: str) -> str:
    """What kind of crash, from the title; the log around the report (this boot's only)
    tells a deliberate sysrq crash and an oops that lost its description."""
    if _SYSRQ_CRASH.search(window):
        return "sysrq"  # a deliberate crash, whatever fault it made
    if title.startswith("kernel panic: "):
        message = title.removeprefix("kernel panic: ")
        kind = next((kind for kind, p in _PANIC_KINDS if p.search(message)), "other")
        if kind == "other" and _OOPS.search(window):
            return "oops"  # an oops whose description did not reach the log
        return kind
    return next((kind for prefix, kind in _KINDS if title.startswith(prefix)), "other")


def _replace_variables(title: str) -> str:
    for pattern, replacement in F.TITLE_VARIABLES:
        while True:
            replaced = pattern.sub(replacement, title)
            if replaced == title:
                break
            title = replaced
    return title


def _sanitize(text: str) -> str:
    out: list[str] = []
    prev = " "
    for ch in text[:F.MAX_TITLE]:
        if ch == "\t":
            ch = " "
        elif ch < " " or ch > "~":
            continue
        if ch == " " and prev == " ":
            continue
        out.append(ch)
        prev = ch
    return "".join(out).strip()


def _bounded(value: str | None) -> str | None:
    if value is None:
        return None
    return _sanitize(value)[:MAX_FIELD] or None
