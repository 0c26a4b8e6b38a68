"""`panicwatch check` / `metrics` and the flags, run as real subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import trees

PANICWATCH = [sys.executable, "-m", "panicwatch"]


def run(*args: str, env: dict[str, str] | None = None,
        user: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [*PANICWATCH, *args]
    if user:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = str(Path(__file__).parents[1] / "exporter")
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=60)


def check_json(root: Path, *extra: str) -> tuple[int, dict]:
    r = run("check", "--path.rootfs", str(root), "--format", "json", *extra)
    return r.returncode, json.loads(r.stdout)


def by_name(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


def test_check_ready_exits_0(tree):
    code, report = check_json(tree("rhel9_armed"), "--kdump.min-free-ratio", "0")
    assert code == 0
    assert report["ready"] is True
    assert {c["status"] for c in report["checks"]} == {"pass"}


def test_check_disarmed_ubuntu_gives_fixes_and_exits_1(tree):
    root = tree("ubuntu_disarmed")
    r = run("check", "--path.rootfs", str(root), "--kdump.min-free-ratio", "0")
    assert r.returncode == 1
    assert "FAIL  crash_kernel_loaded" in r.stdout
    assert ("fix: set USE_KDUMP=1 in /etc/default/kdump-tools && "
            "systemctl enable kdump-tools.service && systemctl restart kdump-tools.service"
            ) in r.stdout
    assert "fix: sysctl -w kernel.softlockup_panic=1" in r.stdout
    assert r.stdout.rstrip().endswith("NOT READY: 2 critical check(s) failed; "
                                      "a panic now may leave no dump")


def test_check_reservation_failed_says_what_to_set(tree):
    code, report = check_json(tree("debian_reservation_failed"), "--kdump.min-free-ratio", "0")
    assert code == 1
    c = by_name(report)["crash_memory_reserved"]
    assert c["status"] == "fail"
    assert c["detail"].startswith("crashkernel=512M asks for 512 MiB but nothing is reserved")
    assert "crashkernel=512M in GRUB_CMDLINE_LINUX_DEFAULT" in c["fix"]


def test_check_no_crashkernel_recommends_the_distribution_table(tree):
    root = tree("rhel9_armed")
    (root / "proc/cmdline").write_text("ro quiet\n")
    (root / "sys/kernel/kexec_crash_size").write_text("0\n")
    (root / "sys/kernel/kexec_crash_loaded").write_text("0\n")
    (root / "proc/iomem").write_text(trees.IOMEM_16G.replace("  2b000000-3affffff : Crash kernel\n", ""))
    code, report = check_json(root, "--kdump.min-free-ratio", "0")
    assert code == 1
    c = by_name(report)["crash_memory_reserved"]
    assert c["fix"] == ('grubby --update-kernel=ALL --args="crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M" '
                        "&& reboot")


def test_check_too_small_machine(tree):
    code, report = check_json(tree("too_small"), "--kdump.min-free-ratio", "0")
    assert code == 1
    checks = by_name(report)
    assert checks["crash_memory_reserved"]["status"] == "pass"
    assert "asks for nothing on this machine's 768 MiB RAM" in checks["crash_memory_reserved"]["detail"]
    assert checks["crash_kernel_loaded"]["status"] == "fail"
    # a plain size, since no range of the table applies to this RAM
    assert checks["crash_kernel_loaded"]["fix"] == (
        'grubby --update-kernel=ALL --args="crashkernel=256M" && reboot; then '
        "systemctl restart kdump.service")  # enabled already: only the load is missing


def test_check_fadump_ready(tree):
    code, report = check_json(tree("ppc64le_fadump"), "--kdump.min-free-ratio", "0")
    assert code == 0
    assert by_name(report)["crash_kernel_loaded"]["detail"] == "fadump registered"


def test_check_vmcores_pending_is_a_warning(tree):
    code, report = check_json(tree("ubuntu_armed_dumps"), "--kdump.min-free-ratio", "0")
    assert code == 0
    c = by_name(report)["no_vmcore_pending"]
    assert c["status"] == "fail" and c["severity"] == "warning"
    assert c["detail"] == "1 dump(s) waiting in /var/crash, newest 202405010312"
    # kdump-tools names its dump dump.<stamp>, not vmcore (found in the real-kernel e2e)
    assert c["fix"] == ("read it (crash vmlinux /var/crash/202405010312/dump.202405010312 or "
                        "less /var/crash/202405010312/dmesg.202405010312), then move it off "
                        "the host or delete it")


def test_check_vmcore_fix_names_the_newest_dump_file(tree):
    _, report = check_json(tree("fedora_vmcores"), "--kdump.min-free-ratio", "0")
    d = "/var/crash/127.0.0.1-2024-05-02-10:00:00"
    assert by_name(report)["no_vmcore_pending"]["fix"] == (
        f"read it (crash vmlinux {d}/vmcore or less {d}/vmcore-dmesg.txt), then move it off "
        "the host or delete it")


def test_check_cannot_run_exits_2(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run("check", "--path.rootfs", str(empty))
    assert r.returncode == 2
    assert "could not run" in r.stderr
    assert "cmdline" in r.stderr


def test_check_as_unprivileged_user(tree):
    # Real permission denied: run as nobody on a copy of the tree that nobody can traverse.
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root to drop to nobody")
    base = Path(tempfile.mkdtemp(prefix="panicwatch-"))
    try:
        base.chmod(0o755)
        root = trees.build("unprivileged", base / "root")
        r = run("check", "--path.rootfs", str(root), "--format", "json",
                "--kdump.min-free-ratio", "0", user="65534")
        assert r.returncode == 0, r.stderr
        report = json.loads(r.stdout)
        # the low part of ,high is invisible (zeroed iomem, old kexec_crash_size): not a failure
        assert by_name(report)["crash_memory_reserved"]["status"] == "pass"
        assert report["problems"] == [
            f"{root}/var/lib/kdump/vmcore-creation.status: Permission denied"]
    finally:
        shutil.rmtree(base)


def test_flags_after_the_subcommand_and_collector_switches(tree):
    root = tree("rhel9_armed")
    r = run("metrics", "--path.rootfs", str(root), "--no-collector.kernel",
            "--no-collector.readiness")
    assert r.returncode == 0
    assert 'panicwatch_collector_success{collector="kdump"} 1.0' in r.stdout
    assert 'collector="kernel"' not in r.stdout
    assert "panicwatch_kernel_panic_setting" not in r.stdout


def test_flags_before_the_subcommand(tree):
    r = run("--path.rootfs", str(tree("rhel9_armed")), "metrics")
    assert r.returncode == 0
    assert "panicwatch_kdump_loaded 1.0" in r.stdout


def test_environment_variables(tree):
    root = tree("rhel9_armed")
    r = run("metrics", env={"PANICWATCH_PATH_ROOTFS": str(root),
                            "PANICWATCH_COLLECTOR_VMCORES": "false"})
    assert r.returncode == 0
    assert "panicwatch_kdump_loaded 1.0" in r.stdout
    assert 'collector="vmcores"' not in r.stdout


@pytest.mark.parametrize(("args", "env", "message"), [
    (["serve", "--web.listen-address", "nonsense"], {},
     "--web.listen-address (or PANICWATCH_WEB_LISTEN_ADDRESS): 'nonsense' is not [host]:port"),
    (["metrics", "--path.rootfs", "/does/not/exist"], {},
     "--path.rootfs: /does/not/exist is not a directory"),
    (["check", "--kdump.min-free-ratio", "2"], {},
     "--kdump.min-free-ratio (or PANICWATCH_KDUMP_MIN_FREE_RATIO): must be between 0 and 1"),
    (["metrics"], {"PANICWATCH_COLLECTOR_KDUMP": "maybe"},
     "--collector.kdump (or PANICWATCH_COLLECTOR_KDUMP)"),
    (["check", "--format", "xml"], {}, "--format (or PANICWATCH_FORMAT)"),
])
def test_invalid_settings_are_one_line_and_exit_2(args, env, message):
    r = run(*args, env=env)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_help_lists_flags_with_defaults():
    r = run("serve", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    assert "--web.listen-address LISTEN_ADDRESS Address to listen on for HTTP requests. " \
        "(default: :10110; env PANICWATCH_WEB_LISTEN_ADDRESS)" in text
    assert "--collector.kdump, --no-collector.kdump" in text


def test_check_kernel_without_crash_dump_support(tree):
    root = tree("rhel9_armed")
    (root / "sys/kernel/kexec_crash_loaded").unlink()
    (root / "sys/kernel/kexec_crash_size").unlink()
    code, report = check_json(root, "--kdump.min-free-ratio", "0")
    assert code == 1
    c = by_name(report)["crash_kernel_loaded"]
    assert c["detail"] == "this kernel has no crash dump support (no /sys/kernel/kexec_crash_loaded)"
    assert c["fix"].startswith("boot a kernel built with CONFIG_KEXEC and CONFIG_CRASH_DUMP")
