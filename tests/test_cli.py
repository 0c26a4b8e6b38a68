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
    code, report = check_json(tree("rhel9_armed"), "--collector.kdump.min-free-ratio", "0")
    assert code == 0
    assert report["ready"] is True
    assert {c["status"] for c in report["checks"]} == {"pass"}


def test_check_disarmed_ubuntu_gives_fixes_and_exits_1(tree):
    root = tree("ubuntu_disarmed")
    r = run("check", "--path.rootfs", str(root), "--collector.kdump.min-free-ratio", "0")
    assert r.returncode == 1
    assert "FAIL  crash_kernel_loaded" in r.stdout
    assert ("fix: set USE_KDUMP=1 in /etc/default/kdump-tools && "
            "systemctl enable kdump-tools.service && systemctl restart kdump-tools.service"
            ) in r.stdout
    assert "fix: sysctl -w kernel.softlockup_panic=1" in r.stdout
    assert r.stdout.endswith("\nNOT READY: 2 critical check(s) failed; a panic now may leave no "
                             "dump\nNFS: no NFS mounts\n")


def test_check_reservation_failed_says_what_to_set(tree):
    code, report = check_json(tree("debian_reservation_failed"), "--collector.kdump.min-free-ratio", "0")
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
    code, report = check_json(root, "--collector.kdump.min-free-ratio", "0")
    assert code == 1
    c = by_name(report)["crash_memory_reserved"]
    assert c["fix"] == ('grubby --update-kernel=ALL --args="crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M" '
                        "&& reboot")


def test_check_too_small_machine(tree):
    code, report = check_json(tree("too_small"), "--collector.kdump.min-free-ratio", "0")
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
    code, report = check_json(tree("ppc64le_fadump"), "--collector.kdump.min-free-ratio", "0")
    assert code == 0
    assert by_name(report)["crash_kernel_loaded"]["detail"] == "fadump registered"


def test_check_vmcores_pending_is_a_warning(tree):
    code, report = check_json(tree("ubuntu_armed_dumps"), "--collector.kdump.min-free-ratio", "0")
    assert code == 0
    c = by_name(report)["no_vmcore_pending"]
    assert c["status"] == "fail" and c["severity"] == "warning"
    assert c["detail"] == "1 dump(s) waiting in /var/crash, newest 202405010312"
    # kdump-tools names its dump dump.<stamp>, not vmcore (found in the real-kernel e2e)
    assert c["fix"] == ("see what crashed with `panicwatch triage`, read it (crash vmlinux "
                        "/var/crash/202405010312/dump.202405010312 or "
                        "less /var/crash/202405010312/dmesg.202405010312), then move it off "
                        "the host or delete it")


def test_check_vmcore_fix_names_the_newest_dump_file(tree):
    _, report = check_json(tree("fedora_vmcores"), "--collector.kdump.min-free-ratio", "0")
    d = "/var/crash/127.0.0.1-2024-05-02-10:00:00"
    assert by_name(report)["no_vmcore_pending"]["fix"] == (
        "see what crashed with `panicwatch triage`, "
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
                "--collector.kdump.min-free-ratio", "0", user="65534")
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
    (["check", "--collector.kdump.min-free-ratio", "2"], {},
     "--collector.kdump.min-free-ratio (or PANICWATCH_COLLECTOR_KDUMP_MIN_FREE_RATIO): "
     "must be between 0 and 1"),
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
    code, report = check_json(root, "--collector.kdump.min-free-ratio", "0")
    assert code == 1
    c = by_name(report)["crash_kernel_loaded"]
    assert c["detail"] == "this kernel has no crash dump support (no /sys/kernel/kexec_crash_loaded)"
    assert c["fix"].startswith("boot a kernel built with CONFIG_KEXEC and CONFIG_CRASH_DUMP")


# --- the spellings of older releases ------------------------------------------------------------


def settings_of(argv: list[str], monkeypatch: pytest.MonkeyPatch, env: dict[str, str]):
    from panicwatch import settings as settings_module
    from panicwatch.cli import build_parser, load_settings

    for name in [n for n in os.environ if n.startswith("PANICWATCH_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(settings_module, "DEPRECATED", [])
    from panicwatch import cli
    monkeypatch.setattr(cli, "DEPRECATED", settings_module.DEPRECATED)
    settings = load_settings(build_parser().parse_args(argv))
    return settings, list(settings_module.DEPRECATED)


@pytest.mark.parametrize(("argv", "env", "field", "expected", "deprecated"), [
    (["metrics", "--rpc.stuck-threshold", "7"], {}, "collector_rpc_stuck_threshold", 7.0,
     ["--rpc.stuck-threshold is deprecated: use --collector.rpc.stuck-threshold"]),
    (["check", "--kdump.min-free-ratio", "0.3"], {}, "collector_kdump_min_free_ratio", 0.3,
     ["--kdump.min-free-ratio is deprecated: use --collector.kdump.min-free-ratio"]),
    (["serve", "--canary.path", "/a", "--collector.canary.path", "/b", "--canary.path", "/c"], {},
     "collector_canary_path", [Path("/a"), Path("/b"), Path("/c")],
     ["--canary.path is deprecated: use --collector.canary.path"]),
    (["serve", "--no-collector.kernel-log"], {}, "collector_kernel_log", False,
     ["--no-collector.kernel-log is deprecated: use --no-collector.kernel_log"]),
    (["serve", "--collector.kernel-log"], {"PANICWATCH_COLLECTOR_KERNEL_LOG": "0"},
     "collector_kernel_log", True,
     ["--collector.kernel-log is deprecated: use --collector.kernel_log"]),
    (["metrics"], {"PANICWATCH_NFS_ALL_OPS": "true"}, "collector_nfs_all_ops", True,
     ["PANICWATCH_NFS_ALL_OPS is deprecated: use PANICWATCH_COLLECTOR_NFS_ALL_OPS"]),
    (["serve"], {"PANICWATCH_CANARY_PATH": '["/srv/a", "/srv/b"]'}, "collector_canary_path",
     [Path("/srv/a"), Path("/srv/b")],
     ["PANICWATCH_CANARY_PATH is deprecated: use PANICWATCH_COLLECTOR_CANARY_PATH"]),
    # the current name wins, and then the old one is not even read
    (["metrics"], {"PANICWATCH_RPC_STUCK_THRESHOLD": "5",
                   "PANICWATCH_COLLECTOR_RPC_STUCK_THRESHOLD": "9"},
     "collector_rpc_stuck_threshold", 9.0, []),
    # a flag beats any environment variable
    (["metrics", "--collector.rpc.stuck-threshold", "4"], {"PANICWATCH_RPC_STUCK_THRESHOLD": "5"},
     "collector_rpc_stuck_threshold", 4.0,
     ["PANICWATCH_RPC_STUCK_THRESHOLD is deprecated: use PANICWATCH_COLLECTOR_RPC_STUCK_THRESHOLD"]),
    (["metrics", "--collector.rpc.stuck-threshold", "4"], {}, "collector_rpc_stuck_threshold", 4.0, []),
])
def test_old_flags_and_variables_still_work(argv, env, field, expected, deprecated, monkeypatch):
    settings, noted = settings_of(argv, monkeypatch, env)
    assert getattr(settings, field) == expected
    assert noted == deprecated


def test_old_spellings_are_hidden_and_logged_once():
    r = run("serve", "--help")
    assert "--collector.rpc.stuck-threshold" in r.stdout and "--collector.kernel_log" in r.stdout
    assert "--rpc.stuck-threshold" not in r.stdout.replace("--collector.rpc.stuck-threshold", "")
    assert "kernel-log" not in r.stdout and "--canary." not in r.stdout
    r = run("metrics", "--path.rootfs", tempfile.gettempdir(), "--rpc.stuck-threshold", "3",
            "--rpc.stuck-threshold", "4", "--no-collector.kdump",
            env={"PANICWATCH_KDUMP_MIN_FREE_RATIO": "0.2"})
    assert r.returncode == 0
    warnings = [line for line in r.stderr.splitlines() if "deprecated" in line]
    assert warnings == [
        'time=' + w.split("time=", 1)[1] for w in warnings]  # the exporter's log format
    assert [w.split('msg="', 1)[1] for w in warnings] == [
        '--rpc.stuck-threshold is deprecated: use --collector.rpc.stuck-threshold"',
        'PANICWATCH_KDUMP_MIN_FREE_RATIO is deprecated: use '
        'PANICWATCH_COLLECTOR_KDUMP_MIN_FREE_RATIO"']


def test_check_with_a_dump_whose_name_is_not_utf8(tree):
    root = tree("fedora_vmcores")
    dump = root / os.fsdecode(b"var/crash/127.0.0.1-2024-05-02-\xe9t\xe9")
    dump.mkdir()
    (dump / "vmcore").write_bytes(b"\0" * 512)
    r = run("check", "--path.rootfs", str(root), "--collector.kdump.min-free-ratio", "0")
    assert (r.returncode, r.stderr) == (0, "")
    assert "3 dump(s) waiting in /var/crash" in r.stdout
    assert "newest 127.0.0.1-2024-05-02-\\xe9t\\xe9" in r.stdout
    _, report = check_json(root, "--collector.kdump.min-free-ratio", "0")
    assert "127.0.0.1-2024-05-02-\\xe9t\\xe9" in by_name(report)["no_vmcore_pending"]["detail"]
