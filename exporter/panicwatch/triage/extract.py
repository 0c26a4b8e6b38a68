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
    failures = []
    for tool in tools:
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
            failures.append(f"{tool[0]}: {e}")
            continue
        if done.returncode == 0 and target.exists() and target.stat().st_size > 0:
            return target, f"extracted with {tool[0]} to {target}"
        error = done.stderr.decode(errors="replace").strip().splitlines()
        failures.append(f"{tool[0]} exited {done.returncode}"
                        + (f": {error[-1]}" if error else ""))
    return None, "; ".join(failures)
