"""`panicwatch stress PATH...`: settings to a plan, the run supervised, progress and summary out."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from panicwatch.settings import Settings
from panicwatch.stress.ops import OPS
from panicwatch.stress.run import Plan, UsageError, execute
from panicwatch.stress.summary import Progress, exit_code, format_progress, format_summary
from panicwatch.stress.supervisor import supervised

BACKSTOP = 10.0  # seconds after the deadline the supervisor gives up on hearing from the run


def plan_of(settings: Settings, paths: Sequence[str]) -> Plan:
    op = OPS[settings.stress_op]
    return Plan(tuple(paths), settings.stress_op, op.call, op.kinds, settings.stress_workers,
                settings.stress_duration, op.about)


class _ProgressLine:
    """One `\\r` line on a terminal, rewritten every tick."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last_ops = 0
        self.last_elapsed = 0.0
        self.shown = False

    def __call__(self, p: Progress) -> None:
        interval = p.elapsed - self.last_elapsed
        rate = (p.ops - self.last_ops) / interval if interval > 0 else 0.0
        self.last_ops, self.last_elapsed = p.ops, p.elapsed
        self.stream.write("\r" + format_progress(p, rate) + "\x1b[K")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def run_stress(settings: Settings, paths: list[str]) -> int:
    """`panicwatch stress PATH...`: 0 ran clean, 1 errors or stuck calls, 2 bad usage."""
    if not paths:
        print("panicwatch stress: error: no PATH given", file=sys.stderr)
        return 2
    plan, tty = plan_of(settings, paths), sys.stderr.isatty()
    return supervised(lambda: run_here(plan, tty), plan.duration + BACKSTOP)


def run_here(plan: Plan, tty: bool) -> int:
    """The run itself, in this process: summary to stdout, progress to stderr on a terminal."""
    progress = _ProgressLine(sys.stderr) if tty else None
    try:
        summary = execute(plan, progress)
    except UsageError as e:
        print(f"panicwatch stress: error: {e}", file=sys.stderr)
        return 2
    finally:
        if progress is not None:
            progress.clear()
    sys.stdout.write(format_summary(summary))
    sys.stdout.flush()
    return exit_code(summary)
