#!/usr/bin/env python3
"""freezefs: a small read-only FUSE filesystem whose calls can be delayed or frozen at runtime.

The tests use it to make a mount hang for real: while it is frozen, every call into the mount
(stat, statvfs, open, read, readdir, ...) blocks in the kernel until it is thawed.

It runs as a separate process, so a hung filesystem never hangs the test process beyond the calls
that the test makes into the mount::

    python tests/freezefs.py MOUNTPOINT [--files N] [--max-freeze SECONDS] [--debug]

runs in the foreground, multithreaded, until SIGTERM/SIGINT, a ``quit`` command or EOF on stdin.
Tests use :func:`mounted_freezefs` instead, which starts, controls and always cleans up the process.

Tree (mode 0444 files, 0555 directories, all with mtime :data:`MTIME`)::

    /hello.txt   FILES["/hello.txt"]
    /dir/a       FILES["/dir/a"]
    /dir/b       FILES["/dir/b"] (64 KiB)
    /many/       N files f00000 .. f{N-1:05d}, see many_files()

statvfs of the mount answers :data:`STATFS`.

Control channel: stdin/stdout pipes of the process (never the mount itself, which may hang).
Each command is one line ``<seq> <command> [arg]`` and gets exactly one answer line
``<seq> ok <state as JSON>`` or ``<seq> err <message>``:

    delay <ms>   every later call first waits <ms> milliseconds (0: no delay)
    freeze       every call blocks and the kernel gets no reply, until thaw
    thaw         the blocked calls complete normally
    state        only report the state
    quit         thaw, unmount and exit

The state is ``{"frozen": bool, "delay_ms": float, "held": int, "auto_thaws": int,
"calls": {op: count}}`` where ``held`` counts calls currently waiting in the filesystem (frozen or
delayed) and ``auto_thaws`` the freezes that ended by themselves (``--max-freeze``).
Once mounted and serving, the process prints ``ready <state>``. EOF on stdin means quit, so the
filesystem never outlives the process that started it.

Good to know:
- Mounted with attr_timeout=0, entry_timeout=0, negative_timeout=0 and direct_io: the kernel caches
  nothing, so every stat, lookup and read reaches the filesystem (and waits while it is frozen).
- A delay counts from when the call came in; time spent frozen counts towards it.
- A freeze ends by itself after ``--max-freeze`` seconds (default 60, 0: never), so a test that
  never reaches its thaw cannot hang the suite forever. Such a test exists: a process killed while
  one of its calls is frozen inside the mount does not die until the thaw (the kernel waits out a
  request the filesystem has already read, even for SIGKILL), so ``subprocess.run(timeout=...)``,
  which kills and then waits without a limit, hangs inside the ``with`` block. Thaw (or leave the
  ``with`` block) before waiting for such a process.
- libfuse3 serves at most 10 calls at once: further calls queue in the kernel, blocked all the same,
  but ``held`` does not count them.
- The kernel looks up names not yet known in one directory one at a time (no parallel dirops here):
  while such a lookup is frozen, another new name in that directory waits behind it (and is not
  ``held``). stat/statvfs of the mount point and of names looked up before run side by side.
"""

import argparse
import contextlib
import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Queue
from typing import Any

FSNAME = "freezefs"
FSTYPE = "fuse.freezefs"
MTIME = 1_700_000_000  # 2023-11-14T22:13:20Z, for every node
FILES: dict[str, bytes] = {
    "/hello.txt": b"hello, world\n",
    "/dir/a": b"a\n",
    "/dir/b": bytes(range(256)) * 256,
}
STATFS: dict[str, int] = {
    "f_bsize": 4096,
    "f_frsize": 4096,
    "f_blocks": 262144,  # 1 GiB
    "f_bfree": 196608,
    "f_bavail": 131072,
    "f_files": 65536,
    "f_ffree": 60000,
    "f_favail": 60000,  # the kernel does not pass it on: statvfs reports f_ffree here
    "f_namemax": 255,
}
FUSECTL = Path("/sys/fs/fuse/connections")
DEFAULT_MAX_FREEZE = 60.0  # seconds; see Gate


def many_files(n: int) -> dict[str, bytes]:
    """The files of /many for ``--files n``: path -> content."""
    return {f"/many/f{i:05d}": f"file {i}\n".encode() for i in range(n)}


# --------------------------------------------------------------------------------------------------
# The filesystem process
# --------------------------------------------------------------------------------------------------


class Gate:
    """Where every filesystem call waits while frozen or delayed. Thread-safe.

    A freeze ends by itself after ``max_freeze_s`` (None: never): a safety valve for a test that
    never reaches its thaw or cleanup (e.g. waiting for a process stuck in the mount)."""

    def __init__(self, max_freeze_s: float | None = None) -> None:
        self._cond = threading.Condition()
        self._frozen = False
        self._frozen_since = 0.0
        self._max_freeze_s = max_freeze_s
        self._auto_thaws = 0
        self._delay_s = 0.0
        self._held = 0
        self._calls: Counter[str] = Counter()

    def passage(self, op: str) -> None:
        """Wait until the call may go on: not frozen and ``delay`` after it came in."""
        start = time.monotonic()
        with self._cond:
            self._calls[op] += 1
            self._held += 1
            try:
                while True:
                    if self._frozen:
                        if self._max_freeze_s is None:
                            self._cond.wait()
                            continue
                        left = self._frozen_since + self._max_freeze_s - time.monotonic()
                        if left > 0:
                            self._cond.wait(left)
                            continue
                        self._frozen = False
                        self._auto_thaws += 1
                        self._cond.notify_all()
                        print(f"freezefs: frozen for {self._max_freeze_s} s, thawed by itself",
                              file=sys.stderr, flush=True)
                        continue
                    remaining = start + self._delay_s - time.monotonic()
                    if remaining <= 0:
                        return
                    self._cond.wait(remaining)
            finally:
                self._held -= 1

    def set(self, *, frozen: bool | None = None, delay_s: float | None = None) -> None:
        with self._cond:
            if frozen and not self._frozen:
                self._frozen_since = time.monotonic()
            if frozen is not None:
                self._frozen = frozen
            if delay_s is not None:
                self._delay_s = delay_s
            self._cond.notify_all()

    def state(self) -> dict[str, Any]:
        with self._cond:
            return {
                "frozen": self._frozen,
                "delay_ms": self._delay_s * 1000,
                "held": self._held,
                "auto_thaws": self._auto_thaws,
                "calls": dict(self._calls),
            }


class FreezeOperations:
    """The mfusepy operations (duck-typed: mfusepy only looks the callbacks up by name)."""

    use_ns = True  # times in nanoseconds

    def __init__(self, files: dict[str, bytes], gate: Gate, on_ready) -> None:
        self._files = files
        self._gate = gate
        self._on_ready = on_ready
        self._dirs: dict[str, list[str]] = {"/": []}

        def add(path: str, is_dir: bool) -> None:
            if is_dir:
                if path in self._dirs:
                    return
                self._dirs[path] = []
            parent, name = os.path.split(path)
            add(parent, True)
            self._dirs[parent].append(name)

        add("/many", True)
        for path in sorted(files):
            add(path, False)
        self._nlink = {path: 2 + sum(1 for name in names if os.path.join(path, name) in self._dirs)
                       for path, names in self._dirs.items()}
        self._uid, self._gid = os.getuid(), os.getgid()

    def init(self, path: str) -> None:
        self._on_ready()

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        self._gate.passage("getattr")
        common = {"st_uid": self._uid, "st_gid": self._gid, "st_atime": MTIME * 10**9,
                  "st_mtime": MTIME * 10**9, "st_ctime": MTIME * 10**9}
        if path in self._dirs:
            return {"st_mode": stat.S_IFDIR | 0o555, "st_nlink": self._nlink[path], "st_size": 0, **common}
        if path in self._files:
            size = len(self._files[path])
            return {"st_mode": stat.S_IFREG | 0o444, "st_nlink": 1, "st_size": size,
                    "st_blocks": (size + 511) // 512, **common}
        raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))

    def readdir(self, path: str, fh: int) -> list[str]:
        self._gate.passage("readdir")
        if path not in self._dirs:
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        return [".", "..", *self._dirs[path]]

    def open(self, path: str, flags: int) -> int:
        self._gate.passage("open")
        if path not in self._files:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
        if flags & os.O_ACCMODE != os.O_RDONLY:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return 0

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        self._gate.passage("read")
        if path not in self._files:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
        return self._files[path][offset : offset + size]

    def statfs(self, path: str) -> dict[str, int]:
        self._gate.passage("statfs")
        return dict(STATFS)


_quitting = threading.Event()  # set before the control thread stops the filesystem
_finished = threading.Event()  # set once fuse_main has returned (the mount is gone)


def _control_loop(gate: Gate, send, mountpoint: str) -> None:
    """Read commands from stdin until quit or EOF, then thaw and stop the filesystem."""
    while line := sys.stdin.readline():
        seq, _, rest = line.strip().partition(" ")
        command, _, arg = rest.partition(" ")
        try:
            if command == "delay":
                delay_ms = float(arg)
                if not 0 <= delay_ms < 86_400_000:
                    raise ValueError(f"delay out of range: {arg}")
                gate.set(delay_s=delay_ms / 1000)
            elif command == "freeze":
                gate.set(frozen=True)
            elif command == "thaw":
                gate.set(frozen=False)
            elif command not in ("state", "quit"):
                raise ValueError(f"unknown command: {rest!r}")
        except ValueError as exc:
            send(f"{seq} err {exc}")
            continue
        send(f"{seq} ok {json.dumps(gate.state())}")
        if command == "quit":
            break
    # Quit: let every blocked call complete, then stop libfuse's loop (its SIGTERM handler ends
    # the session; fuse_main then unmounts). Should that not happen, unmount and exit anyway.
    gate.set(frozen=False, delay_s=0)
    _quitting.set()
    if not _finished.is_set():
        os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
    lazy_unmount(os.path.abspath(mountpoint))
    os._exit(3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mountpoint")
    parser.add_argument("--files", type=int, default=0, help="number of files in /many (default 0)")
    parser.add_argument("--max-freeze", type=float, default=DEFAULT_MAX_FREEZE, metavar="SECONDS",
                        help=f"a freeze ends by itself after this long (default {DEFAULT_MAX_FREEZE:g}; "
                        "0: never)")
    parser.add_argument("--debug", action="store_true", help="libfuse debug output on stderr")
    args = parser.parse_args(argv)
    if args.files < 0 or args.max_freeze < 0:
        parser.error("--files and --max-freeze must be >= 0")

    # Prefer libfuse3 where both are installed (mfusepy would pick libfuse2 first).
    if "FUSE_LIBRARY_PATH" not in os.environ and "FUSE_LIBRARY_NAME" not in os.environ:
        from ctypes.util import find_library

        if find_library("fuse3"):
            os.environ["FUSE_LIBRARY_NAME"] = "fuse3"
    import mfusepy

    out_lock = threading.Lock()

    def send(line: str) -> None:
        with out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    gate = Gate(args.max_freeze or None)
    files = {**FILES, **many_files(args.files)}
    ops = FreezeOperations(files, gate, on_ready=lambda: send(f"ready {json.dumps(gate.state())}"))
    control = threading.Thread(target=_control_loop, args=(gate, send, args.mountpoint), daemon=True)
    control.start()
    try:
        mfusepy.FUSE(
            ops,
            args.mountpoint,
            foreground=True,
            nothreads=False,  # multithreaded: frozen calls must not stop other calls from coming in
            debug=args.debug,
            ro=True,
            fsname=FSNAME,
            subtype=FSNAME,
            # No kernel caching: every stat/read reaches the filesystem (and its gate).
            attr_timeout=0,
            entry_timeout=0,
            negative_timeout=0,
            direct_io=True,
        )
    except RuntimeError:
        # fuse_main reports an error when its SIGTERM handler ended the session: how quit works.
        if not _quitting.is_set():
            raise
    finally:
        _finished.set()
    return 0


# --------------------------------------------------------------------------------------------------
# The test side: mount table, unmounting, and the context manager
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MountEntry:
    mount_id: int
    major: int
    minor: int
    mountpoint: str
    fstype: str
    source: str


def _unescape(field: str) -> str:
    r"""mountinfo escapes space, tab, newline and backslash as \ooo."""
    out, i = [], 0
    while i < len(field):
        digits = field[i + 1 : i + 4]
        if field[i] == "\\" and len(digits) == 3 and all(c in "01234567" for c in digits):
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def fuse_mounts() -> list[MountEntry]:
    """All FUSE mounts (fstype fuse or fuse.*) of this mount namespace, from /proc/self/mountinfo.

    Reads only the mount table: it never touches a mount, so it cannot hang."""
    entries = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            left, sep, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if not sep or len(fields) < 5 or len(tail) < 2:
                continue
            fstype = tail[0]
            if fstype != "fuse" and not fstype.startswith("fuse."):
                continue
            major, _, minor = fields[2].partition(":")
            entries.append(MountEntry(int(fields[0]), int(major), int(minor), _unescape(fields[4]),
                                      fstype, _unescape(tail[1])))
    return entries


def find_mount(mountpoint: str | os.PathLike[str]) -> MountEntry | None:
    """The topmost FUSE mount on ``mountpoint`` (an absolute path, not resolved), or None."""
    found = [entry for entry in fuse_mounts() if entry.mountpoint == os.fspath(mountpoint)]
    return found[-1] if found else None


def freezefs_mounts(under: str | os.PathLike[str] | None = None) -> list[MountEntry]:
    """The freezefs mounts in the mount table, only those at or below the directory ``under`` if
    given (an absolute path, not resolved). Tests assert that none is left at their end."""
    prefix = None if under is None else os.fspath(under).rstrip("/") + "/"
    return [entry for entry in fuse_mounts() if entry.fstype == FSTYPE
            and (prefix is None or (entry.mountpoint + "/").startswith(prefix))]


def lazy_unmount(mountpoint: str | os.PathLike[str], timeout: float = 5.0) -> bool:
    """Detach a FUSE mount (``fusermount3 -u -z``, else ``fusermount -u -z``, else ``umount -l``).

    Each command runs with a timeout (and is killed after it), so this never hangs. True when no
    FUSE mount is left on ``mountpoint``."""
    path = os.fspath(mountpoint)
    for command in (["fusermount3", "-u", "-z"], ["fusermount", "-u", "-z"], ["umount", "-l"]):
        if find_mount(path) is None:
            return True
        if not path or shutil.which(command[0]) is None:
            continue
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            subprocess.run([*command, path], stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout, check=False)
    return find_mount(path) is None


def _fusectl_mounted() -> bool:
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        return any(line.split(" - ")[-1].split()[:1] == ["fusectl"] and line.split()[4] == str(FUSECTL)
                   for line in f)


def abort_connection(minor: int) -> bool:
    """Abort the FUSE connection ``minor`` (the device minor in mountinfo) through fusectl: every
    caller stuck in that filesystem fails at once with ECONNABORTED, later calls with ENOTCONN.
    The last resort; mounts fusectl for the moment if it is not mounted (root only), and unmounts
    it again. True when the abort was written."""
    abort = FUSECTL / str(minor) / "abort"
    mounted_here = False
    try:
        if not _fusectl_mounted() and os.geteuid() == 0:
            result = subprocess.run(["mount", "-t", "fusectl", "fusectl", str(FUSECTL)],
                                    stdin=subprocess.DEVNULL, capture_output=True, timeout=5, check=False)
            mounted_here = result.returncode == 0
        abort.write_text("1\n")
        return True
    except (OSError, subprocess.TimeoutExpired):
        return False
    finally:
        if mounted_here:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(["umount", str(FUSECTL)], stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=5, check=False)


class FreezeFSError(RuntimeError):
    pass


class FreezeFS:
    """Handle on a running freezefs process; see :func:`mounted_freezefs`."""

    def __init__(self, mountpoint: str | os.PathLike[str], *, files: int = 0, start_timeout: float = 10.0,
                 max_freeze: float | None = DEFAULT_MAX_FREEZE, debug: bool = False) -> None:
        # Resolve now, while the directory is not mounted yet: later nothing may touch it.
        self.path = Path(os.path.realpath(mountpoint))
        if find_mount(self.path) is not None:
            raise FreezeFSError(f"{self.path} is already a FUSE mount point")
        self.files = {**FILES, **many_files(files)}
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self._stderr_text = ""
        self._lines: Queue[str | None] = Queue()
        self._seq = 0
        self._lock = threading.Lock()
        self._closed = False
        self.entry: MountEntry | None = None
        command = [sys.executable, os.path.abspath(__file__), str(self.path), "--files", str(files),
                   "--max-freeze", repr(float(max_freeze or 0))]
        if debug:
            command.append("--debug")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._stderr, text=True, bufsize=1, start_new_session=True)
        self.pid = self.process.pid
        self._reader = threading.Thread(target=self._read_lines, name=f"freezefs-{self.pid}", daemon=True)
        self._reader.start()
        try:
            self._wait_ready(start_timeout)
        except BaseException as exc:
            try:
                self.close()
            except FreezeFSError as cleanup:
                exc.add_note(f"cleanup: {cleanup}")
            raise

    # -- control ------------------------------------------------------------------------------------

    def delay(self, ms: float) -> dict[str, Any]:
        """Every later call into the mount first waits ``ms`` milliseconds (0 ends the delay)."""
        return self._request(f"delay {float(ms)!r}")

    def freeze(self) -> dict[str, Any]:
        """From now on, every call into the mount blocks (no reply) until :meth:`thaw`."""
        return self._request("freeze")

    def thaw(self) -> dict[str, Any]:
        """The blocked calls complete normally; new calls are served again."""
        return self._request("thaw")

    def state(self) -> dict[str, Any]:
        """``{"frozen", "delay_ms", "held", "auto_thaws", "calls": {op: count}}`` (module doc)."""
        return self._request("state")

    @contextlib.contextmanager
    def frozen(self) -> Iterator["FreezeFS"]:
        """``with fs.frozen(): ...`` freezes, and thaws on the way out."""
        self.freeze()
        try:
            yield self
        finally:
            self.thaw()

    def wait_held(self, n: int = 1, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until at least ``n`` calls are waiting inside the filesystem (frozen or delayed):
        then the callers are known to be stuck in the mount. Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if state["held"] >= n:
                return state
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{state['held']} calls held in {self.path} after {timeout} s, wanted {n}")
            time.sleep(0.01)

    def alive(self) -> bool:
        return self.process.poll() is None

    def mounted(self) -> bool:
        """Whether this mount is still in the mount table (reads /proc/self/mountinfo only)."""
        entry = find_mount(self.path)
        return entry is not None and (self.entry is None or entry.mount_id == self.entry.mount_id)

    def stderr(self) -> str:
        """What the process wrote on stderr so far (libfuse's and Python's errors)."""
        if self._stderr.closed:
            return self._stderr_text
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    # -- cleanup ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Thaw, lazy-unmount, stop the process; abort the connection if need be. Never hangs long,
        also when frozen, with callers stuck in the mount, or when the process died. Idempotent.
        Raises FreezeFSError if the mount or the process is left over after all of that."""
        if self._closed:
            return
        self._closed = True
        if self.alive():
            # Release callers stuck in the filesystem: they complete normally.
            with contextlib.suppress(FreezeFSError, OSError, TimeoutError):
                self._request("thaw", timeout=2)
                self._request("delay 0", timeout=2)
        if self.mounted():
            lazy_unmount(self.path)
        # EOF on stdin makes the process quit by itself; then SIGTERM; then SIGKILL.
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        stopped = self._wait(3.0)
        for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
            if stopped:
                break
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
            stopped = self._wait(grace)
        leftover = find_mount(self.path)
        if leftover is not None or not stopped:
            # Last resort: abort the connection (stuck callers fail with ECONNABORTED), detach again.
            if leftover is not None:
                abort_connection(leftover.minor)
                lazy_unmount(self.path)
            elif self.entry is not None:
                abort_connection(self.entry.minor)
            stopped = self._wait(2.0)
        self._reader.join(timeout=2.0)
        with contextlib.suppress(OSError):
            self.process.stdout.close()
        problems = []
        if find_mount(self.path) is not None:
            problems.append(f"{self.path} is still mounted")
        if not stopped:
            problems.append(f"freezefs process {self.pid} did not exit")
        stderr = self._stderr_text = self.stderr()
        self._stderr.close()
        if problems:
            raise FreezeFSError("; ".join(problems) + (f"\nstderr:\n{stderr}" if stderr else ""))

    def __enter__(self) -> "FreezeFS":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------------

    def _read_lines(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)  # EOF: the process is gone or going

    def _next_line(self, deadline: float) -> str:
        try:
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except Empty:
            raise TimeoutError(f"freezefs process {self.pid} did not answer in time") from None
        if line is None:
            self._lines.put(None)
            raise FreezeFSError(f"freezefs process {self.pid} exited (code {self.process.poll()})"
                                f"\nstderr:\n{self.stderr()}")
        return line

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._next_line(deadline)
            except TimeoutError:
                raise TimeoutError(f"freezefs did not mount {self.path} within {timeout} s"
                                   f"\nstderr:\n{self.stderr()}") from None
            if line.startswith("ready "):
                break
        # init() runs once the kernel talks to the filesystem: the mount is in the table by now.
        self.entry = find_mount(self.path)
        if self.entry is None:
            raise FreezeFSError(f"freezefs is ready but {self.path} is not in /proc/self/mountinfo")

    def _request(self, command: str, timeout: float = 5.0) -> dict[str, Any]:
        with self._lock:
            if self.process.stdin is None or self.process.stdin.closed or not self.alive():
                raise FreezeFSError(f"freezefs process {self.pid} is not running")
            self._seq += 1
            seq = str(self._seq)
            try:
                self.process.stdin.write(f"{seq} {command}\n")
                self.process.stdin.flush()
            except OSError as exc:  # BrokenPipeError: it just died
                raise FreezeFSError(f"freezefs process {self.pid} is not running: {exc}") from exc
            deadline = time.monotonic() + timeout
            while True:
                answer_seq, _, rest = self._next_line(deadline).partition(" ")
                if answer_seq != seq:
                    continue  # a late answer to an earlier request that timed out
                status, _, payload = rest.partition(" ")
                if status != "ok":
                    raise FreezeFSError(f"freezefs: {command!r}: {payload}")
                return json.loads(payload)

    def _wait(self, timeout: float) -> bool:
        try:
            self.process.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False


@contextlib.contextmanager
def mounted_freezefs(
    mountpoint: str | os.PathLike[str],
    *,
    files: int = 0,
    start_timeout: float = 10.0,
    max_freeze: float | None = DEFAULT_MAX_FREEZE,
    debug: bool = False,
) -> Iterator[FreezeFS]:
    """Mount freezefs on the (existing, empty) directory ``mountpoint`` in a child process and yield
    its :class:`FreezeFS` handle; always unmounts and stops it on the way out (see ``close``).
    A freeze ends by itself after ``max_freeze`` seconds (None: never)::

        with mounted_freezefs(tmp_path / "mnt", files=1000) as fs:
            fs.delay(200); fs.freeze(); fs.thaw(); fs.path / "hello.txt"
    """
    fs = FreezeFS(mountpoint, files=files, start_timeout=start_timeout, max_freeze=max_freeze, debug=debug)
    try:
        yield fs
    finally:
        fs.close()


if __name__ == "__main__":
    sys.exit(main())
