"""panicwatch on real kernels (issues 8 and 15): Debian 12's 6.1 and the 6.12 series from
bookworm-security, each in a QEMU guest (TCG), with real kdump, a real NFS server and client on
the guest's loopback, panicwatch under its shipped systemd unit, real stalls, lockups, oopses and
panics, and the pages that follow, through a Prometheus, an Alertmanager and a webhook receiver
in the guest.

Per kernel (the `run` fixture's parameter), six boots of one disk (a qcow2 overlay on the cached
image, see image.py and vm.py), each crash captured by kdump before the next boot reads it:
boot 1 runs the armed, shipped-unit, disarmed, NFS traffic and stall scenarios, then panics with
sysrq; boot 2 checks that dump, then replays the incident (an NFS stall, a hung fsync,
hung_task_panic); boot 3 checks it, then a soft lockup from the test module (tests/e2e/guest/
pw_crashtest), lived through and then panicking; boot 4 checks it, then a WARN() lived through
and an oops; boot 5 checks it, then an OOM with panic_on_oom; boot 6 checks that. The tests run
in file order and share the boots, so they are one story: a failure in one usually fails those
after it.

Selected only with `-m vm` (`make e2e`): they need root, QEMU and about 17-20 minutes per kernel
on two cores. On failure the serial logs and the share of each boot (webhook notifications,
journal, processes) are copied to tests/e2e/artifacts/<time>-<kernel>/ and the path is printed.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import image as image_mod
import pytest
import vm

from conftest import Samples, names, scrape_text, value

pytestmark = pytest.mark.vm

E2E = Path(__file__).resolve().parent
REPO = E2E.parent.parent
ARTIFACTS = E2E / "artifacts"
FIXTURES = REPO / "tests" / "fixtures" / "real"
PANICWATCH = "/opt/panicwatch/bin/panicwatch"
METRICS = f"http://{image_mod.PANICWATCH_ADDRESS}/metrics"
PROMETHEUS = f"http://{image_mod.PROMETHEUS_ADDRESS}"
CRASH_SIZE = 256 * 1024 * 1024  # crashkernel=256M on the guest's command line
MOUNTS = {"/mnt/nfs3": "3", "/mnt/nfs42": "4.2"}

BOOT_TIMEOUT_S = 420  # TCG on a shared 2-core machine: 1-4 minutes to the agent
SERVICES_TIMEOUT_S = 300
ALERT_TIMEOUT_S = 180
PANIC_TIMEOUT_S = 900  # panic, capture kernel boot, makedumpfile, reboot (QEMU exits)
STALL_TIMEOUT_S = 420
RECOVERY_TIMEOUT_S = 300
STALL_ALERT_INFLIGHT_S = 60  # NFSMountStalled: panicwatch_canary_probe_inflight_seconds > 60
CHECK_TIMEOUT_S = 3
CHECK_SLACK_S = 3  # the readiness checks, the reads and the forks, slowed down by TCG
SCRAPE_LIMIT_S = 1.0  # the bound for a scrape during the stall (see scrape_limit)


# --- helpers ---------------------------------------------------------------------------------


def kernel_mountstats(text: str) -> dict[str, dict[str, list[int]]]:
    """/proc/self/mountstats -> {mountpoint: {op: [9 per-op numbers]}} for NFS mounts; a minimal
    reading of the kernel's format, independent of panicwatch's parser."""
    out: dict[str, dict[str, list[int]]] = {}
    current: dict[str, list[int]] | None = None
    in_ops = False
    for line in text.splitlines():
        m = re.match(r"device \S+ mounted on (\S+) with fstype (nfs4?)\b", line)
        if m:
            current, in_ops = out.setdefault(m[1], {}), False
            continue
        if line.startswith("device "):
            current = None
            continue
        if current is None:
            continue
        if line.strip() == "per-op statistics":
            in_ops = True
            continue
        m = re.match(r"\s+([A-Z_0-9]+): ((?:\d+ ?)+)$", line)
        if in_ops and m:
            current[m[1]] = [int(v) for v in m[2].split()]
    return out


def stress_summary(text: str) -> dict[str, Any]:
    ops = re.search(r"^ops:\s+(\d+)", text, re.M)
    errors = re.search(r"^errors:\s+(\d+)", text, re.M)
    duration = re.search(r"^duration:\s+([\d.]+) s", text, re.M)
    assert ops and errors and duration, f"unexpected stress summary:\n{text}"
    return {"ops": int(ops[1]), "errors": int(errors[1]), "seconds": float(duration[1])}


@dataclass
class Run:
    """One e2e run: the image, the overlay disk, the boots, the stage timings."""

    image: image_mod.Image
    workdir: Path
    disk: Path
    guests: list[vm.Guest] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Run({self.workdir})"

    @property
    def guest(self) -> vm.Guest:
        return self.guests[-1]

    def boot(self, name: str) -> vm.Guest:
        guest = vm.Guest(self.image, self.disk, self.workdir, name)
        self.guests.append(guest)
        start = time.monotonic()
        guest.start()
        guest.wait_ready(BOOT_TIMEOUT_S)
        self.timings[f"{name}_agent"] = time.monotonic() - start
        guest.wait_for("panicwatch, Prometheus and Alertmanager answer", lambda: all(
            guest.http(url, 10).status == 200 for url in (
                f"http://{image_mod.PANICWATCH_ADDRESS}/healthz", f"{PROMETHEUS}/-/ready",
                f"http://{image_mod.ALERTMANAGER_ADDRESS}/-/ready")), SERVICES_TIMEOUT_S, 3)
        guest.wait_for("Prometheus scraped panicwatch", lambda: self.query(
            'up{job="panicwatch"} == 1'), SERVICES_TIMEOUT_S, 3)
        guest.wait_for("kdump-tools loaded the crash kernel",
                       lambda: guest.read("/sys/kernel/kexec_crash_loaded").strip() == "1",
                       SERVICES_TIMEOUT_S, 3)
        self.timings[f"{name}_ready"] = time.monotonic() - start
        return guest

    # --- in-guest reads ---

    def scrape(self, timeout: float = 30) -> tuple[Samples, float]:
        r = self.guest.http(METRICS, timeout)
        assert r.status == 200, f"scrape failed: {r.status} {r.error}"
        return scrape_text(r.body), r.seconds

    def query(self, expr: str) -> list[dict[str, Any]]:
        r = self.guest.http(f"{PROMETHEUS}/api/v1/query?" + urllib.parse.urlencode({"query": expr}), 30)
        assert r.status == 200, f"{expr}: {r.status} {r.error} {r.body[:500]}"
        return json.loads(r.body)["data"]["result"]

    def check(self, *args: str) -> vm.Result:
        return self.guest.sh(f"{PANICWATCH} check {' '.join(args)}", 120)

    # --- the pager ---

    def notifications(self) -> list[dict[str, Any]]:
        path = self.guest.share / "webhook.jsonl"
        if not path.exists():
            return []
        text = path.read_text()
        complete = text[:text.rfind("\n") + 1]  # a line still being written is read next time
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def alerts(self, alertname: str, status: str, **labels: str) -> list[dict[str, Any]]:
        return [a for note in self.notifications() for a in note.get("alerts", [])
                if a["labels"].get("alertname") == alertname and a["status"] == status
                and all(a["labels"].get(k) == v for k, v in labels.items())]

    def wait_alert(self, alertname: str, status: str, timeout: float = ALERT_TIMEOUT_S,
                   **labels: str) -> dict[str, Any]:
        start = time.monotonic()
        found = self.guest.wait_for(f"webhook: {alertname} {status} {labels}",
                                    lambda: self.alerts(alertname, status, **labels), timeout, 2)
        self.timings[f"alert {alertname} {status}"] = time.monotonic() - start
        return found[0]

    # --- fixtures for the unit tests ---

    def save_kernel_files(self, state: str) -> Path:
        """The guest's real NFS client files into share/real/<kernel>/<state>/."""
        kver = self.guest.boot["kernel"]
        rel = f"real/{kver}/{state}"
        self.guest.sh(f"""set -e
            d=/share/{rel}; rm -rf $d; mkdir -p $d/sunrpc $d/sys-sunrpc
            cat /proc/self/mountstats > $d/mountstats
            cat /proc/self/mountinfo > $d/mountinfo
            cat /proc/net/rpc/nfs > $d/net-rpc-nfs
            cd /sys/kernel/debug/sunrpc
            for f in rpc_clnt/*/tasks rpc_clnt/*/info rpc_xprt/*/info; do
                [ -e "$f" ] || continue; mkdir -p $d/sunrpc/$(dirname $f); cat $f > $d/sunrpc/$f
            done
            for c in rpc_clnt/*; do  # which transport each client uses (a symlink in debugfs)
                readlink $c/xprt > $d/sunrpc/$c/xprt.link 2>/dev/null || true
            done
            cd /sys/kernel/sunrpc
            find . -type f | while read -r f; do
                mkdir -p $d/sys-sunrpc/$(dirname $f); cat $f > $d/sys-sunrpc/$f 2>/dev/null || true
            done
            uname -r > $d/uname-r; uname -v > $d/uname-v
        """, 120).check()
        return self.guest.share / rel


def scrape_limit(idle: list[float]) -> float:
    """The bound for a scrape during the stall. The issue asks for 1 s; under TCG on a shared
    2-core machine an idle scrape alone takes 0.5-3 s (every syscall is emulated), so the bound is
    1 s on top of the slowest idle scrape measured in the minute before (by the agent and by
    Prometheus): a scrape that waited on the hung mount would take the whole stall (minutes) and
    time out (Prometheus: up 0 after 5 s), far past either."""
    return SCRAPE_LIMIT_S + max(idle)


# --- the run ---------------------------------------------------------------------------------


def kernels_under_test() -> list[str]:
    """Every kernel of image.KERNELS, or those named in PANICWATCH_E2E_KERNELS (comma-separated)."""
    chosen = os.environ.get("PANICWATCH_E2E_KERNELS", ",".join(image_mod.KERNELS))
    names = [k.strip() for k in chosen.split(",") if k.strip()]
    unknown = [k for k in names if k not in image_mod.KERNELS]
    if unknown:
        raise ValueError(f"PANICWATCH_E2E_KERNELS: no kernel {unknown}; "
                         f"known: {', '.join(image_mod.KERNELS)}")
    return names


# One run per kernel: pytest groups the tests by this module-scoped parameter, so each kernel's
# boots run as one story (test ids end in [6.1], [6.12]).
@pytest.fixture(scope="module", params=kernels_under_test())
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    markexpr = request.config.getoption("markexpr") or ""
    if "vm" not in markexpr or "not vm" in markexpr:
        pytest.skip("real-kernel e2e: select it with -m vm (make e2e)")
    if os.geteuid() != 0:
        pytest.fail("the real-kernel e2e needs root (mmdebstrap, chroot, mkfs -d)")
    failed_before = request.session.testsfailed
    total = time.monotonic()
    start = time.monotonic()
    image = image_mod.build(request.param)
    workdir = tmp_path_factory.mktemp(f"e2e-{request.param}")
    the_run = Run(image, workdir, vm.overlay(image, workdir / "overlay.qcow2"))
    the_run.timings.update({f"image.{k}": v for k, v in image.timings.items()})
    the_run.timings["image"] = time.monotonic() - start
    the_run.notes["image"] = {"dir": str(image.dir), "built": image.built,
                              "kernel": image.kernel_version}
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    try:
        yield the_run
    finally:
        for guest in the_run.guests:
            guest.collect_diagnostics()
            guest.close()
        the_run.timings["total"] = time.monotonic() - total
        (workdir / "timings.json").write_text(json.dumps(
            {"timings": the_run.timings, "notes": the_run.notes}, indent=1))
        lines = [f"  {k:<40} {v:8.1f} s" for k, v in the_run.timings.items()]
        kept = f"e2e work directory: {workdir}"
        if request.session.testsfailed > failed_before:
            dest = ARTIFACTS / f"{time.strftime('%Y%m%d-%H%M%S')}-{request.param}"
            shutil.copytree(workdir, dest, ignore=shutil.ignore_patterns("*.qcow2"))
            kept = f"e2e FAILED: serial logs, shares and timings kept in {dest}"
        capman = request.config.pluginmanager.getplugin("capturemanager")
        if reporter is not None and capman is not None:
            with capman.global_and_fixture_disabled():
                reporter.write_line("")
                reporter.write_line(f"real-kernel e2e stage timings ({image.kernel_version}):")
                for line in lines:
                    reporter.write_line(line)
                reporter.write_line(kept)
        else:
            print(kept)


@pytest.fixture(scope="module")
def boot1(run: Run) -> vm.Guest:
    return run.boot("boot1")


def timed(run: Run, name: str) -> Any:
    class Timer:
        def __enter__(self) -> None:
            self.start = time.monotonic()

        def __exit__(self, *exc: object) -> None:
            run.timings[name] = time.monotonic() - self.start

    return Timer()


# --- scenario 1: armed -----------------------------------------------------------------------


def test_armed(run: Run, boot1: vm.Guest) -> None:
    with timed(run, "scenario1_armed"):
        assert boot1.read("/sys/kernel/kexec_crash_loaded").strip() == "1"
        assert int(boot1.read("/sys/kernel/kexec_crash_size")) == CRASH_SIZE
        check = run.check()
        assert check.rc == 0, check.stdout + check.stderr
        assert re.search(r"PASS\s+crash_kernel_loaded", check.stdout), check.stdout
        report = json.loads(run.check("--format", "json").stdout)
        assert report["ready"] is True

        samples, _ = run.scrape()
        assert value(samples, "panicwatch_kdump_loaded") == 1
        assert value(samples, "panicwatch_kdump_crash_memory_reserved_bytes") == CRASH_SIZE
        assert value(samples, "panicwatch_kdump_crash_memory_requested_bytes") == CRASH_SIZE
        assert value(samples, "panicwatch_kdump_service_enabled") == 1
        assert value(samples, "panicwatch_panic_ready") == 1
        failed = {dict(k)["collector"]: v for k, v in
                  names(samples, "panicwatch_collector_success").items() if v != 1}
        assert not failed, f"collectors failing in a healthy guest: {failed}"
        # Prometheus in the guest has the same view
        assert [r["value"][1] for r in run.query("panicwatch_kdump_loaded")] == ["1"]
        assert not run.alerts("KdumpNotArmed", "firing")


# CAP_DAC_READ_SEARCH (2), CAP_SYS_PTRACE (19), CAP_SYSLOG (34): what the shipped unit grants
UNIT_CAPABILITIES = 1 << 2 | 1 << 19 | 1 << 34


def test_shipped_unit(run: Run, boot1: vm.Guest) -> None:
    """panicwatch runs under deploy/systemd/panicwatch.service exactly as shipped (a dynamic
    user, three capabilities, the sandbox), and every collector still reads what it is for."""
    assert boot1.read("/etc/systemd/system/panicwatch.service") == (
        REPO / "deploy" / "systemd" / "panicwatch.service").read_text()
    shown = boot1.sh("systemctl show panicwatch -p ActiveState -p DynamicUser -p MainPID "
                     "-p ExecStart", 30).check().stdout
    props = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
    assert (props["ActiveState"], props["DynamicUser"]) == ("active", "yes"), props
    assert "path=/usr/local/bin/panicwatch" in props["ExecStart"], props
    status = boot1.read(f"/proc/{props['MainPID']}/status")
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    uids = fields["Uid"].split()
    assert uids[0] != "0" and len(set(uids)) == 1, f"not an unprivileged user: {uids}"
    assert int(fields["CapEff"], 16) == UNIT_CAPABILITIES, fields["CapEff"]
    assert int(fields["NoNewPrivs"]) == 1

    samples, _ = run.scrape()
    run.notes["unit_collectors"] = {dict(k)["collector"]: v for k, v in
                                    names(samples, "panicwatch_collector_success").items()}
    assert set(run.notes["unit_collectors"].values()) == {1.0}, run.notes["unit_collectors"]
    # each privilege's reason to be there, read through it
    assert value(samples, "panicwatch_rpc_debugfs_available") == 1  # debugfs, 0700 root
    assert value(samples, "panicwatch_kernel_log_reading") == 1  # /dev/kmsg, dmesg_restrict
    assert (value(samples, "panicwatch_nfs_sockets", server="127.0.0.1", port="2049",
                  state="ESTABLISHED") or 0) >= 1  # netlink sock_diag
    probed = {dict(k)["mountpoint"] for k in
              names(samples, "panicwatch_canary_last_success_timestamp_seconds")}
    assert probed >= set(MOUNTS), probed


# --- scenario 2: disarmed --------------------------------------------------------------------


def test_disarmed(run: Run, boot1: vm.Guest) -> None:
    with timed(run, "scenario2_disarmed"):
        boot1.sh("kexec -p -u", 60).check()
        try:
            assert boot1.read("/sys/kernel/kexec_crash_loaded").strip() == "0"
            samples, _ = run.scrape()
            assert value(samples, "panicwatch_kdump_loaded") == 0
            assert value(samples, "panicwatch_readiness_check", check="crash_kernel_loaded") == 0
            assert value(samples, "panicwatch_panic_ready") == 0
            check = run.check()
            run.notes["check_disarmed"] = check.stdout
            assert check.rc == 1, check.stdout + check.stderr
            assert re.search(r"FAIL\s+crash_kernel_loaded", check.stdout), check.stdout
            assert "fix: " in check.stdout and "kdump-tools" in check.stdout, check.stdout
            assert "NOT READY" in check.stdout
            page = run.wait_alert("KdumpNotArmed", "firing")
            assert page["labels"]["severity"] == "critical"
            assert page["labels"]["instance"] == "pw-guest"
        finally:
            boot1.sh("kdump-config load", 180)
        assert boot1.read("/sys/kernel/kexec_crash_loaded").strip() == "1"
        samples, _ = run.scrape()
        assert value(samples, "panicwatch_kdump_loaded") == 1
        assert run.check().rc == 0
        run.wait_alert("KdumpNotArmed", "resolved")


def test_disarmed_fix_rearms(run: Run, boot1: vm.Guest) -> None:
    """The fix `check` prints for a disarmed Debian host must re-arm it when run as printed."""
    with timed(run, "scenario2_fix"):
        boot1.sh("kexec -p -u", 60).check()
        try:
            check = run.check("--format", "json")
            fix = next(c["fix"] for c in json.loads(check.stdout)["checks"]
                       if c["name"] == "crash_kernel_loaded")
            command = fix.split(";")[0]
            run.notes["disarmed_fix"] = fix
            result = boot1.sh(command, 180)
            run.notes["disarmed_fix_result"] = [result.rc, result.stdout, result.stderr]
            loaded = boot1.read("/sys/kernel/kexec_crash_loaded").strip()
        finally:
            boot1.sh("kdump-config load", 180)
        # the unit is oneshot+RemainAfterExit, still "active" after `kexec -p -u`: only a
        # restart loads the crash kernel again (an earlier fix said `enable --now`, a no-op)
        assert loaded == "1", f"the printed fix `{command}` left kdump unloaded"


# --- scenario 3: NFS traffic -----------------------------------------------------------------

PER_OP = {  # panicwatch family -> (index in the kernel's per-op line, scale to base units)
    "panicwatch_nfs_operations_total": (0, 1),
    "panicwatch_nfs_operation_transmissions_total": (1, 1),
    "panicwatch_nfs_operation_major_timeouts_total": (2, 1),
    "panicwatch_nfs_operation_queue_seconds_total": (5, 1e-3),
    "panicwatch_nfs_operation_rtt_seconds_total": (6, 1e-3),
    "panicwatch_nfs_operation_execute_seconds_total": (7, 1e-3),
    "panicwatch_nfs_operation_errors_total": (8, 1),
}


def counters_between(before: dict[str, dict[str, list[int]]], samples: Samples,
                     after: dict[str, dict[str, list[int]]]) -> int:
    """Every per-op counter panicwatch exports for the NFS mounts lies between the kernel's
    values read just before and just after the scrape. Returns how many were compared."""
    compared = 0
    for family, (index, scale) in PER_OP.items():
        for labels, got in names(samples, family).items():
            lab = dict(labels)
            mnt, op = lab["mountpoint"], lab["op"]
            lo, hi = before[mnt][op][index] * scale, after[mnt][op][index] * scale
            assert lo - 1e-9 <= got <= hi + 1e-9, f"{family}{lab}: {got} not in [{lo}, {hi}]"
            compared += 1
    return compared


def kernel_and_scrape(run: Run) -> tuple[dict[str, dict[str, list[int]]], Samples,
                                         dict[str, dict[str, list[int]]]]:
    before = kernel_mountstats(run.guest.read("/proc/self/mountstats"))
    samples, _ = run.scrape()
    after = kernel_mountstats(run.guest.read("/proc/self/mountstats"))
    return before, samples, after


def stress(run: Run, paths: list[str], op: str, seconds: int = 10) -> dict[str, Any]:
    r = run.guest.sh(f"{PANICWATCH} stress --op {op} --workers 4 --duration {seconds} "
                     + " ".join(paths), seconds + 120)
    summary = stress_summary(r.stdout)
    assert r.rc == 0 and summary["errors"] == 0, r.stdout + r.stderr
    return summary


def test_nfs_traffic(run: Run, boot1: vm.Guest) -> None:
    with timed(run, "scenario3_nfs_traffic"):
        samples, _ = run.scrape()
        info = {dict(k)["mountpoint"]: dict(k) for k in names(samples, "panicwatch_nfs_mount_info")}
        for mnt, version in MOUNTS.items():
            assert info[mnt]["version"] == version
            assert info[mnt]["server"] == "127.0.0.1"
            assert info[mnt]["export"] == image_mod.NFS_EXPORT
            assert info[mnt]["proto"] == "tcp"

        # idle: panicwatch's per-op numbers are the kernel's
        assert counters_between(*kernel_and_scrape(run)) > 20

        # stat: every lstat is at least one GETATTR (actimeo=0), at most one per path component
        before = kernel_mountstats(boot1.read("/proc/self/mountstats"))
        s0, _ = run.scrape()
        summary = stress(run, [f"{m}/tree" for m in MOUNTS], "stat")
        s1, _ = run.scrape()
        after = kernel_mountstats(boot1.read("/proc/self/mountstats"))
        delta = {m: (value(s1, "panicwatch_nfs_operations_total", mountpoint=m, op="GETATTR") or 0)
                 - (value(s0, "panicwatch_nfs_operations_total", mountpoint=m, op="GETATTR") or 0)
                 for m in MOUNTS}
        kernel_delta = {m: after[m]["GETATTR"][0] - before[m]["GETATTR"][0] for m in MOUNTS}
        run.notes["stress_stat"] = {"summary": summary, "getattr_delta": delta,
                                    "kernel_getattr_delta": kernel_delta}
        assert summary["ops"] > 0
        # panicwatch's deltas equal the kernel's up to what ran between the reads (the canary)
        for m in MOUNTS:
            assert kernel_delta[m] - 5 <= delta[m] <= kernel_delta[m]
        depth = 4  # mount root, tree, dNN, fNNN: each may be revalidated with a GETATTR
        entries = image_mod.TREE_DIRS * (image_mod.TREE_FILES + 1) + 1
        # each component may also revalidate its parent directory: 2 GETATTRs per component
        assert summary["ops"] <= sum(delta.values()) <= 2 * (depth + 1) * summary["ops"] + 2 * entries

        # statvfs: exactly one FSSTAT (v3) / STATFS (v4.2) per call, plus the canary's probes
        for mnt, op in (("/mnt/nfs3", "FSSTAT"), ("/mnt/nfs42", "STATFS")):
            s0, _ = run.scrape()
            t0 = time.monotonic()
            summary = stress(run, [f"{mnt}/tree"], "statvfs")
            s1, _ = run.scrape()
            window = time.monotonic() - t0
            got = (value(s1, "panicwatch_nfs_operations_total", mountpoint=mnt, op=op) or 0) - (
                value(s0, "panicwatch_nfs_operations_total", mountpoint=mnt, op=op) or 0)
            canary = math.ceil(window / 9) + 1  # one statvfs per round, interval 10 s - 10%
            run.notes[f"stress_statvfs {mnt}"] = {"summary": summary, "delta": got,
                                                   "window": window}
            assert summary["ops"] <= got <= summary["ops"] + canary, (mnt, op, summary, got)

        run.save_kernel_files("idle")  # after the traffic, so the fixtures hold moving counters
        before, samples, after = kernel_and_scrape(run)
        assert counters_between(before, samples, after) > 20
        assert value(samples, "panicwatch_nfs_parse_errors_total") == 0
        assert value(samples, "panicwatch_collector_success", collector="nfs") == 1
        rpc = boot1.read("/proc/net/rpc/nfs")
        calls = int(re.search(r"^rpc (\d+)", rpc, re.M)[1])  # type: ignore[index]
        assert 0 < (value(samples, "panicwatch_rpc_calls_total") or 0) <= calls


# --- scenario 4: stall -----------------------------------------------------------------------

NFT_ADD = ("nft add table inet pwe2e && nft add chain inet pwe2e out "
           "'{ type filter hook output priority 0; }' && "
           "nft add rule inet pwe2e out oifname lo tcp dport 2049 drop")
NFT_DEL = "nft delete table inet pwe2e"


def stall_state(samples: Samples) -> dict[str, float]:
    inflight = {dict(k)["mountpoint"]: v for k, v in
                names(samples, "panicwatch_canary_probe_inflight_seconds").items()}
    return {
        "inflight_nfs3": inflight.get("/mnt/nfs3", 0.0),
        "inflight_nfs42": inflight.get("/mnt/nfs42", 0.0),
        "rpc_tasks_stuck": value(samples, "panicwatch_rpc_tasks_stuck", server="127.0.0.1") or 0,
        "blocked_rpc": value(samples, "panicwatch_blocked_tasks", wait="rpc") or 0,
        "blocked_nfs": value(samples, "panicwatch_blocked_tasks", wait="nfs") or 0,
    }


def test_stall(run: Run, boot1: vm.Guest) -> None:
    idle = [run.scrape()[1] for _ in range(5)]
    prom_idle = run.query("max_over_time(scrape_duration_seconds{job='panicwatch'}[60s])")
    idle.append(float(prom_idle[0]["value"][1]))
    limit = scrape_limit(idle)
    run.notes["stall_idle_scrapes"] = idle
    scrapes: list[tuple[float, int | None, float]] = []
    start = time.monotonic()
    prom_start = time.time()
    try:
        boot1.sh(NFT_ADD, 60).check()
        # an application touching the mounts: it hangs in D state like the canary's probe
        boot1.sh("for m in /mnt/nfs3 /mnt/nfs42; do (setsid stat $m/tree/d01/f001 "
                 ">/tmp/stall-stat-$(basename $m).out 2>&1 &); done", 30).check()
        saved = False
        state: dict[str, float] = {}
        alerts_seen: set[str] = set()
        while True:
            r = boot1.http(METRICS, 30)
            scrapes.append((time.monotonic() - start, r.status, r.seconds))
            if r.status == 200:
                state = stall_state(scrape_text(r.body))
            if not saved and state.get("inflight_nfs3", 0) > 30:
                run.save_kernel_files("stall")
                saved = True
            for name in ("NFSMountStalled", "NFSStuckRPCs"):
                if run.alerts(name, "firing"):
                    alerts_seen.add(name)
            # blocked: the canary's two probes and root's two stats, whose wchan the unit's
            # user reads only through CAP_SYS_PTRACE (else they would count as "other")
            done = (state.get("inflight_nfs3", 0) > STALL_ALERT_INFLIGHT_S
                    and state.get("inflight_nfs42", 0) > STALL_ALERT_INFLIGHT_S
                    and state.get("rpc_tasks_stuck", 0) >= 1
                    and state.get("blocked_rpc", 0) + state.get("blocked_nfs", 0) >= 4
                    and alerts_seen == {"NFSMountStalled", "NFSStuckRPCs"})
            if done:
                break
            if time.monotonic() - start > STALL_TIMEOUT_S:
                pytest.fail(f"stall not fully seen within {STALL_TIMEOUT_S} s: last state {state}, "
                            f"alerts {sorted(alerts_seen)}, scrapes {scrapes[-5:]}")
            time.sleep(3)
        run.timings["scenario4_stall_detected"] = time.monotonic() - start
        run.notes["stall_state"] = state
        startup = boot1.sh(f"{PANICWATCH} --version", 60).check().seconds
        checked = run.check("--check.timeout", str(CHECK_TIMEOUT_S), "--format", "json")
        # still stalled: the probes it killed leave anyway, since NFS waits are killable
        boot1.wait_for("check's killed probes are gone", lambda: boot1.sh(
            "pgrep -f '[p]anicwatch check' || true", 30).stdout.split() == [], 30, 1)
        stall_window = math.ceil(time.time() - prom_start)
        prom_max = run.query(f"max_over_time(scrape_duration_seconds{{job='panicwatch'}}[{stall_window}s])")
        prom_up = run.query(f"min_over_time(up{{job='panicwatch'}}[{stall_window}s])")
    finally:
        boot1.sh(NFT_DEL, 60)
    run.notes["stall_scrapes"] = scrapes
    run.notes["stall_prometheus_max_scrape"] = prom_max
    run.notes["stall_check_seconds"] = {"check": checked.seconds, "version": startup}
    # `check` as root in the middle of the stall: both mounts stalled, exit 3, on time (past
    # Python's start, which `--version` measures), and the probes it killed are gone
    assert checked.rc == 3, checked.stderr
    nfs = {m["path"]: m for m in json.loads(checked.stdout)["nfs"]["mounts"]}
    assert set(nfs) == set(MOUNTS)
    for path, version in MOUNTS.items():
        assert (nfs[path]["status"], nfs[path]["version"]) == ("stalled", version), nfs[path]
        assert f"statvfs got no answer in {CHECK_TIMEOUT_S} s" in nfs[path]["findings"]
        assert nfs[path]["address"] == {"host": "127.0.0.1", "port": 2049}
    assert max(m["rpc_tasks_stuck"] for m in nfs.values()) >= 1, nfs
    assert checked.seconds < startup + CHECK_TIMEOUT_S + CHECK_SLACK_S, (checked.seconds, startup)
    stalled = [alert for name in ("NFSMountStalled",) for alert in run.alerts(name, "firing")]
    assert {a["labels"]["mountpoint"] for a in stalled} >= {"/mnt/nfs3", "/mnt/nfs42"}
    assert run.alerts("NFSStuckRPCs", "firing", server="127.0.0.1")

    # no scrape waited on the hung mounts
    failed = [s for s in scrapes if s[1] != 200]
    assert not failed, f"scrapes failed during the stall: {failed}"
    slow = [s for s in scrapes if s[2] > limit]
    assert not slow, f"scrapes over {limit:.2f} s (idle {idle}) during the stall: {slow}"
    assert prom_up and float(prom_up[0]["value"][1]) == 1, prom_up
    assert float(prom_max[0]["value"][1]) <= limit, prom_max

    # recovery
    recovered = time.monotonic()
    boot1.wait_for("the mounts answer again and panicwatch sees it", lambda: (
        lambda s: s["inflight_nfs3"] == 0 and s["inflight_nfs42"] == 0
        and s["rpc_tasks_stuck"] == 0 and s["blocked_rpc"] + s["blocked_nfs"] == 0
    )(stall_state(run.scrape()[0])), RECOVERY_TIMEOUT_S, 3)
    run.timings["scenario4_recovered"] = time.monotonic() - recovered
    out = boot1.sh("cat /tmp/stall-stat-nfs3.out /tmp/stall-stat-nfs42.out", 30).stdout
    assert out.count("File: ") == 2, out
    run.wait_alert("NFSMountStalled", "resolved", RECOVERY_TIMEOUT_S)
    run.wait_alert("NFSStuckRPCs", "resolved", RECOVERY_TIMEOUT_S)
    run.timings["scenario4_stall"] = time.monotonic() - start


def test_save_fixtures(run: Run, boot1: vm.Guest) -> None:
    """The real files go to tests/fixtures/real/<kernel>/ when that is missing or when
    PANICWATCH_E2E_SAVE_FIXTURES=1 (so a normal run leaves the checkout clean)."""
    src = boot1.share / "real" / boot1.boot["kernel"]
    assert (src / "idle" / "mountstats").exists() and (src / "stall" / "mountstats").exists()
    dest = FIXTURES / boot1.boot["kernel"]
    if os.environ.get("PANICWATCH_E2E_SAVE_FIXTURES") == "1" or not dest.exists():
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(src, dest)


# --- scenario 5: panic -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def boot2(run: Run, boot1: vm.Guest) -> vm.Guest:
    assert boot1.read("/sys/kernel/kexec_crash_loaded").strip() == "1"
    start = time.monotonic()
    boot1.sh("sync; (sleep 2; echo c > /proc/sysrq-trigger) >/dev/null 2>&1 &", 30).check()
    boot1.wait_exit(PANIC_TIMEOUT_S)
    run.timings["panic_and_capture"] = time.monotonic() - start
    serial = boot1.serial.read_text(errors="replace")
    run.notes["capture_serial"] = [line for line in serial.splitlines()
                                  if "kdump" in line.lower() or "sysrq" in line.lower()][-40:]
    assert "sysrq: Trigger a crash" in serial, boot1.serial_tail()
    return run.boot("boot2")


def test_panic(run: Run, boot2: vm.Guest) -> None:
    with timed(run, "scenario5_panic_checks"):
        listing = boot2.sh("cd /var/crash && stat -c '%n %s' */dump.* */dmesg.*", 30).check().stdout
        files = dict(line.rsplit(" ", 1) for line in listing.splitlines())
        dumps = {k: int(v) for k, v in files.items() if "/dump." in k}
        assert len(dumps) == 1, listing
        (dump, size), = dumps.items()
        run.notes["dump"] = {"file": dump, "bytes": size}

        samples, _ = run.scrape()
        assert value(samples, "panicwatch_vmcores") == 1
        assert value(samples, "panicwatch_vmcores_incomplete") == 0
        assert value(samples, "panicwatch_vmcore_bytes") == size
        info = [dict(k) for k in names(samples, "panicwatch_last_panic_info")]
        run.notes["last_panic_info"] = info
        assert len(info) == 1 and "sysrq" in info[0]["reason"].lower(), info
        assert info[0]["dump"] == dump.split("/")[0]
        assert value(samples, "panicwatch_readiness_check", check="no_vmcore_pending") == 0

        check = run.check()
        run.notes["check_after_panic"] = check.stdout
        assert re.search(r"FAIL\s+no_vmcore_pending\s+1 dump\(s\) waiting in /var/crash", check.stdout), \
            check.stdout
        assert dump.split("/")[0] in check.stdout

        pending = run.wait_alert("VmcorePending", "firing")
        assert pending["labels"]["severity"] == "warning"
        panicked = run.wait_alert("HostPanicked", "firing")
        assert "sysrq" in panicked["labels"].get("reason", "").lower(), panicked
        assert "sysrq" in panicked["annotations"]["description"].lower()
        # The page names the crash as triage does, with the kernel that crashed.
        kernel = boot2.boot["kernel"]
        assert (panicked["labels"].get("title"), panicked["labels"].get("kernel_release")) == (
            "kernel panic: sysrq triggered crash", kernel), panicked
        assert (f": kernel panic: sysrq triggered crash (kind sysrq, kernel {kernel})."
                in panicked["annotations"]["description"]), panicked


def test_panic_fix_names_the_dump(run: Run, boot2: vm.Guest) -> None:
    """The fix for a pending dump names a file that exists in the dump's directory."""
    report = json.loads(run.check("--format", "json").stdout)
    fix = next(c["fix"] for c in report["checks"] if c["name"] == "no_vmcore_pending")
    path = re.search(r"(/var/crash/\S+)", fix)
    assert path, fix
    exists = boot2.sh(f"test -e {path[1].rstrip(',)')}", 30).rc == 0
    run.notes["vmcore_fix"] = fix
    assert exists, f"the fix `{fix}` names {path[1]}, which is not in the dump's directory"


def test_panic_triage(run: Run, boot2: vm.Guest) -> None:
    """`panicwatch triage` names the real dump's crash, reads the log back out of the vmcore
    with the real makedumpfile, and the collector labels the dump with the same title."""
    kernel = boot2.boot["kernel"]
    with timed(run, "scenario5_triage"):
        text = boot2.sh(f"{PANICWATCH} triage", 120)
        run.notes["triage"] = text.stdout
        assert text.rc == 0, text.stdout + text.stderr
        assert text.stdout.splitlines()[0] == "kernel panic: sysrq triggered crash", text.stdout
        got = json.loads(boot2.sh(f"{PANICWATCH} triage --format json", 120).check().stdout)
        assert (got["kind"], got["kernel_release"], got["panicked"]) == ("sysrq", kernel, True)
        assert "sysrq_handle_crash" in got["stack"], got
        assert got["comm"] and got["pid"] > 0, got

        samples, _ = run.scrape()
        info = [dict(k) for k in names(samples, "panicwatch_vmcore_crash_info")]
        assert [(i["title"], i["kind"], i["kernel_release"]) for i in info] == [
            ("kernel panic: sysrq triggered crash", "sysrq", kernel)], info
        last = [dict(k) for k in names(samples, "panicwatch_last_panic_info")]
        assert last[0]["title"] == "kernel panic: sysrq triggered crash", last

        # A dump whose capture saved no log: --extract reads it out of the vmcore.
        boot2.sh("set -e; rm -rf /var/tmp/nolog; mkdir /var/tmp/nolog; "
                 "ln /var/crash/*/dump.* /var/tmp/nolog/", 60).check()
        plain = boot2.sh(f"{PANICWATCH} triage /var/tmp/nolog", 120)
        assert plain.rc == 1 and "run with --extract" in plain.stdout, plain.stdout
        extracted = boot2.sh(f"{PANICWATCH} triage --extract --format json /var/tmp/nolog", 900)
        assert extracted.rc == 0, extracted.stdout + extracted.stderr
        ext = json.loads(extracted.stdout)
        run.notes["triage_extract"] = ext["note"]
        # kdump-tools saves the flattened format (makedumpfile -F): reassembled first.
        assert ext["note"] == ("extracted with makedumpfile (reassembled with makedumpfile -R) "
                               "to /var/tmp/nolog/vmcore-dmesg.txt"), ext
        assert (ext["title"], ext["kernel_release"]) == (got["title"], kernel), ext

    saved = boot2.sh("cat /var/crash/*/dmesg.*", 60).check().stdout
    dest = FIXTURES / kernel / "crashes" / "sysrq.dmesg"
    if os.environ.get("PANICWATCH_E2E_SAVE_FIXTURES") == "1" or not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(saved)


# --- scenario 6: the incident: an NFS stall, a hung task, then its panic ----------------------

HUNG_TASK_TIMEOUT_S = 10
HUNG_TASK_WAIT_S = 240
# Written before the stall and fsync'ed after it: waiting for page writeback is uninterruptible
# (killable RPC waits are never reported as hung), and on a hard mount the WRITEs retry for ever.
WRITER = """
import os, time
fd = os.open("/mnt/nfs42/incident.dat", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
for _ in range(32):
    os.write(fd, b"x" * (1 << 20))
open("/tmp/incident-written", "w").close()
while not os.path.exists("/tmp/incident-fsync"):
    time.sleep(0.2)
os.fsync(fd)
"""


def test_incident_hung_task_then_panic(run: Run, boot2: vm.Guest) -> None:
    """The story's failure: the server stops answering, the canary pages, an fsync hangs and
    the kernel reports it; with hung_task_panic=1 the next report panics into kdump."""
    start = time.monotonic()
    boot2.sh(f"sysctl -q kernel.hung_task_timeout_secs={HUNG_TASK_TIMEOUT_S} "
             "kernel.hung_task_panic=0 kernel.hung_task_warnings=-1", 30).check()
    boot2.sh(f"rm -f /tmp/incident-*; cat > /tmp/incident-writer.py <<'PY'\n{WRITER}\nPY", 30
             ).check()
    boot2.sh("(setsid python3 /tmp/incident-writer.py "
             ">/tmp/incident-writer.out 2>&1 &)", 30).check()
    boot2.wait_for("the writer wrote 32 MiB", lambda: boot2.sh(
        "test -e /tmp/incident-written", 30).rc == 0, 120, 1)
    boot2.sh(NFT_ADD, 60).check()
    stalled = run.wait_alert("NFSMountStalled", "firing", STALL_TIMEOUT_S, mountpoint="/mnt/nfs42")
    paged_at = time.monotonic()
    run.timings["incident_stall_to_page"] = paged_at - start
    run.notes["incident_stalled_alert"] = stalled["labels"]

    boot2.sh("touch /tmp/incident-fsync", 30).check()

    def hung_seen() -> dict[str, float] | None:
        samples, _ = run.scrape()
        counted = value(samples, "panicwatch_kernel_log_events_total", event="hung_task",
                        server="") or 0
        blocked = {w: value(samples, "panicwatch_blocked_tasks", wait=w) or 0
                   for w in ("nfs", "rpc", "other")}
        return {"hung_task_events": counted, **blocked} if counted >= 1 else None

    seen = boot2.wait_for("the kernel log collector counts the hung task", hung_seen,
                          HUNG_TASK_WAIT_S, 3)
    run.timings["incident_page_to_hung_task"] = time.monotonic() - paged_at
    run.notes["incident_hung_state"] = seen
    log = boot2.sh("dmesg | grep -A30 'blocked for more than' | head -60", 30).stdout
    run.notes["incident_hung_report"] = log.splitlines()[:40]
    assert "python3" in log, log
    # Under the shipped unit blocked_tasks has wchan only (the kernel shows /proc/<pid>/stack to
    # CAP_SYS_ADMIN alone, which the unit does not grant). The fsync thread waits for NFS
    # writeback in the page cache (wchan folio_wait_bit_common, shared by every filesystem), so
    # it counts as "other"; the canary's stalled probes wait in an RPC. Run as root, the same
    # exporter reads the thread's stack and finds the NFS client in it.
    assert seen["other"] >= 1 and seen["rpc"] >= 1, seen
    as_root = scrape_text(boot2.sh(f"{PANICWATCH} metrics", 120).check().stdout)
    run.notes["incident_blocked_as_root"] = {
        w: value(as_root, "panicwatch_blocked_tasks", wait=w) for w in ("nfs", "rpc", "other")}
    assert (value(as_root, "panicwatch_blocked_tasks", wait="nfs") or 0) >= 1, \
        run.notes["incident_blocked_as_root"]
    lockup = run.wait_alert("KernelLockupDetected", "firing", ALERT_TIMEOUT_S)
    run.notes["incident_lockup_alert"] = lockup["labels"]

    boot2.sh("sysctl -q kernel.hung_task_panic=1", 30).check()
    # the lead time: from the NFSMountStalled page to the panic
    run.timings["incident_lead_time"] = wait_panic(run, boot2, "incident", paged_at)


# The crash on the console: panic()'s line or, for an oops with kdump loaded (oops_end() calls
# crash_kexec() before panic() could print), the capture kernel's command line.
CRASHED = re.compile(r"Kernel panic - not syncing|Command line: .*elfcorehdr=")


def wait_panic(run: Run, guest: vm.Guest, name: str, since: float) -> float:
    """Until the console shows the crash, then until the capture kernel saved the dump and
    QEMU exited; both stages timed from ``since``. Returns the seconds to the crash."""
    deadline = time.monotonic() + PANIC_TIMEOUT_S
    while not CRASHED.search(guest.serial.read_text(errors="replace")):
        assert time.monotonic() < deadline, guest.serial_tail()
        time.sleep(0.5)
    to_panic = run.timings[f"{name}_to_panic"] = time.monotonic() - since
    guest.wait_exit(PANIC_TIMEOUT_S)
    run.timings[f"{name}_panic_and_capture"] = time.monotonic() - since
    return to_panic


def next_boot(run: Run, before: vm.Guest, name: str) -> vm.Guest:
    assert not before.alive(), f"{before.name} did not panic"
    return run.boot(name)


def newest_crash(run: Run, guest: vm.Guest, kind: str, fixture: str,
                 panicked: bool = True) -> dict[str, Any]:
    """After a crash: triage names the newest dump's crash with ``kind`` (``panicked``: the log
    holds panic()'s line), the collector and the page say the same title, and the log kdump
    saved becomes a fixture (see test_save_fixtures for when). Returns triage's JSON of it."""
    kernel = guest.boot["kernel"]
    # kept first, so a log that fails the checks below is there to read
    saved = guest.sh("cat $(ls -d /var/crash/2*/ | sort | tail -1)dmesg.*", 60).check().stdout
    dest = FIXTURES / kernel / "crashes" / f"{fixture}.dmesg"
    if os.environ.get("PANICWATCH_E2E_SAVE_FIXTURES") == "1" or not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(saved)
    got = json.loads(guest.sh(f"{PANICWATCH} triage --format json", 120).check()
                     .stdout.splitlines()[0])  # newest first
    run.notes[f"{fixture}_triage"] = {k: got[k] for k in (
        "title", "kind", "function", "module", "tainted", "comm", "stack", "panic_message")}
    assert (got["kind"], got["kernel_release"], got["panicked"]) == (kind, kernel, panicked), got

    samples, _ = run.scrape()
    last = [dict(k) for k in names(samples, "panicwatch_last_panic_info")]
    assert [(i["kind"], i["title"], i["kernel_release"]) for i in last] == [
        (kind, got["title"], kernel)], last
    page = run.wait_alert("HostPanicked", "firing", title=got["title"])
    assert got["title"] in page["annotations"]["description"], page
    assert page["labels"].get("module", "") == (got["module"] or ""), page

    return got


@pytest.fixture(scope="module")
def boot3(run: Run, boot2: vm.Guest) -> vm.Guest:
    return next_boot(run, boot2, "boot3")


def test_incident_dump_names_the_hung_task(run: Run, boot3: vm.Guest) -> None:
    with timed(run, "scenario6_after_panic"):
        got = newest_crash(run, boot3, "hung_task", "hung_task_nfs")
        assert got["title"] == f"INFO: task hung in {got['function']}", got
        # the culprit is in the NFS client or the writeback path it waits on
        assert got["module"] in ("nfs", "nfsv4", "sunrpc") or re.search(
            r"nfs|writeback|sync|filemap", got["function"] or ""), got


# --- scenario 7: a soft lockup, counted, then one that panics --------------------------------

CRASHTEST = f"/sys/kernel/debug/{image_mod.MODULE}"
WATCHDOG_THRESH_S = 5  # a soft lockup is reported after 2 x watchdog_thresh
SOFT_LOCKUP_SPIN_S = 16  # one report, and short of an RCU stall (CONFIG_RCU_CPU_STALL_TIMEOUT 21)


def load_crashtest(guest: vm.Guest) -> str:
    """Loads the test module; returns the kernel's taint mask after it."""
    guest.sh(f"modprobe {image_mod.MODULE} && test -e {CRASHTEST}/softlockup", 60).check()
    return guest.read("/proc/sys/kernel/tainted").strip()


def test_soft_lockup(run: Run, boot3: vm.Guest) -> None:
    taint = int(load_crashtest(boot3))
    assert taint & (1 << 12), f"an out-of-tree module taints O (bit 12): {taint}"
    boot3.sh(f"sysctl -q kernel.watchdog_thresh={WATCHDOG_THRESH_S} kernel.softlockup_panic=0",
             30).check()
    start = time.monotonic()
    boot3.sh(f"echo {SOFT_LOCKUP_SPIN_S} > {CRASHTEST}/softlockup", 30).check()

    def counted() -> float | None:
        samples, _ = run.scrape()
        n = value(samples, "panicwatch_kernel_log_events_total", event="soft_lockup", server="")
        return n if n else None

    run.notes["soft_lockup_events"] = boot3.wait_for(
        "the kernel log collector counts the soft lockup", counted, ALERT_TIMEOUT_S, 3)
    run.timings["scenario7_lockup_to_counted"] = time.monotonic() - start
    page = run.wait_alert("KernelLockupDetected", "firing", kind="soft_lockup")
    run.notes["soft_lockup_alert"] = page["labels"]
    report = boot3.sh("dmesg | grep -A3 'soft lockup'", 30).stdout
    run.notes["soft_lockup_report"] = report.splitlines()[:8]
    assert re.search(r"watchdog: BUG: soft lockup - CPU#\d+ stuck for \d+s! \[pw_spin:\d+\]",
                     report), report
    # the host lived through it: with softlockup_panic=0 nothing else happens

    boot3.sh("sysctl -q kernel.softlockup_panic=1", 30).check()
    start = time.monotonic()
    boot3.sh(f"echo 120 > {CRASHTEST}/softlockup", 30).check()
    wait_panic(run, boot3, "scenario7", start)


@pytest.fixture(scope="module")
def boot4(run: Run, boot3: vm.Guest) -> vm.Guest:
    return next_boot(run, boot3, "boot4")


def test_soft_lockup_dump(run: Run, boot4: vm.Guest) -> None:
    with timed(run, "scenario7_after_panic"):
        got = newest_crash(run, boot4, "soft_lockup", "soft_lockup")
        assert got["module"] == image_mod.MODULE, got
        assert got["title"] == f"BUG: soft lockup in {got['function']}", got
        assert got["function"].startswith("pw_spin"), got
        assert "O" in (got["tainted"] or ""), got  # the out-of-tree module


# --- scenario 8: an oops with panic_on_oops ---------------------------------------------------


def test_oops(run: Run, boot4: vm.Guest) -> None:
    load_crashtest(boot4)
    # panic_on_warn=0: a WARN() is counted and the host goes on
    boot4.sh(f"sysctl -q kernel.panic_on_warn=0; echo 1 > {CRASHTEST}/warn", 30).check()
    run.notes["warning_events"] = boot4.wait_for("the kernel log collector counts the warning", lambda: value(
        run.scrape()[0], "panicwatch_kernel_log_events_total", event="warning", server=""),
        ALERT_TIMEOUT_S, 3)
    boot4.sh("sysctl -q kernel.panic_on_oops=1", 30).check()
    start = time.monotonic()
    boot4.sh(f"(sleep 1; echo 1 > {CRASHTEST}/null_deref) >/dev/null 2>&1 &", 30).check()
    wait_panic(run, boot4, "scenario8", start)


@pytest.fixture(scope="module")
def boot5(run: Run, boot4: vm.Guest) -> vm.Guest:
    return next_boot(run, boot4, "boot5")


def test_oops_dump(run: Run, boot5: vm.Guest) -> None:
    with timed(run, "scenario8_after_panic"):
        # panic_on_oops with kdump loaded: the capture kernel runs before panic() would print
        got = newest_crash(run, boot5, "null_pointer", "null_deref", panicked=False)
        # syzbot's wording for this header, kept so its titles match
        assert (got["title"], got["function"], got["module"]) == (
            "BUG: unable to handle kernel NULL pointer dereference in pw_null_deref",
            "pw_null_deref", image_mod.MODULE), got
        # the WARNING before it was survived (its trace ended): the dump is the oops's
        assert "W" in got["tainted"], got


# --- scenario 9: out of memory with panic_on_oom ----------------------------------------------

# Memory the kernel must really give: MAP_POPULATE faults every page in at mmap() time, in the
# kernel, several times faster under emulation than Python writing the pages itself.
HOG = """
import mmap
chunks = []
while True:
    chunks.append(mmap.mmap(-1, 64 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
                            | mmap.MAP_POPULATE))
"""


def test_oom(run: Run, boot5: vm.Guest) -> None:
    boot5.sh(f"sysctl -q vm.panic_on_oom=1; cat > /tmp/hog.py <<'PY'\n{HOG}\nPY", 30).check()
    start = time.monotonic()
    boot5.sh("(setsid python3 /tmp/hog.py >/dev/null 2>&1 &)", 30).check()
    wait_panic(run, boot5, "scenario9", start)


@pytest.fixture(scope="module")
def boot6(run: Run, boot5: vm.Guest) -> vm.Guest:
    return next_boot(run, boot5, "boot6")


def test_oom_dump(run: Run, boot6: vm.Guest) -> None:
    with timed(run, "scenario9_after_panic"):
        got = newest_crash(run, boot6, "oom", "oom")
        assert "panic_on_oom" in (got["panic_message"] or ""), got
        samples, _ = run.scrape()
        assert value(samples, "panicwatch_vmcores") == 5  # sysrq, hung task, lockup, oops, OOM
