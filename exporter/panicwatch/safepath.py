"""Resolve a host path without ever touching a filesystem that could block.

Each component is checked against the mount table before it is lstat'ed, and symlinks
are followed by hand inside the rootfs, so /var/crash -> /mnt/nfs/crash is caught
before anything asks the NFS server about it.
"""

from __future__ import annotations

import os
import posixpath
import stat

from panicwatch.host import Host
from panicwatch.parsers.mountinfo import Mount, mount_of

MAX_SYMLINKS = 40  # the kernel's limit


class UnsafePath(Exception):
    """The path is (or leads) onto a filesystem where a stat may wait on a server."""

    def __init__(self, path: str, mount: Mount) -> None:
        super().__init__(f"{path} is on a {mount.fstype} mount ({mount.mountpoint})")
        self.mount = mount


def resolve_safely(host: Host, path: str, mounts: list[Mount]) -> str | None:
    """The host-absolute real path, or None if a component does not exist.

    Raises UnsafePath before any I/O on a component that sits on a mount that may block.
    """
    pending = [p for p in path.split("/") if p]
    resolved = "/"
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            resolved = posixpath.dirname(resolved)
            continue
        candidate = posixpath.join(resolved, part)
        mount = mount_of(candidate, mounts)
        if mount is not None and mount.may_block:
            raise UnsafePath(candidate, mount)
        try:
            st = os.lstat(host.root(candidate))
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > MAX_SYMLINKS:
                return None
            link = os.readlink(host.root(candidate))
            if link.startswith("/"):
                resolved = "/"
            pending = [p for p in link.split("/") if p] + pending
            continue
        resolved = candidate
    mount = mount_of(resolved, mounts)
    if mount is not None and mount.may_block:
        raise UnsafePath(resolved, mount)
    return resolved
