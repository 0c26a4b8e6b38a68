"""`panicwatch stress`: the command run for real on a temporary tree, the deadline with calls that
never return (an injected op that blocks on an Event), and the pure histogram/summary helpers.

The frozen-mount version of the deadline test needs the FUSE freeze filesystem (tests/freezefs.py).
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from panicwatch.settings import Settings
from panicwatch.stress.command import run_stress
from panicwatch.stress.latency import (
    EXACT,
    NBUCKETS,
    bucket_bounds,
    bucket_of,
    merge_counts,
    percentile,
    slowest,
)
from panicwatch.stress.ops import ALL_KINDS, OPS
from panicwatch.stress.run import Plan, UsageError, execute
from panicwatch.stress.summary import (
    ErrorRow,
    Latency,
    Progress,
    Stuck,
    Summary,
    error_rows,
    exit_code,
    format_progress,
    format_summary,
    shown,
)
from panicwatch.stress.supervisor import supervised

PANICWATCH = [sys.executable, "-m", "panicwatch"]
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "exporter")}
ENV.pop("PANICWATCH_LOG_LEVEL", None)
DEBUG_ENV = {**ENV, "PANICWATCH_LOG_LEVEL": "debug"}


def make_tree(root: Path) -> Path:
    """200 files in 30 nested directories: root/d0..d9/e0..e1/f0..f9."""
    for d in range(10):
        for e in range(2):
            sub = root / f"d{d}" / f"e{e}"
            sub.mkdir(parents=True)
            for f in range(10):
                (sub / f"f{f}").write_bytes(b"x")
    return root


@pytest.fixture(scope="module")
def module_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("stress") / "tree")


def stress(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PANICWATCH, "stress", *args], capture_output=True, text=True, env=ENV,
                          timeout=timeout)


def fields(summary: str) -> dict[str, str]:
    """`label: value` lines of a summary (continuation lines left out)."""
    found = {}
    for line in summary.splitlines():
        if m := re.match(r"(\w+):\s+(.*)$", line):
            found[m.group(1)] = m.group(2)
    return found


def numbers(summary: str) -> tuple[int, float, float]:
    """ops, ops/s and the duration actually run."""
    f = fields(summary)
    ops = re.fullmatch(r"(\d+) \((\d+\.\d)/s\)", f["ops"])
    duration = re.match(r"(\d+\.\d\d) s of ", f["duration"])
    assert ops and duration, summary
    return int(ops.group(1)), float(ops.group(2)), float(duration.group(1))


def read_until(stream: object, needle: str, limit: float = 10) -> str:
    """Lines from a text pipe until one contains needle."""
    seen, until = "", time.monotonic() + limit
    while time.monotonic() < until:
        line = stream.readline()  # type: ignore[attr-defined]
        if not line:
            break
        seen += line
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} never came; stderr so far: {seen!r}")


# --- the command on a real tree ---------------------------------------------------------------

TARGETS = {"stat": 231, "open": 231, "statvfs": 231, "readdir": 31}


@pytest.fixture(scope="module")
def op_runs(module_tree: Path) -> dict[str, tuple[subprocess.CompletedProcess[str], float]]:
    """Every --op for 2 s with 4 workers, all four at once to keep the module quick."""
    started, procs = time.monotonic(), {}
    for op in OPS:
        procs[op] = subprocess.Popen(
            [*PANICWATCH, "stress", str(module_tree), "--duration", "2", "--workers", "4", "--op", op],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    results = {}
    for op, proc in procs.items():
        out, err = proc.communicate(timeout=30)
        results[op] = (subprocess.CompletedProcess(proc.args, proc.returncode, out, err),
                       time.monotonic() - started)
    return results


@pytest.mark.parametrize("op", list(OPS))
def test_each_op_runs_clean_for_the_duration(op_runs, module_tree: Path, op: str):
    result, wall = op_runs[op]
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""  # no progress line when stderr is not a terminal
    out = result.stdout
    f = fields(out)
    assert out.startswith("panicwatch stress summary\n")
    assert f["paths"] == str(module_tree)
    assert f["op"] == f"{op}: {OPS[op].about}"
    assert f["workers"] == "4"
    assert re.fullmatch(rf"{TARGETS[op]}; walk complete: 230 entries listed in \d+\.\d{{3}} s",
                        f["targets"])
    assert f["errors"] == "0"
    assert re.fullmatch(r"p50 [\d.]+ ms, p90 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms", f["latency"])
    assert f["stuck"] == "0 of 4 workers"
    assert f["result"] == "OK, exit 0"
    ops, rate, duration = numbers(out)
    assert ops > 0
    assert 1.95 <= duration <= 2.3
    assert abs(ops - rate * duration) <= rate * 0.01 + 1
    assert f["duration"].endswith(" s of 2 s, ended at the deadline")
    assert wall < 10
    lat = [float(x) for x in re.findall(r"(\d+\.\d{3}) ms", f["latency"])]
    assert lat == sorted(lat) and len(lat) == 4
    slow = out.split("slowest:", 1)[1].split("stuck:", 1)[0].strip().splitlines()
    assert len(slow) == 5
    assert float(slow[0].split()[0]) == lat[3]  # the slowest path holds the maximum


def test_files_deleted_while_running_give_enoent_and_exit_1(tmp_path: Path):
    tree = make_tree(tmp_path / "tree")
    proc = subprocess.Popen([*PANICWATCH, "stress", str(tree), "--duration", "2", "--workers", "4"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=DEBUG_ENV)
    try:
        read_until(proc.stderr, "listed 230 entries")
        shutil.rmtree(tree / "d3")
        out, _ = proc.communicate(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    assert proc.returncode == 1, out
    errors = out.split("errors:", 1)[1].split("latency:", 1)[0]
    assert re.fullmatch(rf"\s*(\d+)\n\s+ENOENT  \1  first: {re.escape(str(tree / 'd3'))}(/\S+)?\s*", errors)
    assert re.search(r"^result:    FAIL: \d+ errors; exit 1$", out, re.M)


def test_open_of_a_socket_fails_every_time_with_enxio(tmp_path: Path):
    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        result = stress(str(path), "--op", "open", "--duration", "0.5", "--workers", "2")
    assert result.returncode == 1
    ops, _, _ = numbers(result.stdout)
    f = fields(result.stdout)
    assert ops > 0
    assert f["errors"] == str(ops)  # every open failed
    assert f"ENXIO  {ops}  first: {path}" in result.stdout
    assert f["targets"].startswith("1; walk complete: 0 entries")
    assert f["result"] == f"FAIL: {ops} errors; exit 1"


def test_a_symlink_given_is_followed_once_and_symlinks_below_are_not(tmp_path: Path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "file").write_text("x")
    (tmp_path / "real" / "loop").symlink_to(tmp_path / "real")  # would be a cycle if followed
    (tmp_path / "link").symlink_to(tmp_path / "real")
    result = stress(str(tmp_path / "link"), "--op", "open", "--duration", "0.5", "--workers", "1")
    assert result.returncode == 0, result.stdout
    # the real directory and its file; the symlink inside is neither opened nor walked
    assert fields(result.stdout)["targets"].startswith("2; walk complete: 2 entries")


# --- bad usage ----------------------------------------------------------------------------------


def test_a_missing_path_is_exit_2_with_one_line(tmp_path: Path):
    result = stress(str(tmp_path), str(tmp_path / "nope"), "--duration", "5")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"panicwatch stress: error: {tmp_path / 'nope'}: No such file or directory\n"


def test_a_dangling_symlink_given_is_a_missing_path(tmp_path: Path):
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    result = stress(str(tmp_path / "dangling"), "--duration", "5")
    assert result.returncode == 2
    assert result.stderr == f"panicwatch stress: error: {tmp_path / 'dangling'}: No such file or directory\n"


def test_no_path_is_exit_2():
    result = stress("--duration", "1")
    assert result.returncode == 2
    assert "PATH" in result.stderr


def test_duration_above_the_cap_is_exit_2(tmp_path: Path):
    result = stress(str(tmp_path), "--duration", "700")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == ("panicwatch: error: --duration 700 is above --max-duration 600; "
                             "add --force to run that long\n")


def test_force_runs_past_the_cap(tmp_path: Path):
    assert stress(str(tmp_path), "--max-duration", "1", "--duration", "2").returncode == 2
    started = time.monotonic()
    result = stress(str(tmp_path), "--max-duration", "1", "--duration", "2", "--force", "--workers", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    _, _, duration = numbers(result.stdout)
    assert 1.95 <= duration <= 2.3
    assert time.monotonic() - started < 6


# --- signals and the terminal -------------------------------------------------------------------


@pytest.mark.parametrize(("signum", "said"), [(signal.SIGINT, "stopped by SIGINT (Ctrl-C)"),
                                              (signal.SIGTERM, "stopped by SIGTERM")],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_run_and_prints_the_summary(module_tree: Path, signum: int, said: str):
    proc = subprocess.Popen([*PANICWATCH, "stress", str(module_tree), "--duration", "60", "--workers", "4"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=DEBUG_ENV)
    try:
        read_until(proc.stderr, "starting 4 workers")
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    assert proc.returncode in (0, 1)
    assert took < 2
    f = fields(out)
    assert f["duration"].endswith(f" s of 60 s, {said}")
    ops, _, duration = numbers(out)
    assert ops > 0
    assert duration < 5


def test_progress_line_only_on_a_terminal(tmp_path: Path):
    make_tree(tmp_path / "tree")
    master, slave = pty.openpty()
    proc = subprocess.Popen([*PANICWATCH, "stress", str(tmp_path / "tree"), "--duration", "2.2",
                             "--workers", "2"], stdout=subprocess.PIPE, stderr=slave, env=ENV)
    os.close(slave)
    seen = b""
    with contextlib.suppress(OSError):  # EIO once the child closes the terminal
        while chunk := os.read(master, 4096):
            seen += chunk
    os.close(master)
    out = proc.communicate(timeout=10)[0].decode()
    assert proc.returncode == 0
    text = seen.decode()
    lines = re.findall(r"\r( *\d+\.\d s  ops \d+  \d+/s  errors 0  p99 \d+\.\d{3} ms  in a call >1s 0)"
                       r"\x1b\[K", text)
    assert [line.split(" s ")[0].strip() for line in lines][:2] == ["1.0", "2.0"]
    assert text.endswith("\r\x1b[K")  # cleared before the summary
    assert out.startswith("panicwatch stress summary\n")


# --- the deadline with calls that never return (in-process, injected) ---------------------------


def plan(paths: list[Path], call: Callable[[str], object], *, workers: int = 3, duration: float = 0.6,
         **more: object) -> Plan:
    return Plan(tuple(map(str, paths)), "stat", call, ALL_KINDS, workers, duration, "test op",
                grace=0.2, **more)  # type: ignore[arg-type]


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # let the stuck threads go


def timed(run: Callable[[], Summary]) -> tuple[Summary, float]:
    started = time.monotonic()
    summary = run()
    return summary, time.monotonic() - started


def test_deadline_holds_when_every_call_blocks(tmp_path: Path, gate: threading.Event):
    tree = make_tree(tmp_path / "tree")
    summary, took = timed(lambda: execute(plan([tree], lambda p: gate.wait())))
    assert 0.6 <= took < 0.6 + 0.15  # calls that old are stuck: no grace is waited for them
    assert 0.6 <= summary.elapsed < 0.7
    assert summary.ops == 0
    assert summary.latency is None
    assert len(summary.stuck) == 3
    assert all(s.what == "stat" and 0.5 < s.seconds < 1.2 for s in summary.stuck)
    assert summary.walk == "complete" and summary.walk_stuck is None
    assert exit_code(summary) == 1
    text = format_summary(summary)
    assert "stuck:     3 of 3 workers still in a call at the end\n" in text
    assert text.endswith("result:    FAIL: 3 workers stuck; exit 1\n")


def test_one_hung_file_catches_every_worker_in_turn(tmp_path: Path, gate: threading.Event):
    tree = make_tree(tmp_path / "tree")
    hung = str(tree / "d5" / "e1" / "f7")

    def call(path: str) -> None:
        if path == hung:
            gate.wait()
        else:
            os.lstat(path)

    summary, took = timed(lambda: execute(plan([tree], call, workers=4, duration=1.0)))
    assert took < 1.0 + 0.2 + 0.4
    assert summary.ops > 0
    assert [s.path for s in summary.stuck] == [hung] * 4
    assert exit_code(summary) == 1


def test_deadline_holds_when_listing_hangs(tmp_path: Path, gate: threading.Event):
    tree = make_tree(tmp_path / "tree")

    def scandir(path: str):  # type: ignore[no-untyped-def]
        gate.wait()
        return os.scandir(path)

    summary, took = timed(lambda: execute(plan([tree], os.lstat, scandir=scandir)))
    assert took < 0.6 + 0.2 + 0.4
    assert summary.walk == "walking" and summary.targets == 1  # only the PATH itself
    assert summary.ops > 0 and not summary.errors and not summary.stuck
    assert summary.walk_stuck is not None
    assert (summary.walk_stuck.what, summary.walk_stuck.path) == ("scandir", str(tree))
    assert exit_code(summary) == 1
    assert "stuck:     the walk still in a call at the end; 0 of 3 workers\n" in format_summary(summary)


def test_deadline_holds_when_the_path_check_hangs(tmp_path: Path, gate: threading.Event):
    def lstat(path: str) -> os.stat_result:
        gate.wait()
        return os.lstat(path)

    summary, took = timed(lambda: execute(plan([tmp_path], os.lstat, lstat=lstat)))
    assert took < 0.6 + 0.2 + 0.4
    assert summary.walk == "checking" and summary.ops == 0 and summary.targets == 0
    assert summary.walk_stuck is not None and summary.walk_stuck.what == "lstat"
    assert "targets:   0; the PATHs were still being checked (stat) at the end\n" in format_summary(summary)
    assert exit_code(summary) == 1


def test_the_walk_stops_at_the_entry_cap(tmp_path: Path):
    tree = make_tree(tmp_path / "tree")
    summary = execute(plan([tree], os.lstat, duration=0.3, max_entries=5))
    assert (summary.walk, summary.listed, summary.targets) == ("capped", 5, 6)
    assert exit_code(summary) == 0


def test_missing_path_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(UsageError, match="nope: No such file or directory"):
        execute(plan([tmp_path, tmp_path / "nope"], os.lstat))
    settings = Settings(stress_duration=0.3, stress_workers=1)
    assert run_stress(settings, [str(tmp_path / "nope")]) == 2
    assert run_stress(settings, []) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"panicwatch stress: error: {tmp_path / 'nope'}: No such file or directory\n"
                            "panicwatch stress: error: no PATH given\n")


def test_run_stress_in_process_prints_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    (tmp_path / "f").write_text("x")
    settings = Settings(stress_duration=0.3, stress_workers=2, stress_op="statvfs")
    assert run_stress(settings, [str(tmp_path)]) == 0
    f = fields(capsys.readouterr().out)
    assert f["targets"].startswith("2; walk complete: 1 entries")
    assert f["op"] == "statvfs: statvfs every entry except symlinks"


# --- the supervisor: never waits for a child that may never exit --------------------------------


def test_supervisor_returns_on_the_code_even_if_the_pipes_stay_open(capsys: pytest.CaptureFixture[str]):
    """A stuck FUSE call keeps the child unreapable and its pipes open; here a grandchild does."""
    def body() -> int:
        holder = subprocess.Popen(["sleep", "30"])  # inherits the child's stdout and stderr
        print(f"summary {holder.pid}")
        print("progress", file=sys.stderr)
        return 1

    started = time.monotonic()
    assert supervised(body, 10) == 1
    assert time.monotonic() - started < 1.5
    captured = capsys.readouterr()
    os.kill(int(captured.out.split()[1]), signal.SIGKILL)
    assert re.fullmatch(r"summary \d+\n", captured.out)
    assert captured.err == "progress\n"


def test_supervisor_gives_up_on_a_silent_child(capsys: pytest.CaptureFixture[str]):
    started = time.monotonic()
    assert supervised(lambda: time.sleep(30) or 0, 0.5) == 1
    assert time.monotonic() - started < 1.5
    assert capsys.readouterr().err == "panicwatch stress: error: the run did not finish within 0.5 s\n"


def test_supervisor_reports_a_killed_child(capsys: pytest.CaptureFixture[str]):
    assert supervised(lambda: os.kill(os.getpid(), signal.SIGKILL) or 0, 5) == 1
    assert capsys.readouterr().err == "panicwatch stress: error: the run was killed by SIGKILL\n"


def test_supervisor_relays_a_traceback_and_exit_1(capsys: pytest.CaptureFixture[str]):
    assert supervised(lambda: 1 // 0, 5) == 1
    assert capsys.readouterr().err.endswith("ZeroDivisionError: integer division or modulo by zero\n")


# --- pure helpers ---------------------------------------------------------------------------------


def test_buckets_are_exact_below_128_ns_and_1_64_wide_above():
    assert [bucket_of(n) for n in (0, 1, 127)] == [0, 1, 127]
    assert bucket_bounds(127) == (127, 127)
    assert bucket_of(128) == bucket_of(129) == 128 and bucket_bounds(128) == (128, 129)
    assert bucket_of(1_000_000) == 954
    assert bucket_bounds(954) == (999_424, 1_007_615)
    assert bucket_of(2**63 - 1) == NBUCKETS - 1
    previous = -1
    for ns in [*range(0, 5000), *range(5000, 10**7, 997), 10**9, 60 * 10**9]:
        index = bucket_of(ns)
        low, high = bucket_bounds(index)
        assert low <= ns <= high and index >= previous
        assert ns < EXACT or (high - low + 1) * 64 <= low
        previous = index


def test_percentiles_exact_below_128_ns():
    counts = [0] * NBUCKETS
    for ns in range(1, 101):
        counts[bucket_of(ns)] += 1
    assert [percentile(counts, p, 100) for p in (50, 90, 99, 100)] == [50, 90, 99, 100]
    assert percentile(counts, 0, 100) == 1


def test_percentiles_report_the_top_of_the_bucket_capped_by_the_max():
    counts = merge_counts([[0] * NBUCKETS, [0] * NBUCKETS])
    counts[bucket_of(1_000_000)] += 98
    counts[bucket_of(2_000_000)] += 1
    counts[bucket_of(50_000_000)] += 1
    assert percentile(counts, 50, 50_000_000) == 1_007_615
    assert percentile(counts, 99, 50_000_000) == 2_015_231  # bucket (1_998_848, 2_015_231)
    assert percentile(counts, 100, 50_000_000) == 50_000_000  # capped: the exact maximum
    assert percentile(counts, 50, 1_000_000) == 1_000_000
    with pytest.raises(ValueError):
        percentile([0] * NBUCKETS, 50, 0)


def test_merge_slowest_and_error_rows():
    a, b = [0] * NBUCKETS, [0] * NBUCKETS
    a[3], b[3], b[200] = 1, 2, 5
    merged = merge_counts([a, b])
    assert (merged[3], merged[200], sum(merged)) == (3, 5, 8)
    assert slowest([{"/a": 5, "/b": 9}, {"/a": 12, "/c": 9}, {"/d": 1}], k=3) == (
        ("/a", 12), ("/b", 9), ("/c", 9))
    assert error_rows({2: 3, 5: 7, 13: 3, 99999: 1}, {2: "/x", 5: "/y", 13: "/z"}) == (
        ErrorRow("EIO", 7, "/y"), ErrorRow("EACCES", 3, "/z"), ErrorRow("ENOENT", 3, "/x"),
        ErrorRow("errno 99999", 1, ""))


BASE = Summary(paths=("/mnt/nfs/spool",), op="stat", about="lstat every entry", workers=8, requested=60,
               elapsed=60.0012, ended="deadline", targets=10101, walk="complete", listed=10100,
               walk_seconds=0.2104, ops=1234567)


def test_summary_ok():
    s = replace(BASE, **{"latency": Latency(12_000, 20_400, 51_000, 3_204_000),
                   "slowest": (("/mnt/nfs/spool/d12/f3", 3_204_000), ("/mnt/nfs/spool/d1", 812_000))})
    assert exit_code(s) == 0
    assert format_summary(s) == """\
panicwatch stress summary
paths:     /mnt/nfs/spool
op:        stat: lstat every entry
workers:   8
duration:  60.00 s of 60 s, ended at the deadline
targets:   10101; walk complete: 10100 entries listed in 0.210 s
ops:       1234567 (20575.7/s)
errors:    0
latency:   p50 0.012 ms, p90 0.020 ms, p99 0.051 ms, max 3.204 ms
slowest:   3.204 ms  /mnt/nfs/spool/d12/f3
           0.812 ms  /mnt/nfs/spool/d1
stuck:     0 of 8 workers
result:    OK, exit 0
"""


def test_summary_with_errors_and_stuck_calls():
    s = replace(BASE, **{"paths": ("/mnt/a", "/mnt/b"), "ended": "SIGINT", "elapsed": 12.5,
                   "walk": "walking", "listed": 523, "walk_seconds": 12.5, "targets": 400, "ops": 1000,
                   "errors": (ErrorRow("EIO", 12, "/mnt/a/x"), ErrorRow("ESTALE", 3, "/mnt/b/y")),
                   "latency": Latency(1_000_000, 2_000_000, 9_000_000, 9_500_000),
                   "slowest": (("/mnt/a/x", 9_500_000),),
                   "stuck": tuple(Stuck("stat", f"/mnt/a/f{i}", 10.0 - i) for i in range(8)),
                   "walk_stuck": Stuck("scandir", "/mnt/a/sub", 12.25)})
    assert exit_code(s) == 1
    assert format_summary(s) == """\
panicwatch stress summary
paths:     /mnt/a
           /mnt/b
op:        stat: lstat every entry
workers:   8
duration:  12.50 s of 60 s, stopped by SIGINT (Ctrl-C)
targets:   400; walk incomplete: 523 entries listed in 12.500 s
ops:       1000 (80.0/s)
errors:    15
           EIO     12  first: /mnt/a/x
           ESTALE   3  first: /mnt/b/y
latency:   p50 1.000 ms, p90 2.000 ms, p99 9.000 ms, max 9.500 ms
slowest:   9.500 ms  /mnt/a/x
stuck:     8 of 8 workers and the walk still in a call at the end
           12.250 s  scandir /mnt/a/sub
           10.000 s  stat /mnt/a/f0
           9.000 s  stat /mnt/a/f1
           8.000 s  stat /mnt/a/f2
           7.000 s  stat /mnt/a/f3
           ... and 4 more
result:    FAIL: 15 errors, 8 workers stuck, walk stuck; exit 1
"""


def test_summary_of_a_run_with_no_completed_call():
    s = replace(BASE, **{"ops": 0, "walk": "checking", "targets": 0, "listed": 0,
                   "stuck": (), "walk_stuck": Stuck("lstat", "/mnt/nfs/spool", 60.0)})
    text = format_summary(s)
    assert "ops:       0 (0.0/s)\n" in text
    assert "latency:   none (no call completed)\nslowest:   none\n" in text
    assert text.endswith("result:    FAIL: walk stuck; exit 1\n")


def test_paths_are_shown_on_one_line():
    assert shown("/a/b c/é") == "/a/b c/é"
    assert shown("/a/\udcffx") == "/a/\\xffx"  # a byte that is not UTF-8, as os.fsdecode gives it
    assert shown("/a/new\nline\t") == "/a/new\\nline\\t"


def test_progress_line():
    assert format_progress(Progress(3.0, 12345, 2, 51_000, 0), 4115.2) == (
        "   3.0 s  ops 12345  4115/s  errors 2  p99 0.051 ms  in a call >1s 0")
    assert format_progress(Progress(61.0, 0, 0, None, 8), 0.0) == (
        "  61.0 s  ops 0  0/s  errors 0  p99 -  in a call >1s 8")
