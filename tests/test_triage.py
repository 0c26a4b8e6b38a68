"""`panicwatch triage`: the crash in each dump or log, as text or JSON, with its exit code."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from panicwatch.cli import main
from trees import DMESG_NULL_DEREF, DMESG_SOFT_LOCKUP, MiB

NULL_TITLE = "BUG: unable to handle kernel NULL pointer dereference in nfs4_do_close"


def triage(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["triage", *args])
    return code, capsys.readouterr().out


def json_lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_host_dumps_newest_first_as_json(tree, capsys) -> None:
    root = tree("sles_dumps")
    code, out = triage(capsys, "--path.rootfs", str(root), "--format", "json")
    first, second = json_lines(out)
    assert code == 0
    assert first["title"] == NULL_TITLE
    assert (first["kind"], first["function"], first["module"]) == (
        "null_pointer", "nfs4_do_close", "nfsv4")
    assert (first["kernel_release"], first["tainted"], first["comm"], first["pid"]) == (
        "5.14.21-150500.55.39-default", "", "kworker/3:1", 2211)
    assert first["stack"] == ["nfs4_do_close"]
    assert first["source"] == str(root / "var/crash/2024-05-03-21-07/dmesg")
    assert first["dump_file"] == str(root / "var/crash/2024-05-03-21-07/vmcore")
    assert first["dump_bytes"] == 30 * MiB
    assert first["captured"] == 1714770420
    assert (first["panicked"], first["panic_message"]) == (True, "Fatal exception")
    assert len(str(first["signature"])) == 12
    assert second["title"] == "kernel panic: sysrq triggered crash"
    assert second["kind"] == "sysrq"


def test_text_block_names_what_to_read(tree, capsys) -> None:
    root = tree("sles_dumps")
    code, out = triage(capsys, str(root / "var/crash/2024-05-03-21-07"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == NULL_TITLE
    rows = {line[2:13].strip(): line[13:] for line in lines[1:] if line[2:13].strip()}
    assert rows["kind"] == "null_pointer (panicked: Fatal exception)"
    assert rows["kernel"] == "5.14.21-150500.55.39-default, not tainted"
    assert rows["culprit"] == "nfs4_do_close [nfsv4]"
    assert rows["task"] == "kworker/3:1 (pid 2211)"
    assert rows["stack"] == "nfs4_do_close  <- culprit"
    assert rows["read"] == str(root / "var/crash/2024-05-03-21-07/dmesg")
    assert rows["dump"] == str(root / "var/crash/2024-05-03-21-07/vmcore") + " (30.0 MiB)"
    assert rows["search"] == ("https://lore.kernel.org/all/?q=%22BUG%3A%20unable%20to%20handle%20"
                              "kernel%20NULL%20pointer%20dereference%20in%20nfs4_do_close%22")
    assert "512 s after boot" in rows["when"]


def test_several_inputs_in_order_and_exit_codes(tmp_path, capsys) -> None:
    crash = tmp_path / "console.log"
    crash.write_text("[    1.0] booting\n" + DMESG_SOFT_LOCKUP)
    quiet = tmp_path / "quiet.log"
    quiet.write_text("[    1.000000] Linux version 6.1.0-13-amd64\n[    2.0] all fine\n")
    code, out = triage(capsys, "--format", "json", str(crash), str(quiet))
    got = json_lines(out)
    assert code == 1  # one input held no crash
    assert [g["title"] for g in got] == ["BUG: soft lockup in nfs_access_get_cached", None]
    assert [g["source"] for g in got] == [str(crash), str(quiet)]
    assert got[0]["tainted"] == "" and got[0]["module"] == "nfs"

    code, out = triage(capsys, "--format", "json", str(crash), str(tmp_path / "missing"))
    got = json_lines(out)
    assert code == 2  # unreadable input
    assert got[1]["title"] is None and "No such file or directory" in str(got[1]["error"])

    code, out = triage(capsys, str(crash))
    assert code == 0 and out.startswith("BUG: soft lockup in nfs_access_get_cached\n")


def test_usage_error_is_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["triage", "--format", "yaml"])
    assert exited.value.code == 2


def test_no_dumps_is_said(tree, capsys) -> None:
    code, out = triage(capsys, "--path.rootfs", str(tree("debian_reservation_failed")))
    assert (code, out) == (0, "no crash dumps waiting\n")


def test_dump_without_a_log_says_so(tmp_path, capsys) -> None:
    dump = tmp_path / "202405010312"
    dump.mkdir()
    (dump / "dump.202405010312").write_bytes(b"\0" * 4096)
    code, out = triage(capsys, str(dump))
    assert code == 1
    assert out.splitlines()[0] == f"no crash report in {dump}"
    assert "no saved kernel log (vmcore-dmesg or makedumpfile --dump-dmesg failed); run with " \
           "--extract to read it from the dump" in out


def _fake_tool(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)


def triage_extract(dump: Path, bin_dir: Path, *args: str,
                   path: str | None = None) -> subprocess.CompletedProcess[str]:
    """`panicwatch triage --extract` with the stand-in tools of bin_dir first on PATH."""
    env = {**os.environ, "PATH": f"{bin_dir}:{path or os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", "panicwatch", "triage", "--extract", *args,
                           str(dump)], capture_output=True, text=True, env=env, timeout=60,
                          check=False)


def test_extract_reads_the_log_out_of_the_dump(tmp_path) -> None:
    # makedumpfile --dump-dmesg VMCORE OUT: here a stand-in that writes the log it was given
    # in the "vmcore", to check the call, the file it leaves and what triage makes of it.
    dump = tmp_path / "202405031907"
    dump.mkdir()
    (dump / "dump.202405031907").write_text(DMESG_NULL_DEREF)
    bin_dir = tmp_path / "bin"
    _fake_tool(bin_dir, "makedumpfile",
               "assert sys.argv[1] == '--dump-dmesg', sys.argv\n"
               "open(sys.argv[3], 'w').write(open(sys.argv[2]).read())")
    done = triage_extract(dump, bin_dir, "--format", "json")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["title"] == NULL_TITLE
    assert got["source"] == str(dump / "vmcore-dmesg.txt")
    assert got["note"] == f"extracted with makedumpfile to {dump / 'vmcore-dmesg.txt'}"
    assert (dump / "vmcore-dmesg.txt").read_text() == DMESG_NULL_DEREF


def test_extract_failure_is_reported(tmp_path) -> None:
    dump = tmp_path / "202405031907"
    dump.mkdir()
    (dump / "dump.202405031907").write_bytes(b"not a vmcore")
    bin_dir = tmp_path / "bin"
    _fake_tool(bin_dir, "makedumpfile", "print('makedumpfile: not an ELF file', file=sys.stderr)\n"
               "sys.exit(1)")
    done = triage_extract(dump, bin_dir, path="/usr/bin:/bin")
    assert done.returncode == 1
    assert "extraction failed: makedumpfile exited 1: makedumpfile: not an ELF file" in done.stdout


def test_extract_reassembles_a_flattened_dump_first(tmp_path) -> None:
    # kdump-tools pipes `makedumpfile -F` into the dump file: --dump-dmesg needs it
    # reassembled (`makedumpfile -R OUT < FLAT`). The stand-in keeps that contract: it only
    # dumps the log of a file that does not start with the flattened magic.
    dump = tmp_path / "202405031907"
    dump.mkdir()
    (dump / "dump.202405031907").write_text("makedumpfile" + DMESG_NULL_DEREF)
    bin_dir = tmp_path / "bin"
    _fake_tool(bin_dir, "makedumpfile",
               "if sys.argv[1] == '-R':\n"
               "    data = sys.stdin.read()\n"
               "    assert data.startswith('makedumpfile')\n"
               "    open(sys.argv[2], 'w').write(data.removeprefix('makedumpfile'))\n"
               "else:\n"
               "    data = open(sys.argv[2]).read()\n"
               "    if data.startswith('makedumpfile'):\n"
               "        sys.exit('check_elf_format: Can\\'t get valid ehdr.')\n"
               "    open(sys.argv[3], 'w').write(data)")
    done = triage_extract(dump, bin_dir, "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    got = json.loads(done.stdout)
    assert got["title"] == NULL_TITLE
    assert got["note"] == ("extracted with makedumpfile (reassembled with makedumpfile -R) to "
                           f"{dump / 'vmcore-dmesg.txt'}")
