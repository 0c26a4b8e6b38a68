"""freezefs (tests/freezefs.py): a real FUSE mount that can be delayed, frozen and thawed. No mocks."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from freezefs import (
    FILES,
    FSNAME,
    FSTYPE,
    MTIME,
    STATFS,
    FreezeFS,
    FreezeFSError,
    abort_connection,
    find_mount,
    freezefs_mounts,
    lazy_unmount,
    many_files,
    mounted_freezefs,
)

pytestmark = pytest.mark.skipif(
    not os.path.exists("/dev/fuse") and os.environ.get("CI") != "true",
    reason="no /dev/fuse on this machine (CI always runs these)",
)


class Call:
    """Runs fn(*args) in a daemon thread: a caller that may get stuck in the mount."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.elapsed: float | None = None
        self._start = time.monotonic()
        threading.Thread(target=self._run, args=(fn, args), daemon=True).start()

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            self.result = fn(*args)
        except BaseException as exc:
            self.error = exc
        finally:
            self.elapsed = time.monotonic() - self._start
            self.done.set()


@pytest.fixture
def mnt(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "mnt"
    path.mkdir()
    yield path
    # No test leaves a mount behind, whatever happened in it.
    assert freezefs_mounts(under=os.path.realpath(tmp_path)) == []
    assert find_mount(os.path.realpath(path)) is None


@pytest.fixture
def fs(mnt: Path) -> Iterator[FreezeFS]:
    with mounted_freezefs(mnt, files=3) as handle:
        yield handle


def timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    start = time.monotonic()
    result = fn(*args)
    return result, time.monotonic() - start


def test_mount_is_live_fuse_mount(fs: FreezeFS, mnt: Path) -> None:
    # Mounting and waiting for it touched nothing in the filesystem (no call into it yet).
    assert fs.state() == {"frozen": False, "delay_ms": 0.0, "held": 0, "auto_thaws": 0, "calls": {}}
    assert str(fs.path) == os.path.realpath(mnt)
    entry = find_mount(fs.path)
    assert entry is not None
    assert entry == fs.entry
    assert (entry.fstype, entry.source, entry.mountpoint) == (FSTYPE, FSNAME, str(fs.path))
    assert fs.alive() and fs.mounted()


def test_stat_files_and_dirs(fs: FreezeFS) -> None:
    st = os.stat(fs.path / "hello.txt")
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o444
    assert (st.st_size, st.st_nlink, st.st_mtime, st.st_uid) == (13, 1, MTIME, os.getuid())
    assert os.stat(fs.path / "dir" / "b").st_size == 65536
    assert os.stat(fs.path / "many" / "f00002").st_size == len(b"file 2\n")
    root = os.stat(fs.path)
    assert stat.S_ISDIR(root.st_mode) and stat.S_IMODE(root.st_mode) == 0o555
    assert root.st_nlink == 4  # ., .., dir, many
    with pytest.raises(FileNotFoundError):
        os.stat(fs.path / "nope")
    assert fs.state()["calls"]["getattr"] >= 5


def test_statvfs_goes_to_the_filesystem(fs: FreezeFS) -> None:
    assert "statfs" not in fs.state()["calls"]
    sv = os.statvfs(fs.path)
    assert (sv.f_bsize, sv.f_frsize, sv.f_blocks, sv.f_bfree, sv.f_bavail) == (
        4096, 4096, 262144, 196608, 131072)
    assert (sv.f_files, sv.f_ffree, sv.f_favail, sv.f_namemax) == (65536, 60000, 60000, 255)
    assert {key: getattr(sv, key) for key in STATFS} == STATFS
    assert sv.f_flag & os.ST_RDONLY
    assert fs.state()["calls"]["statfs"] == 1


def test_readdir_and_read(fs: FreezeFS) -> None:
    assert sorted(os.listdir(fs.path)) == ["dir", "hello.txt", "many"]
    assert sorted(os.listdir(fs.path / "dir")) == ["a", "b"]
    assert sorted(os.listdir(fs.path / "many")) == ["f00000", "f00001", "f00002"]
    for path, content in FILES.items():
        assert (fs.path / path.lstrip("/")).read_bytes() == content
    assert (fs.path / "hello.txt").read_bytes() == b"hello, world\n"
    assert (fs.path / "many" / "f00001").read_bytes() == b"file 1\n"
    with pytest.raises(OSError) as info:
        open(fs.path / "hello.txt", "wb")  # noqa: SIM115
    assert info.value.errno == errno.EROFS


def test_many_files(mnt: Path) -> None:
    with mounted_freezefs(mnt, files=1000) as fs:
        names = sorted(os.listdir(fs.path / "many"))
        assert len(names) == 1000
        assert names == sorted(path.rsplit("/", 1)[1] for path in many_files(1000))
        assert (names[0], names[-1]) == ("f00000", "f00999")
        assert (fs.path / "many" / "f00999").read_bytes() == b"file 999\n"


def test_delay(fs: FreezeFS) -> None:
    os.stat(fs.path / "hello.txt")
    assert fs.delay(200)["delay_ms"] == 200.0
    st, elapsed = timed(os.stat, fs.path / "hello.txt")
    assert st.st_size == 13
    assert 0.2 <= elapsed < 2
    sv, elapsed = timed(os.statvfs, fs.path)
    assert sv.f_blocks == STATFS["f_blocks"]
    assert 0.2 <= elapsed < 2
    assert fs.delay(0)["delay_ms"] == 0.0
    _, elapsed = timed(os.statvfs, fs.path)
    assert elapsed < 0.2


def test_delay_rejects_bad_values(fs: FreezeFS) -> None:
    with pytest.raises(FreezeFSError, match="out of range"):
        fs.delay(-1)
    assert fs.state()["delay_ms"] == 0.0


def test_freeze_blocks_stat_until_thaw(fs: FreezeFS) -> None:
    state = fs.freeze()
    assert state["frozen"] is True
    call = Call(os.stat, fs.path / "hello.txt")
    assert fs.wait_held(1)["held"] == 1
    assert not call.done.wait(1.0)
    thawed = time.monotonic()
    assert fs.thaw()["frozen"] is False
    assert call.done.wait(2.0)
    assert time.monotonic() - thawed < 2.0
    assert call.error is None
    assert call.result.st_size == 13
    assert call.elapsed is not None and call.elapsed >= 1.0
    assert fs.state()["held"] == 0


def test_freeze_blocks_statvfs_until_thaw(fs: FreezeFS) -> None:
    with fs.frozen():
        call = Call(os.statvfs, fs.path)
        fs.wait_held(1)
        assert not call.done.wait(1.0)
    assert call.done.wait(2.0)
    assert call.error is None
    assert call.result.f_blocks == STATFS["f_blocks"]
    assert call.result.f_bavail == STATFS["f_bavail"]


def test_several_callers_blocked_at_once(fs: FreezeFS) -> None:
    os.stat(fs.path / "hello.txt")  # a known name: looking it up again does not wait for the others
    fs.freeze()
    calls = [Call(os.stat, fs.path), Call(os.stat, fs.path), Call(os.statvfs, fs.path),
             Call(os.statvfs, fs.path), Call(os.stat, fs.path / "hello.txt")]
    assert fs.wait_held(5)["held"] == 5
    # The control channel keeps working while the filesystem is frozen.
    assert fs.state()["frozen"] is True
    assert not any(call.done.wait(0.1) for call in calls)
    fs.thaw()
    assert all(call.done.wait(2.0) for call in calls)
    assert [call.error for call in calls] == [None] * 5
    assert [stat.S_ISDIR(call.result.st_mode) for call in calls[:2]] == [True, True]
    assert [call.result.f_files for call in calls[2:4]] == [STATFS["f_files"]] * 2
    assert calls[4].result.st_size == 13


def test_a_freeze_ends_by_itself_after_max_freeze(mnt: Path) -> None:
    with mounted_freezefs(mnt, max_freeze=0.5) as fs:
        fs.freeze()
        call = Call(os.stat, fs.path / "hello.txt")
        fs.wait_held(1)
        assert call.done.wait(3.0)
        assert call.error is None and call.result.st_size == 13
        assert call.elapsed is not None and 0.4 <= call.elapsed < 3.0
        state = fs.state()
        assert (state["frozen"], state["auto_thaws"], state["held"]) == (False, 1, 0)
        assert "thawed by itself" in fs.stderr()


def test_cleanup_while_frozen_with_stuck_caller(mnt: Path) -> None:
    with mounted_freezefs(mnt) as fs:
        fs.freeze()
        call = Call(os.stat, fs.path / "hello.txt")
        fs.wait_held(1)
        assert not call.done.wait(0.3)
        exiting = time.monotonic()
    assert time.monotonic() - exiting < 5
    assert find_mount(fs.path) is None
    assert fs.process.poll() is not None and not fs.alive()
    assert not os.path.exists(f"/proc/{fs.pid}")
    # Cleanup thawed first: the stuck caller completed normally.
    assert call.done.wait(2.0)
    assert call.error is None and call.result.st_size == 13
    assert os.listdir(mnt) == []  # the plain directory again


def test_cleanup_when_the_body_raises_while_frozen(mnt: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), mounted_freezefs(mnt) as fs:
        fs.freeze()
        call = Call(os.statvfs, fs.path)
        fs.wait_held(1)
        raise RuntimeError("boom")
    assert find_mount(fs.path) is None and not fs.alive()
    assert call.done.wait(2.0) and call.error is None


def test_cleanup_when_the_process_died(mnt: Path) -> None:
    with mounted_freezefs(mnt) as fs:
        fs.freeze()
        call = Call(os.stat, fs.path / "dir")
        fs.wait_held(1)
        os.kill(fs.pid, signal.SIGKILL)
        fs.process.wait(timeout=5)
        # The kernel aborts the connection: the stuck caller is released with ECONNABORTED ...
        assert call.done.wait(2.0)
        assert isinstance(call.error, OSError) and call.error.errno == errno.ECONNABORTED
        # ... and the dead mount stays in the table, answering ENOTCONN, until cleanup.
        assert fs.mounted()
        with pytest.raises(OSError) as info:
            os.stat(fs.path)
        assert info.value.errno == errno.ENOTCONN
        with pytest.raises(FreezeFSError, match="not running"):
            fs.thaw()
    assert find_mount(fs.path) is None
    assert fs.process.returncode == -signal.SIGKILL


def test_abort_connection_releases_stuck_callers(fs: FreezeFS) -> None:
    def fusectl_mounts() -> list[str]:
        with open("/proc/self/mountinfo") as f:
            return [line for line in f if " - fusectl " in line]

    before = fusectl_mounts()
    fs.freeze()
    call = Call(os.stat, fs.path / "hello.txt")
    fs.wait_held(1)
    assert fs.entry is not None
    assert abort_connection(fs.entry.minor) is True
    assert call.done.wait(2.0)
    assert isinstance(call.error, OSError) and call.error.errno == errno.ECONNABORTED
    assert fusectl_mounts() == before  # fusectl, if mounted for the abort, is unmounted again


def test_start_failure_leaves_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    started = time.monotonic()
    with pytest.raises(FreezeFSError, match="exited"), mounted_freezefs(missing):
        pass
    assert time.monotonic() - started < 10
    assert freezefs_mounts(under=tmp_path) == []


def test_refuses_a_mount_point_already_mounted(fs: FreezeFS) -> None:
    with pytest.raises(FreezeFSError, match="already a FUSE mount point"):
        FreezeFS(fs.path)
    assert fs.alive() and fs.mounted()


def test_filesystem_does_not_outlive_a_killed_test_process(mnt: Path) -> None:
    """EOF on its stdin (the test process died, SIGKILL: no cleanup ran) makes freezefs thaw,
    unmount and exit by itself."""
    script = (
        "import os, signal, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from freezefs import FreezeFS\n"
        f"fs = FreezeFS({str(mnt)!r})\n"
        "fs.freeze()\n"
        "print(fs.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    parent = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert parent.returncode == -signal.SIGKILL
    pid = int(parent.stdout)
    path = os.path.realpath(mnt)

    def running() -> bool:  # an orphan's zombie lingers until init reaps it: that one has exited
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rpartition(") ")[2][:1] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    try:
        while find_mount(path) is not None or running():
            assert time.monotonic() < deadline, "orphaned freezefs still running or mounted"
            time.sleep(0.05)
    finally:
        if find_mount(path) is not None:
            lazy_unmount(path)
        if running():
            os.kill(pid, signal.SIGKILL)
