#!/usr/bin/env python3
"""Crash triage speed: one big kernel log, and the scrape cost of many waiting dumps.

1. ``parse_crash_report`` on a 16 MiB kernel log (the largest log buffer a distribution
   kernel keeps is 32 MiB): boot noise, NFS chatter, survived WARNINGs every few thousand
   lines, then the oops that panicked at the very end. Target: under 0.5 s.
2. A scrape of the vmcores collector with 100 dumps waiting, each with a 256 KiB dmesg:
   the first scrape (every dump's log parsed) and the scrapes after it (cached), against
   the same tree scraped by the code of a baseline git ref (the release before triage),
   which read only the newest dump's log. Target: cached scrape no slower than baseline.

    python3 benchmarks/triage.py [--log-mib 16] [--dumps 100] [--baseline 729d8ce]

Needs: the project venv (make .venv/.installed) and git (for the baseline ref).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "exporter"), str(ROOT / "tests")]

from panicwatch.parsers.crash_report import parse_crash_report  # noqa: E402

NOISE = (
    "[{t:12.6f}] nfs: server filer1.example.com OK\n"
    "[{t:12.6f}] audit: type=1400 audit({s}.123:{n}): apparmor=\"STATUS\" operation=\"profile_load\"\n"
    "[{t:12.6f}] EXT4-fs (sda1): re-mounted {n:08x}. Quota mode: none.\n"
    "[{t:12.6f}] systemd-journald[412]: Received client request to flush runtime journal.\n"
)
SURVIVED_WARNING = """\
[{t:12.6f}] ------------[ cut here ]------------
[{t:12.6f}] WARNING: CPU: 2 PID: 1234 at fs/nfs/write.c:1650 nfs_commit_release_pages+0x1d5/0x230 [nfs]
[{t:12.6f}] Modules linked in: nfsv4 nfs lockd grace sunrpc
[{t:12.6f}] CPU: 2 PID: 1234 Comm: kworker/u8:3 Not tainted 6.1.0-13-amd64 #1 Debian 6.1.55-1
[{t:12.6f}] RIP: 0010:nfs_commit_release_pages+0x1d5/0x230 [nfs]
[{t:12.6f}] Call Trace:
[{t:12.6f}]  <TASK>
[{t:12.6f}]  ? __warn+0x7d/0xc0
[{t:12.6f}]  nfs_commit_release+0x1e/0x40 [nfs]
[{t:12.6f}]  rpc_free_task+0x39/0x70 [sunrpc]
[{t:12.6f}]  process_one_work+0x1c4/0x380
[{t:12.6f}]  worker_thread+0x4d/0x380
[{t:12.6f}]  kthread+0xd7/0x100
[{t:12.6f}]  ret_from_fork+0x1f/0x30
[{t:12.6f}]  </TASK>
[{t:12.6f}] ---[ end trace 0000000000000000 ]---
"""
FINAL_OOPS = """\
[{t:12.6f}] BUG: kernel NULL pointer dereference, address: 0000000000000030
[{t:12.6f}] #PF: supervisor read access in kernel mode
[{t:12.6f}] Oops: 0000 [#1] PREEMPT SMP NOPTI
[{t:12.6f}] CPU: 1 PID: 2211 Comm: kworker/u8:1 Not tainted 6.1.0-13-amd64 #1 Debian 6.1.55-1
[{t:12.6f}] RIP: 0010:rpc_release_client+0x19/0x90 [sunrpc]
[{t:12.6f}] Call Trace:
[{t:12.6f}]  <TASK>
[{t:12.6f}]  rpc_task_release_client+0x2a/0x70 [sunrpc]
[{t:12.6f}]  rpc_release_resources_task+0x28/0x40 [sunrpc]
[{t:12.6f}]  process_one_work+0x1c4/0x380
[{t:12.6f}]  worker_thread+0x4d/0x380
[{t:12.6f}]  kthread+0xd7/0x100
[{t:12.6f}]  ret_from_fork+0x1f/0x30
[{t:12.6f}]  </TASK>
[{t:12.6f}] ---[ end trace 0000000000000000 ]---
[{t:12.6f}] Kernel panic - not syncing: Fatal exception
"""
TITLE = "BUG: unable to handle kernel NULL pointer dereference in rpc_release_client"


def kernel_log(size: int) -> str:
    parts = ["[    0.000000] Linux version 6.1.0-13-amd64 (debian-kernel@lists.debian.org)\n"]
    length, n = len(parts[0]), 0
    while length < size:
        t = 10 + n * 0.001
        chunk = (SURVIVED_WARNING if n % 2000 == 1999 else NOISE).format(t=t, s=1700000000 + n,
                                                                         n=n)
        parts.append(chunk)
        length += len(chunk)
        n += 1
    parts.append(FINAL_OOPS.format(t=10 + n * 0.001))
    return "".join(parts)


def worst_case() -> float:
    """A lockdep header whose expected lines never come: the formats' multi-line patterns
    backtrack over the report's head (bounded to 300 lines)."""
    log = ("[    1.000000] WARNING: possible irq lock inversion dependency detected\n"
           + "".join(f"[    1.000000] just changed the state of lock {i} at: \n"
                     for i in range(3000)))
    start = time.perf_counter()
    parse_crash_report(log)
    return time.perf_counter() - start


def bench_log(mib: int, rounds: int = 5) -> dict[str, float]:
    log = kernel_log(mib * 1024 * 1024)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        report = parse_crash_report(log)
        times.append(time.perf_counter() - start)
        assert report is not None and report.title == TITLE, report
    return {"log_mib": len(log) / 2**20, "best_s": min(times), "median_s": statistics.median(times)}


SCRAPE_SNIPPET = """
import json, statistics, sys, time
from pathlib import Path
from panicwatch.collectors.registry import build_registry
from panicwatch.exposition import render_all
from panicwatch.settings import Settings
off = {f"collector_{c}": False for c in ("kdump", "kernel", "readiness", "nfs", "rpc",
       "nfs_sockets", "blocked_tasks", "kernel_log", "canary")}
registry = build_registry(Settings(path_rootfs=Path(sys.argv[1]), **off))
start = time.perf_counter()
first = render_all(registry)
first_s = time.perf_counter() - start
times = []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    page = render_all(registry)
    times.append(time.perf_counter() - start)
print(json.dumps({"first_s": first_s, "cached_s": statistics.median(times),
                  "bytes": len(page), "crash_series": page.count(b"vmcore_crash_info{")}))
"""


def dump_tree(root: Path, dumps: int) -> None:
    import trees

    trees.build("ubuntu_armed_dumps", root)
    log = kernel_log(256 * 1024)
    for i in range(dumps):
        stamp = f"2024{(i // 28) % 12 + 1:02d}{i % 28 + 1:02d}{i % 24:02d}{i % 60:02d}"
        d = root / "var/crash" / stamp
        d.mkdir(parents=True, exist_ok=True)
        with open(d / f"dump.{stamp}", "wb") as f:
            f.truncate(64 * 2**20)
        (d / f"dmesg.{stamp}").write_text(log)


def baseline_exporter(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "exporter"],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "exporter"


def scrape_cost(exporter: Path, root: Path, scrapes: int) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", SCRAPE_SNIPPET, str(root), str(scrapes)],
                          capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(exporter), "PATH": "/usr/bin:/bin"})
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-mib", type=int, default=16)
    parser.add_argument("--dumps", type=int, default=100)
    parser.add_argument("--scrapes", type=int, default=50, help="cached scrapes a round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--baseline", default="729d8ce",
                        help="git ref of the release before triage")
    args = parser.parse_args()

    log = bench_log(args.log_mib)
    print(f"triage of a {log['log_mib']:.1f} MiB kernel log: best {log['best_s']:.3f} s, "
          f"median {log['median_s']:.3f} s (target < 0.5 s)")
    print(f"worst case found (a lockdep report missing its lines): {worst_case():.3f} s")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "host"
        dump_tree(root, args.dumps)
        old = baseline_exporter(args.baseline, Path(tmp) / "base")
        runs: dict[str, list[dict[str, float]]] = {"now": [], "base": []}
        for _ in range(args.rounds):  # alternated, so both see the same machine load
            runs["now"].append(scrape_cost(ROOT / "exporter", root, args.scrapes))
            runs["base"].append(scrape_cost(old, root, args.scrapes))
        now, base = ({k: statistics.median(r[k] for r in runs[which]) for k in runs[which][0]}
                     for which in ("now", "base"))
    print(f"medians of {args.rounds} alternated rounds")
    print(f"vmcores scrape, {args.dumps} dumps: first {now['first_s'] * 1000:.1f} ms "
          f"(every log parsed), cached {now['cached_s'] * 1000:.2f} ms, "
          f"{now['crash_series']} crash_info series")
    print(f"baseline {args.baseline}: first {base['first_s'] * 1000:.1f} ms, "
          f"cached {base['cached_s'] * 1000:.2f} ms")
    print(f"ratio cached/baseline: {now['cached_s'] / base['cached_s']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
