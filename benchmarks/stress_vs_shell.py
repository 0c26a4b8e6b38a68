#!/usr/bin/env python3
"""Files stat-ed per second: `panicwatch stress --op stat` against the shell reproducer it replaces.

Builds a tree of DIRS x FILES empty files in a temporary directory, then on that same tree runs,
one after the other, for SECONDS each:

- the shell reproducer: N background loops of
  ``while :; do for f in DIR/*/*; do stat "$f" >/dev/null; done; done``, each counting the stats
  it finished and printing the count when SIGTERM ends it (bash runs the trap once the stat in
  progress returns); rate = all counts / time from start to SIGTERM;
- ``panicwatch stress DIR --op stat --workers N --duration SECONDS``; rate = the ops and the
  duration its summary reports (it also stats the 100 directories and DIR itself);

for N = 8 (the classic reproducer) and N = 1, and prints both rates and the ratio panicwatch/shell.

    python3 benchmarks/stress_vs_shell.py [--seconds 10] [--dirs 100] [--files 100]

Needs: bash and coreutils stat; the project venv (make .venv/.installed).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PANICWATCH = ROOT / ".venv/bin/panicwatch"

SHELL_LOOP = """
n=0
trap 'echo $n; exit 0' TERM
while :; do
    for f in "$1"/*/*; do stat "$f" >/dev/null; n=$((n + 1)); done
done
"""


def make_tree(root: Path, dirs: int, files: int) -> None:
    for d in range(dirs):
        sub = root / f"dir{d:03d}"
        sub.mkdir(parents=True)
        for f in range(files):
            (sub / f"file{f:03d}").touch()


def shell_rate(tree: Path, loops: int, seconds: float) -> tuple[float, int, float]:
    """stats/s of `loops` shell loops over the tree for `seconds`: (rate, stats, seconds run)."""
    started = time.monotonic()
    procs = [subprocess.Popen(["bash", "-c", SHELL_LOOP, "loop", str(tree)], stdout=subprocess.PIPE,
                              text=True) for _ in range(loops)]
    time.sleep(seconds)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    ran = time.monotonic() - started
    total = sum(int(proc.communicate(timeout=30)[0].strip() or 0) for proc in procs)
    return total / ran, total, ran


def panicwatch_rate(tree: Path, workers: int, seconds: float) -> tuple[float, int, float]:
    """stats/s of `panicwatch stress --op stat`: (rate, ops, seconds run) from its summary."""
    result = subprocess.run([str(PANICWATCH), "stress", str(tree), "--op", "stat", "--workers",
                             str(workers), "--duration", f"{seconds:g}"],
                            capture_output=True, text=True, timeout=seconds + 60)
    if result.returncode != 0:
        sys.exit(f"panicwatch stress failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    ops = re.search(r"^ops:\s+(\d+) ", result.stdout, re.M)
    ran = re.search(r"^duration:\s+(\d+\.\d+) s", result.stdout, re.M)
    assert ops and ran, result.stdout
    return int(ops.group(1)) / float(ran.group(1)), int(ops.group(1)), float(ran.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    parser.add_argument("--dirs", type=int, default=100)
    parser.add_argument("--files", type=int, default=100, help="files per directory")
    args = parser.parse_args()
    if not PANICWATCH.exists():
        sys.exit(f"{PANICWATCH} missing: run make .venv/.installed first")
    with tempfile.TemporaryDirectory(prefix="stress-bench-") as tmp:
        tree = Path(tmp) / "tree"
        make_tree(tree, args.dirs, args.files)
        print(f"tree: {args.dirs * args.files} files in {args.dirs} directories ({tree}), "
              f"{args.seconds:g} s per run, {os.cpu_count()} CPUs")
        print(f"{'':28}{'stats/s':>12}{'stats':>12}{'seconds':>9}")
        for n in (8, 1):
            shell = shell_rate(tree, n, args.seconds)
            ours = panicwatch_rate(tree, n, args.seconds)
            loops, workers = ("loops", "workers") if n > 1 else ("loop", "worker")
            print(f"{f'shell, {n} {loops}':28}{shell[0]:>12.0f}{shell[1]:>12}{shell[2]:>9.2f}")
            print(f"{f'panicwatch, {n} {workers}':28}{ours[0]:>12.0f}{ours[1]:>12}{ours[2]:>9.2f}")
            print(f"{'ratio panicwatch/shell':28}{ours[0] / shell[0]:>12.1f}")


if __name__ == "__main__":
    main()
