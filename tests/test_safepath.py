"""Resolving host paths without touching filesystems that may block."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from panicwatch.host import Host
from panicwatch.parsers.mountinfo import Mount
from panicwatch.safepath import MAX_SYMLINKS, UnsafePath, resolve_safely

ROOT = Mount(1, "/", "/", "ext4", "/dev/vda1", "rw,relatime", "rw")
VAR = Mount(2, "/", "/var", "xfs", "/dev/vda2", "rw,relatime", "rw")
NFS = Mount(3, "/", "/mnt/nfs", "nfs4", "nfs.example.com:/export", "rw,relatime", "rw,vers=4.2")
AUTOFS = Mount(4, "/", "/net", "autofs", "systemd-1", "rw", "rw,fd=47")
SSHFS = Mount(5, "/", "/mnt/remote", "fuse.sshfs", "user@host:/", "rw", "rw")
MOUNTS = [ROOT, VAR, NFS, AUTOFS, SSHFS]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for d in ("var/crash/127.0.0.1-2024-05-01-03:12:45", "var/log", "mnt", "srv/crash", "etc", "net"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "etc/kdump.conf").write_text("path /var/crash\n")
    return tmp_path


@pytest.fixture
def host(root: Path) -> Host:
    return Host.from_paths(root)


@pytest.fixture
def lstat_calls(monkeypatch: pytest.MonkeyPatch, root: Path) -> list[str]:
    """Host-absolute paths that were lstat'ed under the fake root."""
    calls: list[str] = []
    real_lstat = os.lstat

    def recording_lstat(path: str | os.PathLike[str], *args: object, **kwargs: object) -> os.stat_result:
        p = Path(path)
        if p == root or root in p.parents:
            calls.append("/" + str(p.relative_to(root)).lstrip("."))
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", recording_lstat)
    return calls


@pytest.mark.parametrize(
    ("path", "resolved"),
    [
        ("/var/crash", "/var/crash"),
        ("/var/crash/", "/var/crash"),
        ("//var//crash", "/var/crash"),
        ("/var/crash/127.0.0.1-2024-05-01-03:12:45", "/var/crash/127.0.0.1-2024-05-01-03:12:45"),
        ("/etc/kdump.conf", "/etc/kdump.conf"),
        ("/var/./crash", "/var/crash"),
        ("/var/log/../crash", "/var/crash"),
        ("/../../var/crash", "/var/crash"),
        ("/", "/"),
        ("", "/"),
    ],
)
def test_normal_paths(host: Host, path: str, resolved: str) -> None:
    assert resolve_safely(host, path, MOUNTS) == resolved


def test_normal_dir_is_checked_component_by_component(host: Host, lstat_calls: list[str]) -> None:
    assert resolve_safely(host, "/var/crash", MOUNTS) == "/var/crash"
    assert lstat_calls == ["/var", "/var/crash"]


@pytest.mark.parametrize(
    "path", ["/var/crash/missing", "/nonexistent", "/nonexistent/deeper/still", "/srv/x"],
)
def test_missing_path(host: Host, path: str) -> None:
    assert resolve_safely(host, path, MOUNTS) is None


def test_symlink_onto_nfs_raises_without_touching_it(host: Host, root: Path, lstat_calls: list[str]) -> None:
    (root / "var/crash").rename(root / "var/crash.old")
    (root / "var/crash").symlink_to("/mnt/nfs/crash")
    # /mnt/nfs does not even exist in the fake root: nothing may look at it.
    assert not (root / "mnt/nfs").exists()
    with pytest.raises(UnsafePath) as exc:
        resolve_safely(host, "/var/crash", MOUNTS)
    assert exc.value.mount == NFS
    assert str(exc.value) == "/mnt/nfs is on a nfs4 mount (/mnt/nfs)"
    assert lstat_calls == ["/var", "/var/crash", "/mnt"]


def test_symlink_onto_nfs_deeper_component(host: Host, root: Path) -> None:
    (root / "srv/crash").rmdir()
    (root / "srv/crash").symlink_to("../mnt/nfs/sub/dir")
    with pytest.raises(UnsafePath) as exc:
        resolve_safely(host, "/srv/crash/127.0.0.1-2024-05-01-03:12:45/vmcore", MOUNTS)
    assert exc.value.mount == NFS


@pytest.mark.parametrize(
    ("path", "mount"),
    [("/mnt/nfs", NFS), ("/mnt/nfs/crash", NFS), ("/net/host/export", AUTOFS), ("/mnt/remote/x", SSHFS)],
)
def test_path_on_a_blocking_mount(host: Host, path: str, mount: Mount, lstat_calls: list[str]) -> None:
    with pytest.raises(UnsafePath) as exc:
        resolve_safely(host, path, MOUNTS)
    assert exc.value.mount == mount
    assert not any(p == mount.mountpoint or p.startswith(mount.mountpoint + "/") for p in lstat_calls)


def test_nfs_mounted_on_the_path_itself(host: Host, lstat_calls: list[str]) -> None:
    crash_nfs = Mount(9, "/", "/var/crash", "nfs", "srv:/crash", "rw", "rw")
    with pytest.raises(UnsafePath) as exc:
        resolve_safely(host, "/var/crash", [*MOUNTS, crash_nfs])
    assert exc.value.mount == crash_nfs
    assert str(exc.value) == "/var/crash is on a nfs mount (/var/crash)"
    assert lstat_calls == ["/var"]


def test_sibling_of_a_blocking_mount_is_fine(host: Host, root: Path) -> None:
    (root / "mnt/nfsbackup").mkdir()
    assert resolve_safely(host, "/mnt/nfsbackup", MOUNTS) == "/mnt/nfsbackup"


@pytest.mark.parametrize(
    ("link", "resolved"),
    [
        ("../srv/crash", "/srv/crash"),
        ("../../../srv/crash", "/srv/crash"),  # ".." above / stays at /
        ("log", "/var/log"),
        ("./log/../log", "/var/log"),
        ("/srv/crash", "/srv/crash"),
        ("/srv/./crash/", "/srv/crash"),
    ],
)
def test_symlinks(host: Host, root: Path, link: str, resolved: str) -> None:
    (root / "var/crash").rename(root / "var/crash.old")
    (root / "var/crash").symlink_to(link)
    assert resolve_safely(host, "/var/crash", MOUNTS) == resolved


def test_symlink_chain_and_dotdot_after_a_symlink(host: Host, root: Path) -> None:
    (root / "srv/crash/sub").mkdir()
    (root / "var/crash").rename(root / "var/crash.old")
    (root / "var/crash").symlink_to("/srv/link")
    (root / "srv/link").symlink_to("crash/sub")
    assert resolve_safely(host, "/var/crash", MOUNTS) == "/srv/crash/sub"
    # ".." after a symlink goes to the parent of its target, as in the kernel.
    assert resolve_safely(host, "/var/crash/..", MOUNTS) == "/srv/crash"


def test_absolute_symlink_is_host_absolute(host: Host, root: Path) -> None:
    # An absolute link is host-absolute: it resolves inside the fake root, never on our own /.
    (root / "etc/passwd-link").symlink_to("/etc/kdump.conf")
    assert resolve_safely(host, "/etc/passwd-link", MOUNTS) == "/etc/kdump.conf"


def test_dangling_symlink(host: Host, root: Path) -> None:
    (root / "var/crash").rename(root / "var/crash.old")
    (root / "var/crash").symlink_to("/does/not/exist")
    assert resolve_safely(host, "/var/crash", MOUNTS) is None


def test_symlink_loop(host: Host, root: Path) -> None:
    (root / "srv/a").symlink_to("b")
    (root / "srv/b").symlink_to("/srv/a")
    assert resolve_safely(host, "/srv/a", MOUNTS) is None
    (root / "srv/self").symlink_to("self")
    assert resolve_safely(host, "/srv/self/x", MOUNTS) is None


def test_symlink_limit(host: Host, root: Path) -> None:
    # A chain of exactly MAX_SYMLINKS links resolves; one more does not.
    for i in range(MAX_SYMLINKS + 1):
        (root / f"srv/l{i}").symlink_to(f"l{i + 1}" if i < MAX_SYMLINKS else "crash")
    assert resolve_safely(host, "/srv/l1", MOUNTS) == "/srv/crash"
    assert resolve_safely(host, "/srv/l0", MOUNTS) is None


def test_no_mount_table(host: Host) -> None:
    assert resolve_safely(host, "/var/crash", []) == "/var/crash"


def test_file_as_directory_component(host: Host) -> None:
    assert resolve_safely(host, "/etc/kdump.conf/x", MOUNTS) is None
