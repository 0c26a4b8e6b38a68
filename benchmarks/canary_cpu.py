#!/usr/bin/env python3
"""CPU cost of the canary: 100 targets probed once a second, plus the scheduler-lag ticker.

Runs the real Canary in this process against 100 local directories for --seconds (default
60) and prints the CPU it used as a percentage of one core, from /proc/self/stat (utime +
stime). Target: <= 2% of a core.

    .venv/bin/python benchmarks/canary_cpu.py [--targets 100] [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from panicwatch.background.canary import Canary
from panicwatch.collectors.registry import host_of
from panicwatch.settings import Settings


def cpu_seconds() -> float:
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as base:
        paths = []
        for i in range(args.targets):
            (Path(base) / f"t{i}").mkdir()
            paths.append(Path(base) / f"t{i}")
        settings = Settings(collector_canary_path=paths, collector_canary_interval=1.0,
                            collector_canary_max_targets=args.targets,
                            collector_canary_discovery_interval=30.0)
        canary = Canary(settings, host_of(settings))
        canary.start()
        time.sleep(1.5)  # every target has started probing
        start_cpu, start = cpu_seconds(), time.monotonic()
        time.sleep(args.seconds)
        used, elapsed = cpu_seconds() - start_cpu, time.monotonic() - start
        state = canary.snapshot()
        canary.stop()
    probes = sum(dict(t.buckets)["+Inf"] for t in state.targets)
    print(f"targets: {len(state.targets)}, probes: {probes}, over {elapsed:.0f} s: "
          f"{used:.2f} CPU s = {100 * used / elapsed:.2f}% of one core "
          f"(scheduler-lag ticker every {settings.collector_canary_scheduler_tick} s included)")


if __name__ == "__main__":
    main()
