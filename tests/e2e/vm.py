"""Boot the e2e guest under QEMU (software emulation) and talk to it through the 9p share.

One `Guest` is one boot: its own directory with the serial log, QEMU's own output and the share
(mount_tag=share, /share in the guest). The host copies guest/agent.py into the share, and the
guest's pw-e2e-agent.service runs it; requests and answers are JSON files in share/req and
share/resp (see agent.py). Every wait has a deadline, and QEMU is always killed: by `close()`, by
an atexit hook, and by the kernel if this process dies (PR_SET_PDEATHSIG).

The disk is a qcow2 overlay on the cached raw image (`overlay()`), so the image stays clean and
two boots of one test run (before and after the panic) see the same disk.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from image import Image

E2E = Path(__file__).resolve().parent
AGENT = E2E / "guest" / "agent.py"
QEMU = "qemu-system-x86_64"
CMDLINE = "root=/dev/vda rw console=ttyS0,115200 crashkernel=256M panic=10"
AGENT_SLACK_S = 30  # on top of a request's own timeout: 9p polling and a busy TCG guest

_live: set[subprocess.Popen[bytes]] = set()


def _kill_all() -> None:
    for popen in list(_live):
        with contextlib.suppress(OSError):
            popen.kill()
            popen.wait(timeout=10)


atexit.register(_kill_all)


def _die_with_parent() -> None:
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def overlay(image: Image, path: Path) -> Path:
    """A copy-on-write qcow2 over the cached raw image."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image.disk), "-F", "raw",
                    str(path)], check=True, timeout=60)
    return path


def qemu_argv(image: Image, disk: Path, share: Path, serial: Path) -> list[str]:
    return [QEMU, "-accel", "tcg", "-cpu", "max", "-m", "2048", "-smp", "2", "-nographic",
            "-no-reboot", "-kernel", str(image.kernel), "-initrd", str(image.initrd),
            "-append", CMDLINE,
            "-drive", f"file={disk},format=qcow2,if=virtio",
            "-virtfs", f"local,path={share},mount_tag=share,security_model=none,id=share",
            "-nic", "none", "-serial", f"file:{serial}", "-display", "none", "-monitor", "none"]


class GuestError(AssertionError):
    pass


@dataclass
class Result:
    rc: int | None
    stdout: str
    stderr: str
    seconds: float

    def check(self) -> Result:
        if self.rc != 0:
            raise GuestError(f"guest command failed (rc {self.rc})\n--- stdout\n{self.stdout}"
                             f"\n--- stderr\n{self.stderr}")
        return self


@dataclass
class HttpResult:
    status: int | None
    body: str
    error: str | None
    seconds: float


class Guest:
    def __init__(self, image: Image, disk: Path, workdir: Path, name: str) -> None:
        self.image, self.disk, self.name = image, disk, name
        self.dir = workdir / name
        self.share = self.dir / "share"
        self.serial = self.dir / "serial.log"
        self.qemu_log = self.dir / "qemu.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self.boot: dict[str, Any] = {}
        self.started = 0.0
        self._ids = itertools.count(1)

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self.share.mkdir(parents=True, exist_ok=True)
        shutil.copy2(AGENT, self.share / "agent.py")
        argv = qemu_argv(self.image, self.disk, self.share, self.serial)
        (self.dir / "qemu.argv").write_text(json.dumps(argv))
        with open(self.qemu_log, "wb") as log:
            self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        _live.add(self.popen)
        self.started = time.monotonic()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        """Until the agent wrote boot.json; fails early if QEMU exits."""
        path = self.share / "boot.json"
        deadline = time.monotonic() + timeout
        while not path.exists():
            if not self.alive():
                raise GuestError(f"{self.name}: QEMU exited ({self.popen and self.popen.returncode}) "
                                 f"before the agent started\n{self.serial_tail()}")
            if time.monotonic() > deadline:
                raise GuestError(f"{self.name}: agent not up within {timeout:.0f} s\n"
                                 f"{self.serial_tail()}")
            time.sleep(0.5)
        self.boot = json.loads(path.read_text())
        return self.boot

    def wait_exit(self, timeout: float) -> int:
        assert self.popen is not None
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise GuestError(f"{self.name}: QEMU still running after {timeout:.0f} s\n"
                             f"{self.serial_tail()}") from None
        finally:
            if self.popen.poll() is not None:
                _live.discard(self.popen)

    def close(self) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=20)
        _live.discard(self.popen)

    def serial_tail(self, lines: int = 60) -> str:
        text = self.serial.read_text(errors="replace") if self.serial.exists() else ""
        return f"--- {self.serial} (last {lines} lines) ---\n" + "\n".join(text.splitlines()[-lines:])

    # --- requests ------------------------------------------------------------------------------

    def _request(self, req: dict[str, Any], timeout: float) -> dict[str, Any]:
        if not self.alive():
            raise GuestError(f"{self.name}: QEMU is not running\n{self.serial_tail()}")
        rid = f"{os.getpid()}-{next(self._ids):05}"
        (self.share / "req").mkdir(exist_ok=True)
        tmp = self.share / f".req-{rid}.tmp"
        tmp.write_text(json.dumps(req))
        tmp.rename(self.share / "req" / f"{rid}.json")
        answer = self.share / "resp" / f"{rid}.json"
        deadline = time.monotonic() + timeout + AGENT_SLACK_S
        while not answer.exists():
            if not self.alive():
                raise GuestError(f"{self.name}: QEMU exited while waiting for {req}\n"
                                 f"{self.serial_tail()}")
            if time.monotonic() > deadline:
                raise GuestError(f"{self.name}: no answer to {req} within "
                                 f"{timeout + AGENT_SLACK_S:.0f} s")
            time.sleep(0.1)
        return json.loads(answer.read_text())

    def sh(self, script: str, timeout: float = 60) -> Result:
        """Run a bash script in the guest (as root, cwd /share); rc None means it timed out."""
        r = self._request({"sh": script, "timeout": timeout}, timeout)
        if "error" in r and r.get("rc") is None and "stdout" not in r:
            raise GuestError(f"agent failed on {script!r}:\n{r['error']}")
        return Result(r["rc"], r["stdout"], r["stderr"], r["seconds"])

    def http(self, url: str, timeout: float = 10) -> HttpResult:
        """GET from inside the guest; `seconds` is the guest's own wall time of the request."""
        r = self._request({"http": url, "timeout": timeout}, timeout)
        return HttpResult(r.get("status"), r.get("body", ""), r.get("error"), r.get("seconds", 0.0))

    def read(self, path: str, timeout: float = 30) -> str:
        return self.sh(f"cat {path}", timeout).check().stdout

    def wait_for(self, what: str, ready: Callable[[], Any], timeout: float,
                 interval: float = 1.0) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            last = ready()
            if last:
                return last
            if time.monotonic() > deadline:
                raise GuestError(f"{self.name}: {what}: not within {timeout:.0f} s")
            if not self.alive():
                raise GuestError(f"{self.name}: QEMU exited while waiting for {what}\n"
                                 f"{self.serial_tail()}")
            time.sleep(interval)

    # --- artifacts -----------------------------------------------------------------------------

    def collect_diagnostics(self) -> None:
        """What the guest can still tell (journal, processes, mounts) into share/diag."""
        if not self.alive():
            return
        with contextlib.suppress(GuestError):
            self.sh("mkdir -p diag; journalctl -b --no-pager > diag/journal.txt 2>&1; "
                    "ps -eLo pid,tid,stat,wchan:32,etime,cmd > diag/ps.txt; "
                    "cat /proc/self/mountinfo > diag/mountinfo.txt; dmesg > diag/dmesg.txt; "
                    "systemctl --no-pager --failed > diag/failed-units.txt 2>&1; "
                    "nft list ruleset > diag/nft.txt 2>&1", timeout=60)
