"""Recover the kernel log from a vmcore whose capture saved none: a person asks for it
(``triage --extract``), never a scrape (it reads the whole dump and can take minutes)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

TIMEOUT_SECONDS = 600
SAVED_NAME = "vmcore-dmesg.txt"  # the name RHEL's kdump gives it; the collector finds it
# kdump-tools saves `makedumpfile -F` output (the "flattened" format, for pipes), which
# --dump-dmesg cannot read until `makedumpfile -R` reassembles it.
FLATTENED_MAGIC = b"makedumpfile"


def is_flattened(core: Path) -> bool:
    with open(core, "rb") as f:
        return f.read(len(FLATTENED_MAGIC)) == FLATTENED_MAGIC


def extractors() -> list[list[str]]:
    """Installed tools that print a vmcore's kernel log, best first, as argv prefixes."""
    found = []
    if shutil.which("makedumpfile"):
        found.append(["makedumpfile", "--dump-dmesg"])
    if shutil.which("vmcore-dmesg"):
        found.append(["vmcore-dmesg"])
    return found


def extract_log(core: Path) -> tuple[Path | None, str]:
    """Extract core's kernel log beside it (or in a temporary file when the dump directory
    is not writable). Returns (the file, what happened)."""
    tools = extractors()
    if not tools:
        return None, ("neither makedumpfile nor vmcore-dmesg is installed "
                      "(Debian: kdump-tools; RHEL: kexec-tools)")
    target = core.parent / SAVED_NAME
    if not os.access(core.parent, os.W_OK):
        fd, name = tempfile.mkstemp(prefix="panicwatch-dmesg-", suffix=".txt")
        os.close(fd)
        target = Path(name)
    with tempfile.TemporaryDirectory(prefix="panicwatch-vmcore-") as scratch:
        source, how = core, ""
        try:
            if is_flattened(core):
                source, how = Path(scratch) / "vmcore", " (reassembled with makedumpfile -R)"
                _reassemble(core, source)
        except (OSError, subprocess.SubprocessError) as e:
            return None, f"reassembling the flattened dump failed: {e}"
        failures = []
        for tool in tools:
            failure = _run(tool, source, target)
            if failure is None:
                return target, f"extracted with {tool[0]}{how} to {target}"
            failures.append(failure)
    return None, "; ".join(failures)


def _reassemble(core: Path, into: Path) -> None:
    if not shutil.which("makedumpfile"):
        raise OSError("makedumpfile is needed to reassemble it")
    with open(core, "rb") as flat:
        done = subprocess.run(["makedumpfile", "-R", str(into)], stdin=flat, capture_output=True,
                              timeout=TIMEOUT_SECONDS, check=False)
    if done.returncode != 0:
        raise OSError(_last_line(done.stderr) or f"makedumpfile -R exited {done.returncode}")


def _last_line(output: bytes) -> str:
    lines = output.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else ""


def _run(tool: list[str], core: Path, target: Path) -> str | None:
    """None when the tool wrote the log, else what went wrong."""
    try:
        if tool[0] == "makedumpfile":
            target.unlink(missing_ok=True)  # makedumpfile refuses to overwrite
            done = subprocess.run([*tool, str(core), str(target)], capture_output=True,
                                  timeout=TIMEOUT_SECONDS, check=False)
        else:
            with open(target, "wb") as out:
                done = subprocess.run([*tool, str(core)], stdout=out, stderr=subprocess.PIPE,
                                      timeout=TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{tool[0]}: {e}"
    if done.returncode == 0 and target.exists() and target.stat().st_size > 0:
        return None
    error = _last_line(done.stderr)
    return f"{tool[0]} exited {done.returncode}" + (f": {error}" if error else "")
